// Routing rules and the routing watch against a real controller, real agents and the real CLI: rules added, listed
// and removed with change records; refusals one line each with nothing changed; a WatchRouting client (as a router
// is) gets the full update, then instance deltas as a release moves instances, then the app again when a rule changes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, status, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { AdminServiceClient, type AppRouting, type RoutedInstance, type RoutingUpdate } from '../../proto/gen/fleetwave/v1/admin.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';

const APP = 'shop';
type CliResult = { code: number; stdout: string; stderr: string };

function ok(result: CliResult): string {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

function refused(result: CliResult, code: number, pattern: RegExp): void {
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.code, result.stderr).toBe(code);
  expect(result.stdout).toBe('');
}

/** A router's side of WatchRouting: every update kept, in order; with `ack`, each acked as a router does once applied. */
class Watch {
  readonly updates: RoutingUpdate[] = [];
  error: ServiceError | undefined;
  private readonly stream: ClientReadableStream<RoutingUpdate>;

  constructor(client: AdminServiceClient, apps: string[], routerId: string, ack = false) {
    this.stream = client.watchRouting({ apps, routerId }, new Metadata());
    this.stream.on('data', (u: RoutingUpdate) => {
      this.updates.push(u);
      if (ack) client.ackRouting({ routerId, version: u.version }, () => {});
    });
    this.stream.on('error', (err: ServiceError) => (this.error = err));
  }

  /** The app as the last update that carried it says. */
  app(name: string): AppRouting | undefined {
    return [...this.updates].reverse().flatMap((u) => u.apps).find((a) => a.app === name);
  }

  /** The instance as the updates so far say it is (an app update lists every instance; later deltas win). */
  instance(id: string): RoutedInstance | undefined {
    let found: RoutedInstance | undefined;
    for (const u of this.updates) {
      for (const app of u.apps) found = app.instances.find((i) => i.instance === id) ?? found;
      found = u.instances.find((i) => i.instance === id) ?? found;
    }
    return found;
  }

  close(): void {
    this.stream.on('error', () => {});
    this.stream.cancel();
  }
}

describe('routing rules and the routing watch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-routing-'));
  const fleet = new Fleet(dir);
  const ports: Record<string, number> = {};
  let client: AdminServiceClient;
  let watch: Watch;

  beforeAll(async () => {
    // Given three agents (blue a1, a2; green a3, which advertises its address) serving shop, on 1.0 everywhere
    await fleet.startNats();
    await fleet.startController();
    for (const [id, group] of [['a1', 'blue'], ['a2', 'blue'], ['a3', 'green']] as const) {
      ports[id] = await freePort();
      await fleet.startAgent(id, group, { [APP]: ports[id]! }, id === 'a3' ? ['--advertise', 'localhost'] : []);
    }
    await fleet.adminClient.waitForAgents(['a1', 'a2', 'a3']);
    ok(await fleet.cli(['app', 'create', APP, '--start', 'node server.js']));
    for (const edition of ['1.0', '2.0', '3.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
      ok(await fleet.cli(['edition', 'install', APP, edition, '--file', pkg.path]));
    }
    const id = ok(await fleet.cli(['release', 'create', APP, '--edition', '1.0', '--batches', '1'])).trim();
    expect((await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'])).release?.status).toBe('Released');
    client = new AdminServiceClient(fleet.controller!.grpcAddress, credentials.createInsecure());
    // And a router watching shop, acking what it gets
    watch = new Watch(client, [APP], 'test-router', true);
    await waitFor('the full update', () => watch.updates.length > 0, 10_000);
  }, 180_000);

  afterAll(async () => {
    watch?.close();
    client?.close();
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts the watch with the whole app: default edition, every instance with its address, gate port and state', () => {
    const first = watch.updates[0]!;
    expect(first).toMatchObject({ full: true, instances: [] });
    expect(first.apps).toHaveLength(1);
    expect(first.apps[0]).toMatchObject({ app: APP, defaultEditions: ['1.0'], routes: [], healthPath: '/healthz' });
    expect(first.apps[0]!.instances.map((i) => [i.instance, i.group, i.address, i.port, i.edition, i.state, i.held])).toEqual([
      ['a1', 'blue', '127.0.0.1', ports.a1, '1.0', 'ready', false],
      ['a2', 'blue', '127.0.0.1', ports.a2, '1.0', 'ready', false],
      ['a3', 'green', 'localhost', ports.a3, '1.0', 'ready', false],
    ]);
  });

  it('refuses a watch of an app that does not exist: NOT_FOUND, one line', async () => {
    const bad = new Watch(client, [APP, 'nope'], 'test-router-2');
    await waitFor('the refusal', () => bad.error, 10_000);
    expect(bad.error!.code).toBe(status.NOT_FOUND);
    expect(bad.error!.details).toBe("app 'nope' does not exist");
    expect(bad.updates).toEqual([]);
  });

  it('refuses bad rules with one line and the right exit code, changing nothing', async () => {
    const route = (...flags: string[]) => fleet.cli(['route', 'add', APP, ...flags]);
    refused(await route('--edition', '9.9', '--header', 'X-Beta=1'), 2, /^fleetwave: edition '9\.9' of app 'shop' does not exist$/);
    refused(await route('--edition', '2.0', '--header', 'X-Beta=1'), 1, /^fleetwave: edition 2\.0 of shop is active nowhere; release it to a group first$/);
    refused(await fleet.cli(['route', 'add', 'nope', '--edition', '1.0', '--percent', '5']), 2, /^fleetwave: app 'nope' does not exist$/);
    refused(await route('--edition', '1.0', '--source', '10.1.0.0/33'), 2, /^fleetwave: route: source: '10\.1\.0\.0\/33' has a prefix length/);
    refused(await route('--edition', '1.0', '--source', '10.1.2.3/16'), 2, /host bits set; did you mean 10\.1\.0\.0\/16\?$/);
    refused(await route('--edition', '1.0', '--header', 'X Beta=1'), 2, /header name 'X Beta' is not a token/);
    refused(await route('--edition', '1.0', '--header', 'X-Beta'), 2, /^fleetwave: --header: 'X-Beta' is not NAME=VALUE$/);
    refused(await route('--edition', '1.0', '--percent', '0'), 2, /^fleetwave: --percent: '0' is not a whole number from 1 to 100$/);
    refused(await route('--edition', '1.0', '--header', 'X-Beta=1', '--cookie', 'beta=1'), 2, /give exactly one of .* \(got --header and --cookie\)$/);
    refused(await fleet.cli(['route', 'remove', APP, 'rt-nope']), 2, /^fleetwave: route 'rt-nope' of app 'shop' does not exist$/);
    // The controller checks what a client other than the CLI sends, too.
    const raw = await new Promise<ServiceError | null>((resolve) =>
      client.addRoute({ route: { id: '', app: APP, edition: '1.0', kind: 'source', name: '', value: '10.0.0.0/99', percent: 0, priority: 0, createdUnixMs: 0, createdBy: '' }, comment: '' }, (err) => resolve(err)),
    );
    expect(raw?.code).toBe(status.INVALID_ARGUMENT);
    expect(JSON.parse(ok(await fleet.cli(['route', 'list', APP, '-o', 'json'])))).toEqual([]);
  });

  it('refuses a rule on an app no router fronts: one line, nothing changed', async () => {
    ok(await fleet.cli(['app', 'create', 'api', '--start', 'node server.js']));
    const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition: '1.0', outDir: join(dir, 'packages-api'), name: 'api' });
    ok(await fleet.cli(['edition', 'install', 'api', '1.0', '--file', pkg.path]));
    refused(await fleet.cli(['route', 'add', 'api', '--edition', '1.0', '--header', 'X-Beta=1']), 1, /^fleetwave: no router fronts app 'api'; start one \(fleetwave router --app api=ADDR:PORT\) before adding rules$/);
    expect(JSON.parse(ok(await fleet.cli(['route', 'list', 'api', '-o', 'json'])))).toEqual([]);
  });

  it('sends instance deltas as a release moves blue to 2.0; the default stays 1.0 while green runs it', async () => {
    const before = watch.updates.length;
    const id = ok(await fleet.cli(['release', 'create', APP, '--edition', '2.0', '--group', 'blue', '--batches', '1'])).trim();
    expect((await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'])).release?.status).toBe('Released');
    await waitFor('a1 and a2 on 2.0 at the router', () => ['a1', 'a2'].every((i) => watch.instance(i)?.edition === '2.0' && watch.instance(i)?.state === 'ready'), 10_000);
    const deltas = watch.updates.slice(before);
    // A release to one group leaves the default where it is: only instances changed, never the app.
    expect(deltas.every((u) => !u.full && u.apps.length === 0)).toBe(true);
    expect(deltas.flatMap((u) => u.instances).every((i) => i.instance === 'a1' || i.instance === 'a2')).toBe(true);
    expect(deltas.map((u) => u.version)).toEqual([...deltas.map((u) => u.version)].sort((a, b) => a - b));

    const editions = JSON.parse(ok(await fleet.cli(['edition', 'list', APP, '-o', 'json']))) as Array<{ name: string; activeGroups: string[]; isDefault: boolean }>;
    expect(editions.map((e) => [e.name, e.activeGroups, e.isDefault])).toEqual([
      ['1.0', ['green'], true],
      ['2.0', ['blue'], false],
      ['3.0', [], false],
    ]);
    expect(ok(await fleet.cli(['edition', 'show', APP, '2.0']))).toMatch(/^Groups {4}blue\nDefault {3}no$/m);
  });

  let ruleId = '';

  it('adds a rule (the watch gets the app again), lists it, and records it with actor and comment', async () => {
    const before = watch.updates.length;
    const added = await fleet.cli(['route', 'add', APP, '--edition', '2.0', '--header', 'X-Beta=1', '--priority', '5', '--comment', 'beta users']);
    ruleId = ok(added).trim();
    expect(ruleId).toMatch(/^rt-[0-9a-f]{8}$/);
    expect(added.stderr.trim()).toBe(`route ${ruleId} added: header X-Beta=1 → edition 2.0 (priority 5)`);
    await waitFor('the app with its rule', () => watch.updates.slice(before).find((u) => u.apps.length > 0), 5_000);
    const update = watch.updates.slice(before).find((u) => u.apps.length > 0)!;
    expect(update.apps[0]).toMatchObject({ app: APP, defaultEditions: ['1.0'], routes: [{ id: ruleId, kind: 'header', name: 'X-Beta', value: '1', edition: '2.0', priority: 5 }] });
    expect(update.apps[0]!.instances).toHaveLength(3);

    expect(ok(await fleet.cli(['route', 'list', APP]))).toMatch(new RegExp(`^${ruleId}\\s+5\\s+header X-Beta=1\\s+2\\.0\\s`, 'm'));
    const history = JSON.parse(ok(await fleet.cli(['history', APP, '-o', 'json']))) as Array<{ actor: string; action: string; comment: string; result: string }>;
    expect(history).toContainEqual(expect.objectContaining({
      action: 'route-add', actor: expect.stringMatching(/\S+@\S+/), comment: 'beta users', result: `added route ${ruleId}: header X-Beta=1 → edition 2.0 (priority 5)`,
    }));
    // Refused rule changes on an existing app are recorded as refusals, as refused release actions are.
    expect(history).toContainEqual(expect.objectContaining({ action: 'route-add', result: 'refused: edition 2.0 of shop is active nowhere; release it to a group first' }));
  });

  it('refuses a release that would leave 2.0, which a rule names, active nowhere; --force goes ahead', async () => {
    const releases = JSON.parse(ok(await fleet.cli(['release', 'list', APP, '-o', 'json']))).length;
    refused(await fleet.cli(['release', 'create', APP, '--edition', '3.0', '--group', 'blue', '--batches', '1']), 1, /would leave edition 2\.0 of shop active nowhere while routing rules name it .*--force/);
    expect(JSON.parse(ok(await fleet.cli(['release', 'list', APP, '-o', 'json'])))).toHaveLength(releases);
    const id = ok(await fleet.cli(['release', 'create', APP, '--edition', '3.0', '--group', 'blue', '--batches', '1', '--force'])).trim();
    expect((await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'])).release?.status).toBe('Released');
    await waitFor('a1 on 3.0 at the router', () => watch.instance('a1')?.edition === '3.0', 10_000);
    // The rule stays; with 2.0 active nowhere its requests fall back to the default edition.
    expect(JSON.parse(ok(await fleet.cli(['route', 'list', APP, '-o', 'json'])))).toEqual([expect.objectContaining({ id: ruleId })]);
  });

  it('removes the rule with a change record, and the watch gets the app without it', async () => {
    const before = watch.updates.length;
    expect(ok(await fleet.cli(['route', 'remove', APP, ruleId, '--comment', 'beta over']))).toBe(`route ${ruleId} removed: header X-Beta=1 → edition 2.0\n`);
    await waitFor('the app without the rule', () => watch.updates.slice(before).find((u) => u.apps.length > 0 && u.apps[0]!.routes.length === 0), 5_000);
    expect(JSON.parse(ok(await fleet.cli(['route', 'list', APP, '-o', 'json'])))).toEqual([]);
    const history = JSON.parse(ok(await fleet.cli(['history', APP, '-o', 'json']))) as Array<{ action: string; comment: string; result: string }>;
    expect(history).toContainEqual(expect.objectContaining({ action: 'route-remove', comment: 'beta over', result: `removed route ${ruleId}: header X-Beta=1 → edition 2.0` }));
  });

  it('takes the router ack of a version it sent, and refuses one never sent', async () => {
    const version = watch.updates[watch.updates.length - 1]!.version;
    const ack = (v: number) =>
      new Promise<ServiceError | null>((resolve) => client.ackRouting({ routerId: 'test-router', version: v }, (err) => resolve(err)));
    expect(await ack(version)).toBeNull();
    const tooNew = await ack(version + 1000);
    expect(tooNew?.code).toBe(status.INVALID_ARGUMENT);
    expect(tooNew?.details).toMatch(/was never sent/);
  });

  it('holds an atomic release at the router gates until the router acked: first half out of rotation, then the switch', async () => {
    // Blue runs 3.0 and green 1.0, the default; an atomic release of 3.0 to all moves the default.
    const before = watch.updates.length;
    const created = Date.now();
    const id = ok(await fleet.cli(['release', 'create', APP, '--edition', '3.0', '--strategy', 'atomic'])).trim();
    const detail = await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed'], 60_000);
    expect(detail.release?.status).toBe('Released');
    // Each gate passed on the router's ack, not on the 10 s deadline.
    expect(Date.now() - created).toBeLessThan(15_000);
    const apps = watch.updates.slice(before).flatMap((u) => u.apps);
    const held = apps.find((a) => a.instances.some((i) => i.held));
    expect(held?.defaultEditions).toEqual(['1.0']);
    expect(held?.instances.filter((i) => i.held).map((i) => [i.instance, i.state])).toEqual([['a1', 'drain'], ['a2', 'drain']]);
    const switched = apps.findIndex((a) => a.defaultEditions.join() === '3.0');
    expect(switched).toBeGreaterThan(apps.indexOf(held!));
    await waitFor('every instance on 3.0 and ready', () => ['a1', 'a2', 'a3'].every((i) => watch.instance(i)?.edition === '3.0' && watch.instance(i)?.state === 'ready'), 10_000);
    expect(watch.app(APP)).toMatchObject({ defaultEditions: ['3.0'] });
    expect(watch.app(APP)!.instances.every((i) => !i.held)).toBe(true);
  });
});
