// --app-user: resolved with `id`, refused for root or unknown users, and the app really runs under that uid.
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { resolveAppUser } from './app-user.js';
import { downloadPackage } from './commands/download-package.js';
import type { CommandContext } from './commands/types.js';
import { GateLink } from './gate-link.js';
import { Instance } from './instance.js';
import { compileAgentOptions } from './options.js';
import { AgentState } from './state.js';
import { AppSupervisor } from './supervisor.js';
import { buildPackage, serveFiles, tempDir, waitFor } from './test-support.js';

const logger = createLogger({ name: 'app-user-test', level: 'silent' });
const dir = tempDir('app-user');
const nobody = (() => {
  try {
    return resolveAppUser('nobody', true);
  } catch {
    return null;
  }
})();
const asRoot = process.getuid?.() === 0;

describe('resolveAppUser', () => {
  it('keeps the agent user when no user is given or the agent is not root, and refuses root or unknown users', () => {
    expect(resolveAppUser('', true)).toBeNull();
    expect(resolveAppUser('nobody', false)).toBeNull();
    expect(() => resolveAppUser('root', true)).toThrow(/is root/);
    expect(() => resolveAppUser('no-such-user-fleetwave', true)).toThrow(/no user 'no-such-user-fleetwave'/);
  });
});

describe.skipIf(!asRoot || !nobody)('an agent running as root with --app-user nobody', () => {
  const supervisors: AppSupervisor[] = [];
  afterAll(async () => {
    await Promise.all(supervisors.map((s) => s.shutdown(1000)));
    dir.remove();
  });

  it('starts the app as that uid and gid', async () => {
    // The edition directory must be reachable by the app user (tempDir makes its root 0700).
    chmodSync(dir.path, 0o755);
    const s = new AppSupervisor({ app: 'shop', instanceId: 'a', internalPort: 0, logPath: join(dir.path, 'app.log'), startGraceMs: 100, runAs: nobody!, events: { publish: () => {} }, logger, onPid: () => {} });
    supervisors.push(s);
    const spec = { name: 'shop', startCommand: [process.execPath, '-e', 'console.log(JSON.stringify({uid: process.getuid(), gid: process.getgid()})); setInterval(() => {}, 1000)'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000 } as unknown as AppSpec;
    await s.start('1.0', spec, dir.path);
    const line = await waitFor('the app to print its ids', () => readFileSync(join(dir.path, 'app.log'), 'utf8').split('\n').find((l) => l.startsWith('{')));
    expect(JSON.parse(line)).toEqual({ uid: nobody!.uid, gid: nobody!.gid });
  });
});

// Issue 8, defect 6: the data dir is 0700 (root), so an app run as --app-user could not reach its edition and died
// with "Cannot find module"; the agent now opens the app's tree to the user's group, and says why when it cannot.
describe.skipIf(!asRoot || !nobody)('an edition unpacked into a 0700 data dir, run as --app-user nobody', () => {
  const root = tempDir('app-user-tree');
  // As /var/lib is: the data dir's parent is open; the data dir itself is the agent's (0700).
  chmodSync(root.path, 0o755);
  const opened: Instance[] = [];
  const states: AgentState[] = [];
  const links: GateLink[] = [];
  let files: Awaited<ReturnType<typeof serveFiles>>;
  afterAll(async () => {
    await Promise.all(opened.map((i) => i.close()));
    // The gate hosts outlive nothing here: each is told to stop.
    await Promise.all(links.map((l) => l.request({ op: 'shutdown' }).catch(() => undefined).finally(() => l.close())));
    // Pending state writes land before the directory goes.
    await Promise.all(states.map((s) => s.flush()));
    await files?.close();
    root.remove();
  });

  const spec = { name: 'shop', startCommand: [process.execPath, 'server.js'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000 } as unknown as AppSpec;

  async function agentWith(dataDir: string) {
    const options = compileAgentOptions({ appUser: 'nobody', dataDir, bootId: 'b', startGraceMs: 200 });
    const state = await AgentState.open(dataDir);
    states.push(state);
    const link = await GateLink.open(dataDir, logger);
    links.push(link);
    const instance = await Instance.open({ app: 'shop', servicePort: 0 }, { ...options, gateHost: '127.0.0.1' }, state, { publish: () => {} }, logger, link);
    opened.push(instance);
    return { options, state, instance };
  }

  it('is readable by the app user: the app loads its own modules', async () => {
    // Given an agent (root, data dir 0700) and a package whose server requires a second file
    const pkg = await buildPackage(root.path, '1.0', { 'server.js': "const v = require('./lib.js'); console.log(JSON.stringify({ v, uid: process.getuid() })); setInterval(() => {}, 1000);", 'lib.js': 'module.exports = 42;' });
    files = await serveFiles(root.path);
    const { options, state, instance } = await agentWith(join(root.path, 'agent'));
    expect(statSync(options.dataDir).mode & 0o007).toBe(0);
    // When the edition is downloaded and started as nobody
    const ctx = { command: { commandId: 'c', app: 'shop', deadlineUnixMs: 0, releaseId: '' }, instance, instances: new Map([['shop', instance]]), state, events: { publish: () => {} }, options, logger, signal: new AbortController().signal } as unknown as CommandContext;
    await downloadPackage.run(ctx, { edition: '1.0', url: `${files.url}/1.0.tar.gz`, sha256: pkg.sha256, size: pkg.size, format: 'tar.gz', fileName: '', keepEditions: 3 });
    await instance.activate('1.0', spec);
    // Then it runs as nobody and found its module
    const line = await waitFor('the app to print', () => readFileSync(join(instance.appDir, 'app.log'), 'utf8').split('\n').find((l) => l.startsWith('{')));
    expect(JSON.parse(line)).toEqual({ v: 42, uid: nobody!.uid });
    // While the agent's own state stays unreadable to it
    expect(statSync(join(options.dataDir, 'apps.json')).mode & 0o077).toBe(0);
  });

  it('says which directory the app user cannot reach instead of letting the app die with "Cannot find module"', async () => {
    const dataDir = join(root.path, 'closed');
    const editionPath = join(dataDir, 'apps', 'shop', 'editions', '1.0');
    mkdirSync(editionPath, { recursive: true, mode: 0o700 });
    chmodSync(dataDir, 0o700);
    const s = new AppSupervisor({ app: 'shop', instanceId: 'a', internalPort: 0, logPath: join(root.path, 'closed.log'), startGraceMs: 100, runAs: nobody!, events: { publish: () => {} }, logger, onPid: () => {} });
    await expect(s.start('1.0', spec, editionPath)).rejects.toThrow(/could not start edition 1\.0: user nobody \(uid \d+\) cannot traverse .*closed \(mode 0700, owner 0:0\)/);
  });
});
