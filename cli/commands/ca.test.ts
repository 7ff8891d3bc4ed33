// `fleetwave ca init`: the directory and files it writes are readable by the daemons' group, and no more.
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bufferIo } from '../io.js';
import { runProgram } from '../program.js';
import { caGroup } from './ca.js';

const IS_ROOT = process.getuid?.() === 0;
/** A group every Debian host has, standing in for `fleetwave`, with a user of the same name. */
const GROUP = 'daemon';
const GROUP_ID = Number(spawnSync('getent', ['group', GROUP], { encoding: 'utf8' }).stdout.split(':')[2]);
const USER_ID = Number(spawnSync('id', ['-u', GROUP], { encoding: 'utf8' }).stdout.trim());

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

async function ca(...args: string[]) {
  const io = bufferIo({});
  const code = await runProgram(['ca', ...args], io);
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') };
}
const caInit = (...args: string[]) => ca('init', ...args);

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-ca-'));
  dirs.push(dir);
  // Traversable, as /etc/fleetwave is: only the CA directory's own mode decides.
  chmodSync(dir, 0o755);
  return join(dir, 'tls');
}

const modeOf = (path: string) => statSync(path).mode & 0o777;

/** Whether `cat path` succeeds as the group's user (no other groups). */
function readableBy(path: string): boolean {
  return spawnSync('cat', [path], { uid: USER_ID, gid: GROUP_ID, stdio: 'ignore' }).status === 0;
}

describe('caGroup', () => {
  const lookup = (name: string) => ({ fleetwave: 990, ops: 42 })[name];
  it.each([
    ['--group given', 'ops', true, { name: 'ops', gid: 42 }],
    ['--group given, not root', 'ops', false, { name: 'ops', gid: 42 }],
    ['root, fleetwave exists', undefined, true, { name: 'fleetwave', gid: 990 }],
    ['not root', undefined, false, undefined],
  ] as const)('%s', (_, flag, isRoot, expected) => {
    expect(caGroup(flag, lookup, isRoot)).toEqual(expected);
  });
  it('root without a fleetwave group: none', () => {
    expect(caGroup(undefined, () => undefined, true)).toBeUndefined();
  });
  it('an unknown group is a usage error naming it', () => {
    expect(() => caGroup('nope', lookup, true)).toThrow("--group: no group 'nope' on this host");
  });
});

describe.skipIf(!IS_ROOT || !Number.isInteger(GROUP_ID) || !Number.isInteger(USER_ID))('ca init --group (as root)', () => {
  it('dir 0750 and controller.key 0640 to the group, certificates 0644, ca.key 0600 root', async () => {
    const dir = scratch();
    const result = await caInit('--dir', dir, '--group', GROUP);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`readable by group ${GROUP}`);
    expect([modeOf(dir), statSync(dir).gid]).toEqual([0o750, GROUP_ID]);
    expect([modeOf(join(dir, 'controller.key')), statSync(join(dir, 'controller.key')).gid]).toEqual([0o640, GROUP_ID]);
    expect(modeOf(join(dir, 'controller.crt'))).toBe(0o644);
    expect(modeOf(join(dir, 'ca.crt'))).toBe(0o644);
    expect([modeOf(join(dir, 'ca.key')), statSync(join(dir, 'ca.key')).uid]).toEqual([0o600, 0]);
    // What the controller's unit (User=fleetwave) needs, and not the CA's key.
    expect(readableBy(join(dir, 'controller.crt'))).toBe(true);
    expect(readableBy(join(dir, 'controller.key'))).toBe(true);
    expect(readableBy(join(dir, 'ca.crt'))).toBe(true);
    expect(readableBy(join(dir, 'ca.key'))).toBe(false);
  });

  it('fixes an existing directory (as the package makes it) and keeps the CA on a second run', async () => {
    const dir = scratch();
    await caInit('--dir', dir);
    expect(readableBy(join(dir, 'controller.key'))).toBe(false);
    const again = await caInit('--dir', dir, '--group', GROUP);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already exists');
    const forced = await caInit('--dir', dir, '--group', GROUP, '--force');
    expect(forced.code).toBe(0);
    expect([modeOf(dir), statSync(dir).gid]).toEqual([0o750, GROUP_ID]);
    expect(readableBy(join(dir, 'controller.key'))).toBe(true);
  });

  it('an unknown group fails in one line before anything is written', async () => {
    const dir = scratch();
    const result = await caInit('--dir', dir, '--group', 'no-such-group-fw');
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain("--group: no group 'no-such-group-fw'");
  });
});

describe('ca issue', () => {
  it("signs a certificate for another host's names with the CA of ca init", async () => {
    const dir = scratch();
    await caInit('--dir', dir);
    const out = join(dir, '..', 'nats');
    const result = await ca('issue', '--dir', dir, '--name', 'nats-1.example.internal', '--san', '10.0.0.5', '--out-dir', out);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const cert = new X509Certificate(readFileSync(join(out, 'nats-1.example.internal.crt')));
    expect(cert.verify(new X509Certificate(readFileSync(join(dir, 'ca.crt'))).publicKey)).toBe(true);
    expect(cert.checkHost('nats-1.example.internal')).toBe('nats-1.example.internal');
    expect(cert.checkIP('10.0.0.5')).toBe('10.0.0.5');
    expect(cert.checkHost('localhost')).toBeUndefined();
    expect(modeOf(join(out, 'nats-1.example.internal.key'))).toBe(0o600);
    const again = await ca('issue', '--dir', dir, '--name', 'nats-1.example.internal', '--out-dir', out);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('already exists');
  });

  it('without a CA: one line saying to run ca init first', async () => {
    const result = await ca('issue', '--dir', scratch(), '--name', 'nats-1');
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^fleetwave: .*--dir: no .*ca\.key \(run fleetwave ca init --dir .* first/);
  });
});
