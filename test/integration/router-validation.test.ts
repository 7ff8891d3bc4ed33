// Validation mode behind the edition router: real nats-server, controller, agents, apps, `fleetwave router` and the
// haproxy it starts. During the validation only the selected users (a header) reach the clone's 2.0, the others the
// target's 1.0; the rollout from the validation, under load from selected and other users through the router, loses
// no request and leaves everyone on 2.0 with the clone gone (the clone leaves the routers' rotation before its gate
// quiesces).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { LoadGenerator } from '../../examples/demo/load.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';
import { editionsOf, HAS_HAPROXY, startRouter, stopRouter, type RouterProc } from '../harness/router.js';

const APP = 'shop';
const SELECTED = { 'X-Validate': '1' };

describe.skipIf(!HAS_HAPROXY)('validation mode behind the edition router (real haproxy)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-router-validation-'));
  const runDir = join(dir, 'router');
  const fleet = new Fleet(dir);
  let frontPort = 0;
  let router: RouterProc | undefined;

  const ok = async (args: string[]): Promise<string> => {
    const result = await fleet.cli(args);
    expect(result.code, result.stderr).toBe(0);
    return result.stdout.trim();
  };
  const validation = async () => (JSON.parse(await ok(['edition', 'list', APP, '-o', 'json'])) as { validation?: { status: string } }).validation;

  beforeAll(async () => {
    // Given blue (a1, a2) and blue-validation (a3) on 1.0, behind a router
    await fleet.startNats();
    await fleet.startController();
    for (const [id, group] of [['a1', 'blue'], ['a2', 'blue'], ['a3', 'blue-validation']] as const) await fleet.startAgent(id, group, { [APP]: await freePort() });
    await fleet.adminClient.waitForAgents(['a1', 'a2', 'a3']);
    await ok(['app', 'create', APP, '--start', 'node server.js', '--env', 'START_DELAY_MS=200', '--update-order', 'stop-first']);
    for (const edition of ['1.0', '2.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
      await ok(['edition', 'install', APP, edition, '--file', pkg.path]);
    }
    await fleet.adminClient.waitForRelease(await ok(['release', 'create', APP, '--edition', '1.0', '--batches', '1']), ['Released']);
    frontPort = await freePort();
    router = await startRouter({ runDir, apps: { [APP]: frontPort }, controller: fleet.controller!.grpcAddress, natsUrl: fleet.nats!.url, id: 'r1', logFile: join(dir, 'router.log') });
    await waitFor('the router to serve 1.0', async () => (await editionsOf(frontPort, 6))['1.0'] === 6, 30_000);
  }, 180_000);

  afterAll(async () => {
    await stopRouter(router, runDir);
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends only the selected users to the clone while validating, then rolls out to everyone', async () => {
    // When 2.0 is validated on a clone of blue for the users with X-Validate: 1
    await ok(['edition', 'validate', APP, '2.0', '--target', 'blue', '--group', 'blue-validation', '--route', 'header:X-Validate=1']);
    await waitFor('the validation to be validating', async () => (await validation())?.status === 'validating', 60_000);
    // Then the selected users get 2.0, everyone else 1.0
    await waitFor('the rule to reach haproxy', async () => (await editionsOf(frontPort, 10, '/', SELECTED))['2.0'] === 10, 10_000);
    expect(await editionsOf(frontPort, 40, '/', SELECTED)).toEqual({ '2.0': 40 });
    expect(await editionsOf(frontPort, 40)).toEqual({ '1.0': 40 });

    // When it is rolled out from the validation, under load from selected users and others (clients that wait 2 s)
    const url = `http://127.0.0.1:${frontPort}/`;
    const loads = [new LoadGenerator({ urls: [url], concurrency: 4, requestTimeoutMs: 2_000, headers: SELECTED }), new LoadGenerator({ urls: [url], concurrency: 4, requestTimeoutMs: 2_000 })];
    for (const load of loads) load.start();
    try {
      const id = await ok(['release', 'create', APP, '--from-validation', '--batches', '2', '--drain', '5s']);
      await fleet.adminClient.waitForRelease(id, ['Released'], 90_000);
      await waitFor('the validation to end', async () => !(await validation()), 30_000);
    } finally {
      const [selected, others] = await Promise.all(loads.map((l) => l.stop()));
      // Then no request was lost, across the rollout and the clone's removal
      expect(selected!.failed, JSON.stringify(selected!.failures)).toBe(0);
      expect(others!.failed, JSON.stringify(others!.failures)).toBe(0);
      expect(selected!.ok).toBeGreaterThan(0);
    }
    // Then everyone (selected or not) gets 2.0 from blue; the clone is stopped
    await waitFor('everyone on 2.0', async () => (await editionsOf(frontPort, 10))['2.0'] === 10, 10_000);
    expect(await editionsOf(frontPort, 30, '/', SELECTED)).toEqual({ '2.0': 30 });
    const instances = await fleet.adminClient.instances(APP);
    expect(instances.map((i) => [i.instance, i.edition, i.status])).toEqual([
      ['a1', '2.0', 'running'],
      ['a2', '2.0', 'running'],
      ['a3', '2.0', 'stopped'],
    ]);
  }, 180_000);
});
