// `fleetwave completion`: the scripts it prints complete verbs in a real shell. Bash runs interactively in a
// pseudo-terminal and gets real TAB keys (readline calls the script, the script calls the built CLI); zsh
// is checked the same way when it is installed.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_MAIN } from '../harness/fleet.js';
import { hasScript, spawnPty } from '../harness/pty.js';

const RELEASE_VERBS = ['approve', 'cancel', 'continue', 'create', 'list', 'pause', 'reject', 'resume', 'retry', 'rollback', 'show', 'start', 'trigger', 'watch'];

describe('fleetwave completion', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-completion-'));
  // The scripts call `fleetwave` by name, as an installed CLI is: put one on PATH.
  const env = { PATH: `${dir}:${process.env.PATH}` };
  const cli = (...args: string[]) => spawnSync(process.execPath, [CLI_MAIN, ...args], { encoding: 'utf8' });

  beforeAll(() => {
    writeFileSync(join(dir, 'fleetwave'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_MAIN}" "$@"\n`);
    chmodSync(join(dir, 'fleetwave'), 0o755);
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses an unknown shell in one line, exit 2', () => {
    const result = cli('completion', 'tcsh');
    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^fleetwave: .*'tcsh' is invalid.*bash/)]);
  });

  it('answers the shell callback from the program: verbs, their subcommands, and flags', () => {
    expect(cli('complete', '--', 'rel').stdout).toMatch(/^release\t.*\n:4\n$/);
    const verbs = cli('complete', '--', 'release', '').stdout.split('\n').map((line) => line.split('\t')[0]);
    expect(verbs).toEqual(expect.arrayContaining(RELEASE_VERBS));
    expect(cli('complete', '--', 'release', 'create', '--wa').stdout).toMatch(/^--watch\t/m);
  });

  it.skipIf(!hasScript())('completes `fleetwave rel<TAB>`, `fleetwave release <TAB><TAB>` and a --file value in an interactive bash', async () => {
    // Sourced twice, as a re-read ~/.bashrc does: no readonly errors.
    const rc = join(dir, 'bashrc');
    writeFileSync(rc, `PS1='$ '\nsource <(fleetwave completion bash)\nsource <(fleetwave completion bash)\necho rc-loaded\n`);
    writeFileSync(join(dir, 'shop-2.0.tgz'), '');
    const bash = spawnPty(`exec bash --noprofile --rcfile ${rc} -i`, { env, cwd: dir });
    try {
      await bash.waitFor('rc-loaded', 'bash to read the completion script');
      expect(bash.output()).not.toMatch(/readonly|command not found|error/i);
      bash.type('fleetwave rel\t');
      await bash.waitFor('$ fleetwave release ', 'bash to complete rel to release', 60_000);
      bash.type('\t\t');
      // Readline lists the candidates in columns once the second TAB finds several.
      const listed = await bash.waitFor(new RegExp(RELEASE_VERBS.map((verb) => `(?=[\\s\\S]*\\b${verb}\\b)`).join('')), 'bash to list the release verbs', 60_000);
      expect(listed.slice(listed.indexOf('$ fleetwave release '))).toContain('rollback');
      // A flag's value fleetwave has no suggestion for completes as a file name.
      bash.type('\x15fleetwave edition install shop 1.0 --file shop-\t');
      await bash.waitFor('--file shop-2.0.tgz', 'bash to complete the file name', 60_000);
      bash.type('\x15exit\r');
      expect(await bash.exited).toBe(0);
    } finally {
      await bash.proc.kill();
    }
  });

  it.skipIf(!hasScript() || !existsSync('/usr/bin/zsh'))('completes `fleetwave rel<TAB>` in an interactive zsh', async () => {
    const zdot = mkdtempSync(join(dir, 'zsh-'));
    writeFileSync(join(zdot, '.zshrc'), `PS1='$ '\nautoload -U compinit && compinit -u\nsource <(fleetwave completion zsh)\necho rc-loaded\n`);
    const zsh = spawnPty('exec zsh -i', { env: { ...env, ZDOTDIR: zdot } });
    try {
      await zsh.waitFor('rc-loaded', 'zsh to read the completion script');
      zsh.type('fleetwave rel\t');
      await zsh.waitFor('fleetwave release', 'zsh to complete rel to release', 60_000);
      zsh.type('\x15exit\r');
      expect(await zsh.exited).toBe(0);
    } finally {
      await zsh.proc.kill();
    }
  });
});
