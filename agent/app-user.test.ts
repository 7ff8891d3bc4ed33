// --app-user: resolved with `id`, refused for root or unknown users, and the app really runs under that uid.
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { resolveAppUser } from './app-user.js';
import { AppSupervisor } from './supervisor.js';
import { tempDir, waitFor } from './test-support.js';

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
