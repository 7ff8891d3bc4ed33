// A command run under a pseudo-terminal, through util-linux's `script`, so it sees a real TTY: for the tests
// of what the CLI draws on a terminal and of shell completion through bash's readline.
import { spawn, spawnSync } from 'node:child_process';
import { Proc } from './proc.js';
import { waitFor } from './wait.js';

/** util-linux's `script` is on PATH (the tests that need a terminal skip without it). */
export function hasScript(): boolean {
  return spawnSync('script', ['--version'], { encoding: 'utf8' }).stdout?.includes('util-linux') ?? false;
}

export interface Pty {
  proc: Proc;
  /** Everything the terminal showed so far, escapes included. */
  output(): string;
  /** Types `text` (a TAB is "\t", Ctrl-U "\x15"). */
  type(text: string): void;
  /** Waits until the output matches `pattern`. */
  waitFor(pattern: string | RegExp, what: string, timeoutMs?: number): Promise<string>;
  /** The exit code of `command`. */
  exited: Promise<number | null>;
}

/** Runs `command` (a shell line) in a terminal of `columns`×`rows`. */
export function spawnPty(command: string, o: { columns?: number; rows?: number; env?: NodeJS.ProcessEnv; cwd?: string } = {}): Pty {
  // script's terminal takes its size from script's own stdin, a pipe here: set it inside.
  const line = `stty cols ${o.columns ?? 100} rows ${o.rows ?? 30}; ${command}`;
  const child = spawn('script', ['--quiet', '--flush', '--return', '--command', line, '/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, TERM: 'xterm-256color', ...o.env },
    cwd: o.cwd,
  });
  let text = '';
  child.stdout.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  const proc = new Proc('pty', child);
  return {
    proc,
    output: () => text,
    type: (keys) => void child.stdin.write(keys),
    waitFor: (pattern, what, timeoutMs = 30_000) =>
      waitFor(
        what,
        () => {
          const found = typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text);
          if (!found && !proc.running) throw new Error(`the terminal's command exited; it showed: ${JSON.stringify(text.slice(-2000))}`);
          return found ? text : undefined;
        },
        timeoutMs,
      ),
    exited: proc.exited,
  };
}
