import { describe, expect, it } from 'vitest';
import { bufferIo } from '../io.js';
import { runProgram } from '../program.js';
import { completionScript } from './completion.js';

describe('fleetwave completion', () => {
  it('prints the script through io, calling back the program by name', async () => {
    const io = bufferIo();
    expect(await runProgram(['completion', 'bash'], io)).toBe(0);
    const text = io.stdout.join('\n');
    expect(text).toContain('complete -F __fleetwave_complete fleetwave');
    expect(text).toContain('fleetwave complete -- ');
  });

  it('makes the bash script work without bash-completion and safe to source twice', () => {
    const bash = completionScript('bash', 'fleetwave');
    expect(bash).toMatch(/^__fleetwave_words\(\) \{$/m);
    expect(bash).toContain('    __fleetwave_words\n');
    expect(bash).not.toMatch(/^readonly /m);
    expect(bash).not.toMatch(/\$ShellCompDirective/);
  });

  it('refuses an unknown shell as bad input (exit 2), in one line', async () => {
    const io = bufferIo();
    expect(await runProgram(['completion', 'tcsh'], io)).toBe(2);
    expect(io.stderr).toEqual([expect.stringMatching(/^fleetwave: .*'tcsh' is invalid/)]);
  });

  it('leaves the zsh script as tab writes it', () => {
    expect(completionScript('zsh', 'fleetwave')).toMatch(/^#compdef fleetwave\ncompdef _fleetwave fleetwave/);
  });
});
