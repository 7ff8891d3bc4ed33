// The store against a real SQLite file in a temp dir.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError } from '../../common/errors.js';
import { compileReleaseSpec } from '../domain/spec.js';
import { planBatches } from '../domain/planner.js';
import { MIGRATIONS } from './schema.js';
import { AlreadyExistsError, Store } from './store.js';

let dir: string;
let store: Store;
const path = () => join(dir, 'fleetwave.db');

function seed(s: Store): void {
  s.createApp({ name: 'shop', startCommand: ['run'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, createdUnixMs: 1 });
  s.installEdition({ app: 'shop', name: '2.0', description: '', url: 'http://x', sha256: 'a'.repeat(64), size: 1, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
  for (const [id, group] of [['h1', 'east'], ['h2', 'east'], ['h3', 'west']]) {
    s.markAgentConnected(
      { agentId: id!, host: id!, group: group!, labels: {}, bootId: 'b', version: 'v', instances: [{ app: 'shop', servicePort: 1, activeEdition: '1.0', keptEditions: ['1.0'], processState: 'running', quiesced: false }] },
      1,
    );
  }
}

function create(s: Store, group: string, id = `r-${group}`) {
  const spec = compileReleaseSpec({ app: 'shop', edition: '2.0', group, batches: 1 });
  return s.createRelease({ id, spec, actor: 'cli', now: 10, plan: ({ instances }) => planBatches(spec, instances.map((i) => ({ id: i.agentId, group: i.group }))) });
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-store-'));
  store = Store.open(path());
  seed(store);
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('Store', () => {
  it('applies migrations once and keeps data on reopen', () => {
    store.close();
    store = Store.open(path());
    const versions = store.db.prepare('SELECT version FROM migrations').pluck().all();
    expect(versions).toEqual(MIGRATIONS.map((m) => m.version));
    expect(store.listApps().map((a) => a.name)).toEqual(['shop']);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('refuses duplicates and unknown names with named errors', () => {
    expect(() => seed(store)).toThrow(AlreadyExistsError);
    expect(() => store.getApp('nope')).toThrow(NotFoundError);
    expect(() => create(store, 'north')).toThrow(NotFoundError);
  });

  it('refuses a second active release for overlapping groups inside the creating transaction', () => {
    create(store, 'east');
    expect(() => create(store, 'east', 'r-2')).toThrow(ConflictError);
    expect(() => create(store, 'all', 'r-3')).toThrow(/still active for group 'east'/);
    create(store, 'west');
    // A refused create leaves nothing behind.
    expect(store.listReleases('shop').map((r) => r.id).sort()).toEqual(['r-east', 'r-west']);
    expect(store.db.prepare(`SELECT count(*) FROM batches WHERE release_id = 'r-2'`).pluck().get()).toBe(0);
  });

  it('sees a release committed by another connection (two controllers racing)', () => {
    const other = Store.open(path());
    try {
      create(other, 'east');
      expect(() => create(store, 'all', 'r-x')).toThrow(ConflictError);
    } finally {
      other.close();
    }
  });

  it('keeps outbox commands pending until their result, and ignores unknown or repeated results', () => {
    create(store, 'east');
    store.reconcileRelease('r-east', () => ({
      commands: [{ commandId: 'c1', agentId: 'h1', releaseId: 'r-east', instance: 'h1', kind: 'Quiesce', payload: new Uint8Array([1, 2]), createdUnixMs: 5 }],
      abandoned: [],
      steps: [],
      changes: [],
    }));
    expect(store.pendingCommandsForAgent('h1')).toEqual([{ commandId: 'c1', agentId: 'h1', payload: new Uint8Array([1, 2]) }]);
    expect(store.pendingCommandsForAgent('h2')).toEqual([]);
    const outcome = { ok: true, error: '', finishedUnixMs: 6, activeEdition: '' };
    expect(store.recordCommandResult('h2', 'c1', outcome)).toBeNull();
    expect(store.recordCommandResult('h1', 'c1', outcome)).toEqual({ releaseId: 'r-east', instance: 'h1', kind: 'Quiesce' });
    expect(store.recordCommandResult('h1', 'c1', outcome)).toBeNull();
    expect(store.recordCommandResult('h1', 'unknown', outcome)).toBeNull();
    expect(store.pendingCommandsForAgent('h1')).toEqual([]);
  });

  it('keeps deadlines across a reopen', () => {
    create(store, 'east');
    store.reconcileRelease('r-east', (s) => {
      s.release.status = 'Releasing';
      s.instances[0]!.deadlineUnixMs = 5_000;
      s.release.nextBatchAt = 7_000;
      return { commands: [], abandoned: [], steps: [], changes: [] };
    });
    store.close();
    store = Store.open(path());
    expect(store.nextDeadline()).toBe(5_000);
    expect(store.releasesDue(4_999)).toEqual([]);
    expect(store.releasesDue(5_000)).toEqual(['r-east']);
  });

  it('records drained only while the instance quiesces or drains', () => {
    create(store, 'east');
    expect(store.recordDrained('shop', 'h1')).toBeNull();
    store.reconcileRelease('r-east', (s) => {
      s.release.status = 'Releasing';
      Object.assign(s.instances[0]!, { step: 'quiesce', stepState: 'running' });
      return { commands: [], abandoned: [], steps: [], changes: [] };
    });
    expect(store.recordDrained('shop', 'h1')).toBe('r-east');
    expect(store.recordDrained('shop', 'h1')).toBeNull();
  });

  it("keeps the event key of the agent's last Hello, and forgets it on revocation", () => {
    expect(store.agentEventKey('h1')).toBe('');
    expect(store.agentEventKey('nobody')).toBeUndefined();
    store.markAgentConnected({ agentId: 'h1', host: 'h1', group: 'east', labels: {}, bootId: 'b', version: 'v', eventKey: 'a2V5', instances: [] }, 2);
    expect(store.agentEventKey('h1')).toBe('a2V5');
    expect(store.clearAgentEventKey('h1')).toBe(true);
    expect(store.clearAgentEventKey('h1')).toBe(false);
    expect(store.agentEventKey('h1')).toBe('');
    // Read per event from memory: a new Hello's key replaces the one read before it.
    store.markAgentConnected({ agentId: 'h1', host: 'h1', group: 'east', labels: {}, bootId: 'c', version: 'v', eventKey: 'bmV3', instances: [] }, 3);
    expect(store.agentEventKey('h1')).toBe('bmV3');
  });

  it('marks agents unreachable only on a status change', () => {
    expect(store.markAgentUnreachable('h1', 50)).toBe(true);
    expect(store.markAgentUnreachable('h1', 60)).toBe(false);
    expect(store.listInstances('shop').find((i) => i.agentId === 'h1')!.agentStatus).toBe('unreachable');
  });
});
