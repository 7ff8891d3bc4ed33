// Webhook notifications against a real controller, agent and app, with a local HTTP receiver on 127.0.0.1:
// a receiver that fails the first attempts gets the event after retries (signed, as a structured CloudEvent), one
// that always fails ends in the dead-letter metric, and a controller killed mid-retry resumes the delivery.
import { createHmac } from 'node:crypto';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, repoPath, waitFor } from '../harness/fleet.js';
import { servicePort, START_TIMEOUT_MS } from './model/setup.js';

/** Fast retries: 50 ms doubling to 200 ms, 4 attempts in all. */
const CONTROLLER_ARGS = ['--notify-retry-min', '50ms', '--notify-retry-max', '200ms', '--notify-attempts', '4'];
const SECRET = 'correct horse battery staple';

interface Hit {
  path: string;
  delivery: string;
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** Answers each path by a rule; `answer` returns a status, or null to hold the request open (never answered). */
class Receiver {
  readonly hits: Hit[] = [];
  private server?: Server;
  private readonly held: ServerResponse[] = [];
  port = 0;

  constructor(private readonly answer: (path: string, attempt: number) => number | null) {}

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        const delivery = String(req.headers['fleetwave-delivery'] ?? '');
        const attempt = this.hits.filter((h) => h.path === path && h.delivery === delivery).length + 1;
        const status = this.answer(path, attempt);
        this.hits.push({ path, delivery, status: status ?? 0, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
        if (status === null) return void this.held.push(res);
        res.writeHead(status).end();
      });
    });
    await new Promise<void>((ok) => this.server!.listen(0, '127.0.0.1', ok));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  on(path: string): Hit[] {
    return this.hits.filter((h) => h.path === path);
  }

  async stop(): Promise<void> {
    for (const res of this.held) res.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((ok) => (this.server ? this.server.close(() => ok()) : ok()));
  }
}

describe('webhook notifications', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-notify-'));
  const fleet = new Fleet(dir);
  /** /gated: the first attempt fails, the second is held open (the controller is killed meanwhile), later ones pass. */
  let gatedOpen = false;
  const receiver = new Receiver((path, attempt) => {
    if (path === '/flaky') return attempt <= 2 ? 503 : 200;
    if (path === '/down') return 500;
    if (path === '/gated') return gatedOpen ? 200 : attempt === 1 ? 503 : null;
    return 404;
  });

  async function cli(args: string[]): Promise<string> {
    const result = await fleet.cli(args);
    expect(result.code, `fleetwave ${args.join(' ')}: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  async function notifiers(): Promise<Array<{ name: string; pending: number; delivered: number; dead: number; lastError: string; signed: boolean }>> {
    return JSON.parse(await cli(['notify', 'list', '-o', 'json']));
  }

  async function release(edition: string): Promise<string> {
    const out = await cli(['release', 'create', 'shop', '--edition', edition, '--group', 'all', '--batches', '1', '--drain', '1s', '--health-timeout', '5s']);
    const id = out.trim().split(/\s+/).pop()!;
    await fleet.adminClient.waitForRelease(id, ['Released'], 90_000);
    return id;
  }

  beforeAll(async () => {
    // Given a controller with fast retries, one agent serving the app shop, and editions 1.0 to 1.2
    await receiver.start();
    await fleet.startNats();
    await fleet.startController(CONTROLLER_ARGS);
    await fleet.startAgent('n1', 'blue', { shop: await servicePort() });
    await fleet.adminClient.waitForAgents(['n1'], 90_000);
    await cli(['app', 'create', 'shop', '--start', 'node server.js', '--stop-timeout', '2s']);
    for (const edition of ['1.0', '1.1', '1.2']) {
      const source = join(dir, 'src', edition);
      cpSync(repoPath('examples/app'), source, { recursive: true });
      const pkg = await buildEdition({ sourceDir: source, edition, outDir: join(dir, 'packages'), name: 'shop' });
      await cli(['edition', 'install', 'shop', edition, '--file', pkg.path]);
    }
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await fleet.stopAll();
    await receiver.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses an unknown kind with one line and exit 2, and names the known ones', async () => {
    const result = await fleet.cli(['notify', 'add', 'typo', '--on', 'release.failed,release.exploded', '--webhook', receiver.url('/x')]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain("unknown event kind 'release.exploded'");
    expect(result.stderr).toContain('checkpoint.waiting');
  });

  it('delivers after failed attempts, signed, as a structured CloudEvent, and sends nothing again once acknowledged', async () => {
    // Given a signed notifier whose receiver fails the first two attempts of each delivery
    const secretFile = join(dir, 'secret');
    writeFileSync(secretFile, `${SECRET}\n`, { mode: 0o600 });
    await cli(['notify', 'add', 'flaky', '--on', 'created,release.released', '--webhook', receiver.url('/flaky'), '--secret-file', secretFile]);

    // When a release is created and released
    const id = await release('1.0');

    // Then each of the two events reached the receiver on the third attempt
    const acked = await waitFor('two acknowledged deliveries on /flaky', () => {
      const ok = receiver.on('/flaky').filter((h) => h.status === 200);
      return ok.length >= 2 ? ok : undefined;
    });
    const types = acked.map((h) => JSON.parse(h.body).type).sort();
    expect(types).toEqual(['io.fleetwave.release.created', 'io.fleetwave.release.status.changed']);
    for (const hit of acked) {
      const attempts = receiver.on('/flaky').filter((h) => h.delivery === hit.delivery);
      expect(attempts.map((h) => h.status)).toEqual([503, 503, 200]);
      // Every attempt carries the same bytes and signature
      expect(new Set(attempts.map((h) => h.body)).size).toBe(1);
      expect(hit.headers['content-type']).toBe('application/cloudevents+json');
      const expected = `sha256=${createHmac('sha256', SECRET).update(hit.body).digest('hex')}`;
      expect(hit.headers['fleetwave-signature-256']).toBe(expected);
      const event = JSON.parse(hit.body);
      expect(event).toMatchObject({ specversion: '1.0', source: 'fleetwave/controller', data: { app: 'shop', release: id } });
    }
    const released = acked.map((h) => JSON.parse(h.body)).find((e) => e.type.endsWith('status.changed'));
    expect(released.data.to).toBe('Released');

    const flaky = (await notifiers()).find((n) => n.name === 'flaky')!;
    expect(flaky).toMatchObject({ pending: 0, delivered: 2, dead: 0, signed: true });
  });

  it('counts a delivery that never succeeds as a dead letter after its last attempt', async () => {
    // Given a notifier whose receiver always answers 500
    await cli(['notify', 'add', 'down', '--on', 'release.released', '--webhook', receiver.url('/down')]);

    // When a release is released
    await release('1.1');

    // Then after 4 attempts the delivery is dead: in the metric and in notify list
    await waitFor('the dead-letter metric of notifier down', async () => {
      const text = await (await fetch(`${fleet.controller!.httpUrl}/metrics`)).text();
      return /^fleetwave_notifications_dead_letter_total\{notifier="down"\} 1$/m.test(text);
    });
    expect(receiver.on('/down').map((h) => h.status)).toEqual([500, 500, 500, 500]);
    const down = (await notifiers()).find((n) => n.name === 'down')!;
    expect(down).toMatchObject({ pending: 0, delivered: 0, dead: 1, lastError: 'HTTP 500', signed: false });
  });

  it('resumes a pending delivery after the controller is killed mid-retry, and delivers it once', async () => {
    await cli(['notify', 'remove', 'down']);
    // Given a notifier whose receiver fails the first attempt and holds the second open
    await cli(['notify', 'add', 'gated', '--on', 'created', '--webhook', receiver.url('/gated')]);
    const flakyBefore = receiver.on('/flaky').length;

    // When a release is created, and the controller is killed while the retry is under way
    const out = await cli(['release', 'create', 'shop', '--edition', '1.2', '--group', 'all', '--batches', '1', '--drain', '1s', '--health-timeout', '5s']);
    const id = out.trim().split(/\s+/).pop()!;
    await waitFor('the second attempt held on /gated', () => receiver.on('/gated').length >= 2);
    await fleet.controller!.kill();
    gatedOpen = true;
    await fleet.startController(CONTROLLER_ARGS);

    // Then the restarted controller delivers it from the store, with the same delivery id
    await waitFor('the delivery on /gated acknowledged', () => receiver.on('/gated').some((h) => h.status === 200));
    const gated = receiver.on('/gated');
    expect(new Set(gated.map((h) => h.delivery)).size).toBe(1);
    expect(JSON.parse(gated.at(-1)!.body)).toMatchObject({ type: 'io.fleetwave.release.created', data: { release: id } });
    await waitFor('notify list to show the delivery done', async () => (await notifiers()).find((n) => n.name === 'gated')?.delivered === 1);
    await fleet.adminClient.waitForRelease(id, ['Released'], 90_000);
    // And the deliveries acknowledged before the restart were not sent again (only this release's own event is new)
    const flakyAfter = receiver.on('/flaky').slice(flakyBefore);
    expect(flakyAfter.every((h) => JSON.parse(h.body).data.release === id)).toBe(true);
    const acked = receiver.on('/flaky').filter((h) => h.status === 200).map((h) => h.delivery);
    expect(new Set(acked).size).toBe(acked.length);
  });

  it('lists, removes, and records who changed the notifiers', async () => {
    await cli(['notify', 'remove', 'gated']);
    const names = (await notifiers()).map((n) => n.name);
    expect(names).toEqual(['flaky']);
    const missing = await fleet.cli(['notify', 'remove', 'gated']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("no notifier named 'gated'");
    const history = JSON.parse(await cli(['history', '-o', 'json'])) as Array<{ action: string; comment: string }>;
    const actions = history.filter((c) => c.action.startsWith('notify-')).map((c) => `${c.action} ${c.comment.split(':')[0]}`);
    expect(actions).toEqual(['notify-add flaky', 'notify-add down', 'notify-remove down', 'notify-add gated', 'notify-remove gated']);
  });
});
