// `fleetwave completion bash|zsh|fish|powershell`: prints a script that makes the shell complete fleetwave's
// verbs and flags. The shell calls back `fleetwave complete -- WORDS…` (hidden) on each TAB, answered from the
// program's own commander tree, so completions never drift from the verbs.
// @bomb.sh/tab: its commander adapter builds the completion model from the program itself and its scripts are
// cobra's proven ones; maintained, no dependencies. Register last: the adapter reads the commands present.
import type { Command } from 'commander';
import tab from '@bomb.sh/tab/commander';
import { script } from '@bomb.sh/tab';
import { FleetwaveError } from '../../common/errors.js';
import type { Io } from '../io.js';

const SHELLS = ['bash', 'zsh', 'fish', 'powershell'] as const;
type Shell = (typeof SHELLS)[number];

export function registerCompletionCommands(program: Command, io: Io): void {
  tab(program, { completionCommandName: 'completion' });
  // The adapter's own `completion` action prints with console.log and leaves the bash script needing
  // bash-completion; ours amends the script and writes through io.
  const command = program.commands.find((c) => c.name() === 'completion');
  if (!command) throw new FleetwaveError('completion: @bomb.sh/tab/commander added no `completion` command; update cli/commands/completion.ts');
  command
    .summary('print a shell completion script (bash, zsh, fish, powershell)')
    .description(
      'Print a script that completes fleetwave verbs and flags; load it from your shell profile:\n' +
        '  bash: source <(fleetwave completion bash)     (~/.bashrc)\n' +
        '  zsh:  source <(fleetwave completion zsh)      (~/.zshrc, after compinit)',
    )
    .action((shell: Shell) => io.out(completionScript(shell, program.name())));
}

/** The completion script for `shell`, calling back `name complete -- …`. */
export function completionScript(shell: Shell, name: string): string {
  const text = captureConsole(() => script(shell, name, name)).join('\n');
  return shell === 'bash' ? amendBash(text, name) : text;
}

/**
 * tab's bash script reads the words with bash-completion's `_get_comp_words_by_ref`, absent where that package
 * is not installed (macOS's bash, slim images): fall back to bash's own COMP_WORDS there. Where fleetwave has
 * nothing to suggest, complete file names as bash would. Its directive
 * constants are global and readonly, so sourcing the script twice (or beside another tab-made script) errors:
 * prefix them with the program's name instead.
 */
function amendBash(text: string, name: string): string {
  const call = '_get_comp_words_by_ref -n "=:" cur prev words cword';
  const reply = 'COMPREPLY=( $(compgen -W "${completions[*]}" -- "$cur") )';
  if (!text.includes(call) || !text.includes(reply)) throw new FleetwaveError('completion: the bash script of @bomb.sh/tab changed; update cli/commands/completion.ts');
  const words = `__${name}_words`;
  const fallback = [
    `# bash-completion's word split when it is loaded, else bash's own (no bash-completion installed).`,
    `${words}() {`,
    `    if declare -F _get_comp_words_by_ref >/dev/null; then`,
    `        ${call}`,
    `    else`,
    `        cur=\${COMP_WORDS[COMP_CWORD]}`,
    `        prev=\${COMP_WORDS[COMP_CWORD-1]}`,
    `        words=("\${COMP_WORDS[@]}")`,
    `        cword=$COMP_CWORD`,
    `    fi`,
    `}`,
    '',
  ].join('\n');
  // tab always answers "no file names"; a flag's value it has nothing for (--file, --ca) is a path more often than not.
  const files = [
    reply,
    `    if [[ \${#COMPREPLY[@]} -eq 0 ]]; then`,
    `        compopt -o filenames 2>/dev/null`,
    `        COMPREPLY=( $(compgen -f -- "$cur") )`,
    `    fi`,
  ].join('\n');
  const body = text
    .replace(call, words)
    .replace(reply, files)
    .replace(/^readonly (ShellCompDirective\w+=)/gm, `__${name}_$1`)
    .replace(/\$ShellCompDirective/g, `$__${name}_ShellCompDirective`);
  const newline = body.indexOf('\n');
  return `${body.slice(0, newline + 1)}\n${fallback}${body.slice(newline + 1)}`;
}

/** What `fn` wrote with console.log (tab prints its scripts that way), as lines. */
function captureConsole(fn: () => void): string[] {
  const lines: string[] = [];
  const original = console.log;
  console.log = (...args: unknown[]) => void lines.push(args.map(String).join(' '));
  try {
    fn();
  } finally {
    console.log = original;
  }
  return lines;
}
