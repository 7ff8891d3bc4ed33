// deploy/install.sh: each role does only its own steps, --dry-run changes nothing, and a second run changes
// nothing (run for real into a scratch root, with apt-get and systemctl replaced by recording stand-ins).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDebs, type BuiltDebs } from '../../deploy/dist/deb.js';
import { repoPath } from '../harness/fleet.js';
import { scratchDebInputs, writeScript } from './deb-support.js';

const SCRIPT = repoPath('deploy/install.sh');
const NATS_GROUP = spawnSync('getent', ['group', 'nats'], { encoding: 'utf8' }).stdout.split(':')[2];
const IS_ROOT = process.getuid?.() === 0;

let dir: string;
let debs: BuiltDebs;
/** PATH with stand-ins first: apt-get records what it installs (as dpkg's status would), systemctl and make fail. */
let shimPath: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-install-'));
  debs = await buildDebs(await scratchDebInputs(dir, { artifacts: 'stand-ins' }));
  const bin = join(dir, 'bin');
  writeScript(join(bin, 'apt-get'), [
    'echo "apt-get $*" >> "$INSTALL_LOG"',
    'deb="$3"; [ -f "$deb" ] || exit 0',
    'status="$INSTALL_ROOT/var/lib/dpkg/status"; mkdir -p "$(dirname "$status")/info" "$(dirname "$status")/updates"',
    'printf "Package: %s\\nStatus: install ok installed\\nVersion: %s\\nArchitecture: amd64\\nMaintainer: x\\nDescription: y\\n\\n" "$(dpkg-deb --field "$deb" Package)" "$(dpkg-deb --field "$deb" Version)" >> "$status"',
  ].join('\n'));
  for (const cmd of ['systemctl', 'make', 'useradd', 'groupadd']) writeScript(join(bin, cmd), `echo "${cmd} $*" >> "$INSTALL_LOG"; exit 1`);
  shimPath = `${bin}:${process.env.PATH}`;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function install(args: string[], env: Record<string, string> = {}): { code: number | null; out: string; err: string } {
  const result = spawnSync('bash', [SCRIPT, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: result.status, out: result.stdout, err: result.stderr };
}

describe('deploy/install.sh', () => {
  it('parses (bash -n) and refuses a missing or unknown role or option', () => {
    expect(spawnSync('bash', ['-n', SCRIPT]).status).toBe(0);
    for (const args of [[], ['router'], ['agent', '--bogus']]) {
      const result = install(args);
      expect(result.code, args.join(' ')).toBe(2);
      expect(result.err).toContain('usage: deploy/install.sh controller|agent|nats');
    }
  });

  it('agent --dry-run: installs the agent package only, changes nothing, and says the same twice', () => {
    const first = install(['agent', '--deb', debs.agent, '--dry-run']);
    expect(first.code).toBe(0);
    expect(first.out).toContain(`would: apt-get install -y ${debs.agent}`);
    expect(first.out).not.toMatch(/nats-server|fleetwave-controller|ca init/);
    expect(install(['agent', '--deb', debs.agent, '--dry-run']).out).toBe(first.out);
  });

  it('controller --dry-run: the controller package and a CA readable by group fleetwave', () => {
    const first = install(['controller', '--deb', debs.controller, '--dry-run']);
    expect(first.code).toBe(0);
    expect(first.out).toContain(`would: apt-get install -y ${debs.controller}`);
    expect(first.out).toMatch(/would: fleetwave ca init --dir \/etc\/fleetwave\/tls --group fleetwave --san \S+/);
    expect(first.out).not.toMatch(/nats-server\.conf|fleetwave-agent/);
    expect(install(['controller', '--deb', debs.controller, '--dry-run']).out).toBe(first.out);
  });

  it('without --deb and no package built, --dry-run would build one with make dist', () => {
    // Packages are looked for in an empty directory, whatever `make dist` left in this checkout.
    const result = install(['agent', '--dry-run'], { FLEETWAVE_PKG_DIR: join(dir, 'no-packages') });
    expect(result.out).toMatch(/would: make -C \S+ dist/);
  });

  it('nats --dry-run: nats-server config, users, passwords, drop-in; nothing of the agent or controller', () => {
    const single = install(['nats', '--dry-run']);
    expect(single.code).toBe(0);
    expect(single.out).toMatch(/single\.conf \/etc\/nats\/nats-server\.conf/);
    expect(single.out).toContain('/etc/systemd/system/nats-server.service.d/fleetwave.conf');
    expect(single.out).toContain('would: write /etc/nats/fleetwave.env');
    expect(single.out).not.toMatch(/fleetwave-agent|fleetwave-controller/);
    expect(install(['nats', '--cluster', '--dry-run']).out).toMatch(/cluster\.conf \/etc\/nats\/nats-server\.conf/);
  });
});

describe.skipIf(!IS_ROOT)('deploy/install.sh into a scratch root, twice', () => {
  it('agent: installs the package once; the second run changes nothing', () => {
    const root = join(dir, 'agent-root');
    const env = { PATH: shimPath, INSTALL_ROOT: root, INSTALL_LOG: join(dir, 'agent.log') };
    const first = install(['agent', '--deb', debs.agent, '--root', root], env);
    expect(first.err).toBe('');
    expect(first.out).toContain(`+ apt-get install -y ${debs.agent}`);
    const second = install(['agent', '--deb', debs.agent, '--root', root], env);
    expect(second.code).toBe(0);
    expect(second.out).toContain('fleetwave-agent 0.1.0 already installed');
    expect(second.out).toContain('nothing to change: agent is installed');
    expect(readFileSync(env.INSTALL_LOG, 'utf8').trim().split('\n')).toEqual([`apt-get install -y ${debs.agent}`]);
  });

  it.skipIf(!NATS_GROUP)('nats: config, users, passwords, TLS and drop-in once, with their modes; the second run changes nothing', () => {
    const root = join(dir, 'nats-root');
    // The controller's certificate on the same host: nats-server gets a copy it may read.
    mkdirSync(join(root, 'etc/fleetwave/tls'), { recursive: true });
    writeFileSync(join(root, 'etc/fleetwave/tls/controller.crt'), 'CERT\n');
    writeFileSync(join(root, 'etc/fleetwave/tls/controller.key'), 'KEY\n', { mode: 0o600 });
    const env = { PATH: shimPath, INSTALL_ROOT: root, INSTALL_LOG: join(dir, 'nats.log') };
    const first = install(['nats', '--root', root], env);
    expect(first.err).toBe('');
    expect(first.code).toBe(0);
    const file = (p: string) => join(root, 'etc/nats', p);
    const modeGroup = (p: string) => [statSync(p).mode & 0o777, statSync(p).gid];
    expect(readFileSync(file('nats-server.conf'), 'utf8')).toBe(readFileSync(repoPath('deploy/nats/single.conf'), 'utf8'));
    expect(modeGroup(file('fleetwave-users.conf'))).toEqual([0o640, Number(NATS_GROUP)]);
    expect(modeGroup(file('tls/server.key'))).toEqual([0o640, Number(NATS_GROUP)]);
    expect(statSync(file('fleetwave.env')).mode & 0o777).toBe(0o600);
    const secrets = readFileSync(file('fleetwave.env'), 'utf8');
    expect(secrets).toMatch(/^FLEETWAVE_NATS_CONTROLLER_PASS=\w{16,}$/m);
    expect(existsSync(join(root, 'etc/systemd/system/nats-server.service.d/fleetwave.conf'))).toBe(true);
    const second = install(['nats', '--root', root], env);
    expect(second.code).toBe(0);
    expect(second.out).toContain('nothing to change: nats is installed');
    expect(readFileSync(file('fleetwave.env'), 'utf8')).toBe(secrets);
    // Outside systemd (a scratch root) nothing is restarted; nats-server was there, so apt-get never ran.
    expect(existsSync(env.INSTALL_LOG)).toBe(false);
  });
});
