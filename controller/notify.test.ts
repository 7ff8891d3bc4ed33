// Notification parts without processes: event kinds, retry delays, the delivery rows' moves, and the dispatcher
// against a real SQLite store and an HTTP receiver on 127.0.0.1.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BadInputError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { kindsOf, NOTIFY_KINDS, parseKinds, statusKind } from '../common/notify-kinds.js';
import { waitFor } from '../test/harness/wait.js';
import { EventHub } from './event-hub.js';
import { Notifications, retryDelay, signatureOf } from './notify.js';
import { Store } from './store/store.js';
import { requirementOf } from './auth.js';

it('needs the admin role for every notify RPC (a webhook gets everything its kinds carry)', () => {
  for (const rpc of ['addNotifier', 'listNotifiers', 'removeNotifier']) expect(requirementOf(rpc)).toBe('admin');
});

describe('event kinds', () => {
  it.each([
    ['To release', 'release.to-release'],
    ['Released', 'release.released'],
    ['Release failed', 'release.failed'],
    ['Rolled back', 'release.rolled-back'],
    ['Rollback failed', 'release.rollback-failed'],
    ['Suspended', 'release.suspended'],
  ])('names status %s as %s', (status, kind) => {
    expect(statusKind(status)).toBe(kind);
    expect(NOTIFY_KINDS).toContain(kind);
  });

  it('gives a status change its reason and its status, and an instance event instance.<reason>', () => {
    expect(kindsOf({ type: 'io.fleetwave.release.status.changed', data: { to: 'Release failed' } })).toEqual(['status.changed', 'release.failed']);
    expect(kindsOf({ type: 'io.fleetwave.release.checkpoint.waiting', data: {} })).toEqual(['checkpoint.waiting']);
    expect(kindsOf({ type: 'io.fleetwave.instance.unhealthy', data: {} })).toEqual(['instance.unhealthy']);
    expect(kindsOf({ type: 'com.example.other', data: {} })).toEqual([]);
  });

  it('parses comma lists, drops repeats, and refuses an unknown kind naming it', () => {
    expect(parseKinds(['release.failed, checkpoint.waiting', 'release.failed'])).toEqual(['release.failed', 'checkpoint.waiting']);
    expect(() => parseKinds(['release.failed,nope'])).toThrow(BadInputError);
    expect(() => parseKinds(['release.failed,nope'])).toThrow(/unknown event kind 'nope'/);
    expect(() => parseKinds([' , '])).toThrow(/at least one/);
  });
});

describe('retryDelay', () => {
  const t = { retryMinMs: 100, retryMaxMs: 1_000 };
  it.each([
    [1, 50, 100],
    [2, 100, 200],
    [3, 200, 400],
    [4, 400, 800],
    [5, 500, 1_000],
    [40, 500, 1_000],
  ])('after %i failures waits between %i and %i ms', (failures, low, high) => {
    expect(retryDelay(failures, t, () => 0)).toBe(low);
    expect(retryDelay(failures, t, () => 0.999999)).toBeLessThanOrEqual(high);
    expect(retryDelay(failures, t, () => 0.999999)).toBeGreaterThan(high - 2);
  });
});

describe('deliveries', () => {
  let dir: string;
  let store: Store;
  let server: Server;
  let url: string;
  const received: Array<{ body: string; signature: string | undefined }> = [];
  let failFirst = 0;
  const hub = new EventHub();
  const log = createLogger({ name: 'test', level: 'silent' });
  const change = { atUnixMs: 1, actor: 'test', action: 'notify-add', app: '', releaseId: '', comment: '', result: 'ok' };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'fleetwave-notify-unit-'));
    store = Store.open(join(dir, 'fleetwave.db'));
    received.length = 0;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ body: Buffer.concat(chunks).toString(), signature: req.headers['fleetwave-signature-256'] as string | undefined });
        res.writeHead(failFirst-- > 0 ? 502 : 204).end();
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  });

  afterEach(async () => {
    await new Promise<void>((ok) => server.close(() => ok()));
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('moves a row pending → dead, ignores a second copy of an event, and leaves busy rows out of due', () => {
    const q = store.notifications;
    q.addNotifier({ name: 'n', kinds: ['created'], url, secret: '', createdBy: 't', createdUnixMs: 1 }, change);
    q.enqueue([{ notifier: 'n', eventId: 'e1', kind: 'created', payload: '{}' }], 10);
    q.enqueue([{ notifier: 'n', eventId: 'e1', kind: 'created', payload: '{}' }], 11);
    q.enqueue([{ notifier: 'n', eventId: 'e2', kind: 'created', payload: '{}' }], 12);
    const [first, second] = q.due(20, 10, new Set());
    expect([first?.eventId, second?.eventId]).toEqual(['e1', 'e2']);
    expect(q.due(20, 10, new Set([first!.id])).map((d) => d.eventId)).toEqual(['e2']);
    q.markFailed(first!.id, 'HTTP 500', 100, 20);
    expect(q.due(50, 10, new Set()).map((d) => d.eventId)).toEqual(['e2']);
    expect(q.nextDue()).toBe(12);
    q.markFailed(first!.id, 'HTTP 503', null, 120);
    q.markDelivered(second!.id, 121);
    expect(q.counts().get('n')).toEqual({ pending: 0, delivered: 1, dead: 1, lastError: 'HTTP 503' });
    // Old delivered rows are pruned; dead ones stay
    expect(q.pruneDelivered(122)).toBe(1);
    expect(q.counts().get('n')).toMatchObject({ delivered: 0, dead: 1 });
    expect(q.nextDue()).toBeNull();
    // Removing the notifier removes its deliveries
    q.removeNotifier('n', { ...change, action: 'notify-remove' });
    expect(q.counts().size).toBe(0);
  });

  it('sends a matching event signed, retries a failed attempt, and skips events of other kinds', async () => {
    const notifications = new Notifications({ store: store.notifications, hub, logger: log, tuning: { retryMinMs: 5, retryMaxMs: 20, maxAttempts: 3, requestTimeoutMs: 2_000, concurrency: 2 } });
    notifications.start();
    try {
      notifications.add({ name: 'ops', kinds: ['release.failed'], url, secret: 's3cret' }, 'alice');
      failFirst = 1;
      hub.publish('x', { specversion: '1.0', id: 'a', source: 's', type: 'io.fleetwave.release.batch.started', subject: 'shop/r', time: '', datacontenttype: 'application/json', data: {} });
      hub.publish('x', { specversion: '1.0', id: 'b', source: 's', type: 'io.fleetwave.release.status.changed', subject: 'shop/r', time: '', datacontenttype: 'application/json', data: { to: 'Release failed' } });
      await waitFor('the delivery acknowledged', () => notifications.list()[0]?.delivered === 1, 5_000);
      expect(received).toHaveLength(2);
      expect(JSON.parse(received[1]!.body).id).toBe('b');
      expect(received[1]!.signature).toBe(signatureOf('s3cret', received[1]!.body));
      expect(notifications.list()[0]).toMatchObject({ name: 'ops', pending: 0, dead: 0, createdBy: 'alice' });
    } finally {
      await notifications.stop();
    }
  });

  it('refuses a webhook that is not http(s) or carries credentials, and a bad name', () => {
    const notifications = new Notifications({ store: store.notifications, hub, logger: log, tuning: { retryMinMs: 5, retryMaxMs: 20, maxAttempts: 3, requestTimeoutMs: 2_000, concurrency: 2 } });
    expect(() => notifications.add({ name: 'a', kinds: ['created'], url: 'ftp://x/', secret: '' }, 't')).toThrow(/--webhook: 'ftp:\/\/x\/' must start with http/);
    expect(() => notifications.add({ name: 'a', kinds: ['created'], url: 'https://u:p@x/', secret: '' }, 't')).toThrow(/no credentials/);
    expect(() => notifications.add({ name: '../a', kinds: ['created'], url, secret: '' }, 't')).toThrow(/notifier name/);
    expect(() => notifications.add({ name: 'a', kinds: ['created'], url: 'not a url', secret: '' }, 't')).toThrow(/is not a URL/);
  });
});
