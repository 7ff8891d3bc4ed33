// fleetwave-nats-users.service's ExecStart (deploy/nats/install-nats-users.sh) against a scratch root: the
// controller's users file is checked by the real nats-server -t, installed root:nats 0640 and nats-server reloaded;
// an unchanged file changes nothing and a refused one leaves the installed file alone. setpriv and systemctl are
// recording stand-ins (nothing drops privileges or talks to systemd on this host).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newAgentNkey, renderNatsUsers } from '../../controller/nats-users.js';
import { repoPath } from '../harness/fleet.js';
import { HAS_NATS_SERVER } from '../harness/nats.js';
import { writeScript } from './deb-support.js';

const NATS_GROUP = spawnSync('getent', ['group', 'nats'], { encoding: 'utf8' }).stdout.split(':')[2];
const IS_ROOT = process.getuid?.() === 0;
const SCRIPT = repoPath('deploy/nats/install-nats-users.sh');
const TEMPLATE = '{ user: "controller", password: $FLEETWAVE_NATS_CONTROLLER_PASS }\n';

let dir: string;
let env: Record<string, string>;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-nats-users-install-'));
  const bin = join(dir, 'bin');
  // setpriv --reuid=USER ... -- CMD: logs USER and CMD, runs CMD as is.
  writeScript(join(bin, 'setpriv'), [
    'user=""; while [ "$1" != "--" ]; do case "$1" in --reuid=*) user="${1#--reuid=}" ;; esac; shift; done; shift',
    'echo "as $user: $1" >> "$CALLS"; exec "$@"',
  ].join('\n'));
  writeScript(join(bin, 'systemctl'), 'echo "systemctl $*" >> "$CALLS"; [ "$1" != is-active ] || [ "$NATS_ACTIVE" = 1 ]');
  env = { PATH: `${bin}:${process.env.PATH}`, TMPDIR: join(dir, 'tmp'), FLEETWAVE_NATS_CONTROLLER_PASS: 'x' };
  mkdirSync(env.TMPDIR!);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A scratch root with nats-server's config (which includes ./fleetwave-users.conf) and the controller's file. */
function scratchRoot(name: string, controllerFile: string): string {
  const root = join(dir, name);
  mkdirSync(join(root, 'etc/nats'), { recursive: true });
  mkdirSync(join(root, 'var/lib/fleetwave/controller'), { recursive: true });
  writeFileSync(join(root, 'etc/nats/nats-server.conf'), 'listen: 127.0.0.1:-1\ninclude ./limits.conf\ninclude ./fleetwave-users.conf\n');
  // Another relative include: the check must see nats-server's whole directory, not the users file alone.
  writeFileSync(join(root, 'etc/nats/limits.conf'), 'max_payload: 1MB\n');
  writeFileSync(join(root, 'etc/nats/fleetwave-users.conf'), renderNatsUsers(TEMPLATE, []), { mode: 0o640 });
  writeFileSync(join(root, 'var/lib/fleetwave/controller/nats-users.conf'), controllerFile, { mode: 0o640 });
  return root;
}

/** Runs the unit's ExecStart, its paths moved into `root` and the script taken from this checkout. */
function runExecStart(root: string, natsActive: boolean): { code: number | null; out: string; err: string; calls: string[] } {
  const unit = readFileSync(repoPath('deploy/systemd/fleetwave-nats-users.service'), 'utf8');
  const [program, ...args] = unit.match(/^ExecStart=(.*)$/m)![1]!.split(' ');
  expect(program).toBe('/usr/lib/fleetwave/install-nats-users');
  const scratchArgs = args.map((a) => (a.startsWith('/') ? join(root, a) : a));
  const calls = join(dir, 'calls.log');
  rmSync(calls, { force: true });
  const result = spawnSync('sh', [SCRIPT, ...scratchArgs], { encoding: 'utf8', env: { ...env, CALLS: calls, NATS_ACTIVE: natsActive ? '1' : '0' } });
  return {
    code: result.status,
    out: result.stdout,
    err: result.stderr,
    calls: existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : [],
  };
}

describe('install-nats-users', () => {
  it('parses as POSIX sh and refuses an unknown option in one line', () => {
    expect(spawnSync('sh', ['-n', SCRIPT]).status).toBe(0);
    const result = spawnSync('sh', [SCRIPT, '--bogus'], { encoding: 'utf8' });
    expect(result.status).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('fails in one line when nats-server is not set up on this host', () => {
    const root = scratchRoot('no-nats', renderNatsUsers(TEMPLATE, []));
    rmSync(join(root, 'etc/nats/nats-server.conf'));
    const result = runExecStart(root, false);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/^install-nats-users: \S+\/etc\/nats\/nats-server\.conf is missing: .*fleetwave-nats-users\.path.*\n$/);
  });
});

describe.skipIf(!IS_ROOT || !NATS_GROUP || !HAS_NATS_SERVER)('install-nats-users into a scratch root', () => {
  it('installs a file nats-server accepts as root:nats 0640, reloads a running nats-server, then leaves it alone', () => {
    const agent = { agentId: 'web-01', nkey: newAgentNkey().publicKey };
    const written = renderNatsUsers(TEMPLATE, [agent]);
    const root = scratchRoot('valid', written);
    const installed = join(root, 'etc/nats/fleetwave-users.conf');
    const first = runExecStart(root, true);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    expect(readFileSync(installed, 'utf8')).toBe(written);
    expect([statSync(installed).mode & 0o777, statSync(installed).uid, statSync(installed).gid]).toEqual([0o640, 0, Number(NATS_GROUP)]);
    // Read as the controller's user, checked as nats-server's; reloaded through the unit (Debian's: SIGHUP).
    expect(first.calls).toEqual(['as fleetwave: cat', 'as nats: nats-server', 'systemctl is-active --quiet nats-server.service', 'systemctl reload nats-server.service']);
    expect(readdirSync(join(root, 'etc/nats')).sort()).toEqual(['fleetwave-users.conf', 'limits.conf', 'nats-server.conf']);
    expect(readdirSync(env.TMPDIR!)).toEqual([]);

    const again = runExecStart(root, true);
    expect(again.code).toBe(0);
    expect(again.out).toContain('already up to date');
    expect(again.calls).toEqual(['as fleetwave: cat']);
  });

  it('refuses a file nats-server refuses: the installed one stays and nothing is reloaded', () => {
    const root = scratchRoot('refused', renderNatsUsers(TEMPLATE, []).replace('users = [', 'users = [ { user: "broken" '));
    const installed = join(root, 'etc/nats/fleetwave-users.conf');
    const before = readFileSync(installed, 'utf8');
    const result = runExecStart(root, true);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/^install-nats-users: nats-server refuses \S+nats-users\.conf, \S+fleetwave-users\.conf kept: .+\n$/);
    expect(readFileSync(installed, 'utf8')).toBe(before);
    expect(result.calls).not.toContainEqual(expect.stringMatching(/^systemctl/));
    expect(readdirSync(env.TMPDIR!)).toEqual([]);
  });

  it('installs without reloading when nats-server is not running (it reads the file when it starts)', () => {
    const written = renderNatsUsers(TEMPLATE, [{ agentId: 'web-02', nkey: newAgentNkey().publicKey }]);
    const root = scratchRoot('stopped', written);
    const result = runExecStart(root, false);
    expect(result.code).toBe(0);
    expect(result.out).toContain('nats-server is not running');
    expect(readFileSync(join(root, 'etc/nats/fleetwave-users.conf'), 'utf8')).toBe(written);
    expect(result.calls).not.toContain('systemctl reload nats-server.service');
  });
});
