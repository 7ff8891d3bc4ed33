// The Debian packages (deploy/dist/deb.ts): what dpkg-deb says is in them, that systemd accepts their units, and
// that the packaged agent, unpacked into a scratch root, registers with a real controller.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopDataPath } from '../../agent/data-path.js';
import { buildDebs, REPO_ROOT, type BuiltDebs } from '../../deploy/dist/deb.js';
import { Admin, freePort, startController, startNats, waitFor, type ControllerProc, type Nats, type Proc } from '../harness/fleet.js';
import { canConnect, HAS_NATS_SERVER } from '../harness/nats.js';
import { spawnProc } from '../harness/proc.js';
import { AGENT_ARTIFACT_ENV, CLI_DIR_ENV, scratchDebInputs, writeScript } from './deb-support.js';

const HAS_SYSTEMD_ANALYZE = spawnSync('systemd-analyze', ['--version']).status === 0;

let dir: string;
let debs: BuiltDebs;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-deb-'));
  // The real bundles (about 3 s with esbuild), unless the environment names other artifacts.
  debs = await buildDebs(await scratchDebInputs(dir));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function dpkgDeb(...args: string[]): string {
  return execFileSync('dpkg-deb', args, { encoding: 'utf8' });
}

/** `dpkg-deb --contents` as path → "mode owner" (e.g. "-rwxr-xr-x root/root"). */
function contents(deb: string): Map<string, string> {
  const rows = dpkgDeb('--contents', deb).trim().split('\n');
  return new Map(rows.map((row) => {
    const [mode, owner, , , , path] = row.split(/\s+/);
    return [path!.replace(/^\./, '').replace(/\/$/, ''), `${mode} ${owner}`];
  }));
}

/** Unpacks `deb` into a fresh scratch root. */
function unpack(deb: string, name: string): string {
  const root = join(dir, name);
  dpkgDeb('-x', deb, root);
  return root;
}

describe('fleetwave-agent.deb', () => {
  it('names its version, dependencies, conffile and maintainer scripts', () => {
    expect(debs.agent).toMatch(/fleetwave-agent_0\.1\.0_[a-z0-9]+\.deb$/);
    const info = dpkgDeb('--info', debs.agent);
    expect(info).toMatch(/^ Package: fleetwave-agent$/m);
    expect(info).toMatch(/^ Version: 0\.1\.0$/m);
    expect(info).toMatch(/^ Depends: .*libc6/m);
    for (const script of ['postinst', 'prerm', 'postrm', 'conffiles']) expect(info).toContain(script);
    expect(dpkgDeb('--field', debs.agent, 'Package')).toBe('fleetwave-agent\n');
    const conffiles = dpkgDeb('--info', debs.agent, 'conffiles');
    expect(conffiles.trim()).toBe('/etc/fleetwave/agent.yaml');
  });

  it('holds the agent executable, its root-only config file and its unit, owned by root', () => {
    const files = contents(debs.agent);
    expect(files.get('/usr/bin/fleetwave-agent')).toBe('-rwxr-xr-x root/root');
    expect(files.get('/etc/fleetwave/agent.yaml')).toBe('-rw------- root/root');
    expect(files.get('/lib/systemd/system/fleetwave-agent.service')).toBe('-rw-r--r-- root/root');
    // The agent needs no node of its own when its artifact is an executable, and never better-sqlite3.
    expect([...files.keys()].some((p) => p.includes('better-sqlite3'))).toBe(false);
  });

  it('ships a bundle with a node and a wrapper that runs it with the flags given', async () => {
    const inputs = await scratchDebInputs(join(dir, 'bundle'), { version: '0.2.0', artifacts: 'stand-ins' });
    inputs.agentArtifact = join(dir, 'bundle/in/fleetwave-agent.cjs');
    writeFileSync(inputs.agentArtifact, 'console.log(JSON.stringify(process.argv.slice(2)));\n');
    const built = await buildDebs(inputs);
    const files = contents(built.agent);
    expect(files.get('/usr/lib/fleetwave-agent/node')).toBe('-rwxr-xr-x root/root');
    expect(files.get('/usr/lib/fleetwave-agent/fleetwave-agent.cjs')).toBe('-rw-r--r-- root/root');
    const root = unpack(built.agent, 'bundle-root');
    const out = execFileSync(join(root, 'usr/bin/fleetwave-agent'), ['--config', '/etc/fleetwave/agent.yaml', 'a b'], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['--config', '/etc/fleetwave/agent.yaml', 'a b']);
  });
});

describe('fleetwave-controller.deb', () => {
  it('names its conffiles and maintainer scripts', () => {
    const info = dpkgDeb('--info', debs.controller);
    expect(info).toMatch(/^ Package: fleetwave-controller$/m);
    const conffiles = dpkgDeb('--info', debs.controller, 'conffiles');
    expect(conffiles.trim().split('\n')).toEqual(['/etc/fleetwave/controller.yaml', '/etc/fleetwave/router.yaml']);
    const postinst = dpkgDeb('--info', debs.controller, 'postinst');
    // The shared shell functions are pasted in, so the script stands alone on the host.
    expect(postinst).toContain('ensure_fleetwave_user() {');
    expect(postinst).not.toContain('#COMMON#');
  });

  it('holds node, the CLI bundle with its assets, better-sqlite3 with its addon, the wrapper, configs and units', () => {
    const files = contents(debs.controller);
    expect(files.get('/usr/bin/fleetwave')).toBe('-rwxr-xr-x root/root');
    expect(files.get('/usr/lib/fleetwave/node')).toBe('-rwxr-xr-x root/root');
    expect(files.get('/usr/lib/fleetwave/fleetwave.cjs')).toMatch(/^-rw[-x]r-[-x]r-[-x] root\/root$/);
    expect(files.has('/usr/lib/fleetwave/fleetwave.lua')).toBe(true);
    expect(files.has('/usr/lib/fleetwave/node_modules/better-sqlite3/build/Release/better_sqlite3.node')).toBe(true);
    expect(files.has('/usr/lib/fleetwave/node_modules/better-sqlite3/lib/index.js')).toBe(true);
    expect(files.has('/usr/lib/fleetwave/node_modules/bindings/bindings.js')).toBe(true);
    // Build-time sources stay out.
    expect([...files.keys()].some((p) => p.includes('better-sqlite3/deps') || p.includes('better-sqlite3/src'))).toBe(false);
    expect(files.get('/etc/fleetwave/controller.yaml')).toBe('-rw-r----- root/root');
    expect(files.get('/etc/fleetwave/router.yaml')).toBe('-rw-r----- root/root');
    expect(files.get('/lib/systemd/system/fleetwave-controller.service')).toBe('-rw-r--r-- root/root');
    expect(files.get('/lib/systemd/system/fleetwave-router.service')).toBe('-rw-r--r-- root/root');
    // The root units that install the controller's NATS agent users for a nats-server on the same host.
    expect(files.get('/lib/systemd/system/fleetwave-nats-users.path')).toBe('-rw-r--r-- root/root');
    expect(files.get('/lib/systemd/system/fleetwave-nats-users.service')).toBe('-rw-r--r-- root/root');
    expect(files.get('/usr/lib/fleetwave/install-nats-users')).toBe('-rwxr-xr-x root/root');
  });

  it('runs the packaged fleetwave command from the unpacked tree', () => {
    const root = unpack(debs.controller, 'controller-root');
    const out = execFileSync(join(root, 'usr/bin/fleetwave'), ['--version'], { encoding: 'utf8' });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('maintainer scripts', () => {
  it('parse as POSIX sh', () => {
    for (const pkg of ['agent', 'controller']) {
      for (const script of ['postinst', 'prerm', 'postrm']) {
        const text = dpkgDeb('--info', pkg === 'agent' ? debs.agent : debs.controller, script);
        const check = spawnSync('sh', ['-n'], { input: text, encoding: 'utf8' });
        expect(check.stderr, `${pkg} ${script}`).toBe('');
        expect(check.status, `${pkg} ${script}`).toBe(0);
      }
    }
  });
});

/**
 * Runs a package's postinst with the commands that change the host replaced by stand-ins that log their argv;
 * getent answers from (and groupadd/useradd add to) a scratch list, as the host's user database would.
 */
function runPostinst(pkg: 'agent' | 'controller', args: string[], scratch: string): { out: string; calls: string[] } {
  const bin = join(scratch, 'bin');
  const log = join(scratch, 'calls.log');
  const users = join(scratch, 'users');
  writeScript(join(bin, 'getent'), `grep -qx "$1:$2" ${JSON.stringify(users)}`);
  writeScript(join(bin, 'groupadd'), `echo "groupadd $*" >> ${JSON.stringify(log)}; for last; do :; done; echo "group:$last" >> ${JSON.stringify(users)}`);
  writeScript(join(bin, 'useradd'), `echo "useradd $*" >> ${JSON.stringify(log)}; for last; do :; done; echo "passwd:$last" >> ${JSON.stringify(users)}`);
  for (const cmd of ['install', 'chown', 'chmod', 'systemctl']) writeScript(join(bin, cmd), `echo "${cmd} $*" >> ${JSON.stringify(log)}`);
  writeScript(join(bin, 'dpkg-statoverride'), 'exit 1');
  if (!existsSync(users)) writeFileSync(users, '');
  const postinst = join(scratch, 'postinst');
  writeFileSync(postinst, dpkgDeb('--info', pkg === 'agent' ? debs.agent : debs.controller, 'postinst'));
  const result = spawnSync('sh', [postinst, ...args], { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env.PATH}` } });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
  rmSync(log, { force: true });
  return { out: result.stdout, calls };
}

describe('postinst', () => {
  it.each(['agent', 'controller'] as const)('%s: creates the system user fleetwave once (the apps\' user on an agent host)', (pkg) => {
    const scratch = join(dir, `postinst-${pkg}`);
    const first = runPostinst(pkg, ['configure', ''], scratch);
    expect(first.calls).toContain('groupadd --system fleetwave');
    expect(first.calls).toContainEqual(expect.stringMatching(/^useradd --system --gid fleetwave .*--shell \/usr\/sbin\/nologin .*fleetwave$/));
    expect(first.out).toContain(`systemctl enable --now fleetwave-${pkg}`);
    const upgrade = runPostinst(pkg, ['configure', '0.0.9'], scratch);
    expect(upgrade.calls.filter((c) => /^(groupadd|useradd)/.test(c))).toEqual([]);
    expect(upgrade.out).toBe('');
  });

  it('controller: the TLS dir is made readable by group fleetwave', () => {
    const { calls } = runPostinst('controller', ['configure', ''], join(dir, 'postinst-tls'));
    expect(calls).toContain('install -d -m 0750 -o root -g fleetwave /etc/fleetwave/tls');
  });
});

describe.skipIf(!HAS_SYSTEMD_ANALYZE)('units', () => {
  // systemd-analyze checks that ExecStart's binary exists, so each unit is verified as a copy whose paths point
  // into the unpacked scratch root, beside copies of the package's other units (a .path names its .service).
  it.each([
    ['agent', 'fleetwave-agent.service'],
    ['controller', 'fleetwave-controller.service'],
    ['controller', 'fleetwave-router.service'],
    ['controller', 'fleetwave-nats-users.path'],
    ['controller', 'fleetwave-nats-users.service'],
  ] as const)('%s: systemd-analyze verify %s', (pkg, unit) => {
    const root = unpack(pkg === 'agent' ? debs.agent : debs.controller, `verify-${unit}`);
    const units = join(dir, `verify-${unit}`, 'units');
    mkdirSync(units);
    for (const name of readdirSync(join(root, 'lib/systemd/system'))) {
      const text = readFileSync(join(root, 'lib/systemd/system', name), 'utf8');
      writeFileSync(join(units, name), text.replaceAll('/usr/bin/', `${root}/usr/bin/`).replaceAll('/usr/lib/fleetwave/', `${root}/usr/lib/fleetwave/`).replaceAll('/etc/fleetwave/', `${root}/etc/fleetwave/`));
    }
    const result = spawnSync('systemd-analyze', ['verify', join(units, unit)], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('the from-checkout units are the packaged ones', () => {
    const root = unpack(debs.controller, 'same-units');
    for (const unit of ['fleetwave-controller.service', 'fleetwave-router.service', 'fleetwave-nats-users.path', 'fleetwave-nats-users.service']) {
      expect(readFileSync(join(root, 'lib/systemd/system', unit), 'utf8')).toBe(readFileSync(join(REPO_ROOT, 'deploy/systemd', unit), 'utf8'));
    }
    // What test/integration/install-nats-users.test.ts runs from the checkout.
    expect(readFileSync(join(root, 'usr/lib/fleetwave/install-nats-users'), 'utf8')).toBe(readFileSync(join(REPO_ROOT, 'deploy/nats/install-nats-users.sh'), 'utf8'));
  });
});

describe.skipIf(!HAS_NATS_SERVER)('the packages, unpacked into scratch roots', () => {
  const artifacts = `agent: ${process.env[AGENT_ARTIFACT_ENV] || 'bundle'}; cli: ${process.env[CLI_DIR_ENV] || 'bundle'}`;
  it(`the packaged agent registers with the packaged controller and its gate host serves (${artifacts})`, async () => {
    const agentRoot = unpack(debs.agent, 'agent-root');
    const controllerRoot = unpack(debs.controller, 'controller-root-run');
    const dataDir = join(dir, 'agent-data');
    let nats: Nats | undefined;
    let controller: ControllerProc | undefined;
    let agent: Proc | undefined;
    try {
      nats = await startNats(join(dir, 'nats'));
      controller = await startController({
        program: [join(controllerRoot, 'usr/bin/fleetwave'), 'controller'],
        dataDir: join(dir, 'controller-data'),
        natsUrl: nats.url,
        logFile: join(dir, 'controller.log'),
      });
      const servicePort = await freePort();
      agent = spawnProc('packaged agent', join(agentRoot, 'usr/bin/fleetwave-agent'), [
        '--insecure', '--id', 'deb-1', '--group', 'packaged', '--instance', `shop:127.0.0.1:${servicePort}`,
        '--controller', controller.grpcAddress, '--nats', nats.url, '--data-dir', dataDir,
      ]);
      const admin = new Admin(controller.grpcAddress);
      try {
        await admin.waitForAgents(['deb-1'], 30_000);
        expect((await admin.agents()).find((a) => a.id === 'deb-1')?.group).toBe('packaged');
        // The gate host (the packaged artifact re-run in its gate mode) owns the service port.
        await waitFor(`the gate on port ${servicePort}`, () => canConnect(servicePort));
      } finally {
        admin.close();
      }
    } finally {
      await agent?.stop();
      await stopDataPath(dataDir);
      await controller?.stop();
      await nats?.stop();
    }
  });
});
