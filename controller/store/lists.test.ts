// The paged listings against a real SQLite file: every row exactly once across pages, the filters, the summary
// counts (checked against a count of the rows themselves), the page bounds, and bad cursors and filters.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BadInputError, NotFoundError } from '../../common/errors.js';
import { DEFAULT_PAGE, MAX_PAGE } from '../../common/listing.js';
import { BATCH_IDS_LISTED, detailPageToProto, detailToProto } from '../admin-mapping.js';
import { planBatches } from '../domain/planner.js';
import { compileReleaseSpec } from '../domain/spec.js';
import { encodeCursor, type Page, type PageQuery, type SummaryCountRecord } from './lists.js';
import { Store } from './store.js';

const AGENTS = 1_234;
const GROUPS = ['blue', 'green', 'red'];
const RELEASE = 'r-lists';

let dir: string;
let store: Store;

/** Agent i: group by i mod 3, unreachable every 7th, edition 1.0 or 2.0 (every 4th), app 'shop' (and 'cart' every 5th). */
function seed(s: Store): void {
  s.createApp({ name: 'shop', startCommand: ['run'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, createdUnixMs: 1 });
  s.createApp({ name: 'cart', startCommand: ['run'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, createdUnixMs: 1 });
  s.installEdition({ app: 'shop', name: '3.0', description: '', url: 'http://x', sha256: 'a'.repeat(64), size: 1, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
  s.transaction(() => {
    for (let i = 0; i < AGENTS; i++) {
      const id = `h${String(i).padStart(5, '0')}`;
      const edition = i % 4 === 0 ? '2.0' : '1.0';
      const instance = (app: string) => ({ app, servicePort: 1, activeEdition: edition, keptEditions: [edition], processState: i % 11 === 0 ? 'stopped' : 'running', quiesced: false });
      s.markAgentConnected(
        { agentId: id, host: id, group: GROUPS[i % 3]!, labels: {}, bootId: 'b', version: 'v', instances: i % 5 === 0 ? [instance('shop'), instance('cart')] : [instance('shop')] },
        1,
      );
      if (i % 7 === 0) s.markAgentUnreachable(id, 2);
    }
  });
  const spec = compileReleaseSpec({ app: 'shop', edition: '3.0', group: 'all', batches: 4 });
  s.createRelease({ id: RELEASE, spec, actor: 'cli', now: 10, plan: ({ instances }) => planBatches(spec, instances.map((i) => ({ id: i.agentId, group: i.group }))) });
  // A release under way: statuses by instance, and two steps each for the first instances of every batch.
  s.transaction(() => {
    const ids = s.db.prepare('SELECT instance FROM release_instances WHERE release_id = ? ORDER BY instance').pluck().all(RELEASE) as string[];
    const setStatus = s.db.prepare('UPDATE release_instances SET status = ? WHERE release_id = ? AND instance = ?');
    const step = s.db.prepare(`INSERT INTO steps (release_id, instance, step, phase, status, started_unix_ms, finished_unix_ms, error) VALUES (?, ?, ?, 'upgrade', 'ok', 1, 2, '')`);
    ids.forEach((id, n) => {
      setStatus.run(['released', 'in progress', 'pending', 'failed'][n % 4], RELEASE, id);
      step.run(RELEASE, id, 'download');
      step.run(RELEASE, id, 'restart');
    });
  });
}

const query = (q: Partial<PageQuery> = {}): PageQuery => ({ group: '', status: '', edition: '', limit: 0, after: '', ...q });

/** Every page from the first, as the CLI reads them. */
function allPages<T>(read: (after: string) => Page<T>): { rows: T[]; pages: number; summaries: Array<Page<T>['summary']> } {
  const rows: T[] = [];
  const summaries: Array<Page<T>['summary']> = [];
  let after = '';
  let pages = 0;
  do {
    const page = read(after);
    rows.push(...page.rows);
    summaries.push(page.summary);
    pages++;
    after = page.nextAfter;
  } while (after && pages < 10_000);
  return { rows, pages, summaries };
}

/** The counts a summary should have, computed from the rows themselves. */
function countsOf(rows: Array<{ group: string; batch?: number; status: string }>): SummaryCountRecord[] {
  const counts = new Map<string, SummaryCountRecord>();
  for (const r of rows) {
    const key = `${r.group}|${r.batch ?? 0}|${r.status}`;
    const c = counts.get(key) ?? { group: r.group, batch: r.batch ?? 0, status: r.status, count: 0 };
    c.count++;
    counts.set(key, c);
  }
  return [...counts.values()].sort((a, b) => a.group.localeCompare(b.group) || a.batch - b.batch || a.status.localeCompare(b.status));
}

const sorted = (counts: SummaryCountRecord[]) => [...counts].sort((a, b) => a.group.localeCompare(b.group) || a.batch - b.batch || a.status.localeCompare(b.status));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-lists-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  seed(store);
});

afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('agent listing', () => {
  it('pages cover every agent exactly once, in id order, with the same summary on every page', () => {
    const everyone = store.listAgents();
    const { rows, pages, summaries } = allPages((after) => store.lists.agents(query({ limit: 97, after })));
    expect(rows.map((a) => a.id)).toEqual(everyone.map((a) => a.id));
    expect(pages).toBe(Math.ceil(AGENTS / 97));
    for (const summary of summaries) expect(summary).toEqual({ total: AGENTS, counts: countsOf(everyone) });
  });

  it.each<[Partial<PageQuery>]>([
    [{ group: 'green' }],
    [{ status: 'unreachable' }],
    [{ group: 'red', status: 'connected' }],
    [{ edition: '2.0' }],
    [{ group: 'blue', edition: '2.0', status: 'unreachable' }],
    [{ group: 'nowhere' }],
  ])('filters %j on the server, the summary counting only what matches', (filter) => {
    const editionOf = new Map(store.listInstances('').map((i) => [i.agentId, i.activeEdition]));
    const expected = store
      .listAgents()
      .filter((a) => (!filter.group || a.group === filter.group) && (!filter.status || a.status === filter.status))
      .filter((a) => !filter.edition || editionOf.get(a.id) === filter.edition);
    const { rows, summaries } = allPages((after) => store.lists.agents(query({ ...filter, limit: 50, after })));
    expect(rows.map((a) => a.id)).toEqual(expected.map((a) => a.id));
    expect(summaries[0]).toEqual({ total: expected.length, counts: countsOf(expected) });
  });

  it('bounds a page: the default without a limit, the maximum above it', () => {
    expect(store.lists.agents(query()).rows).toHaveLength(DEFAULT_PAGE);
    expect(store.lists.agents(query({ limit: 5_000 })).rows).toHaveLength(MAX_PAGE);
    const last = store.lists.agents(query({ limit: AGENTS }));
    expect(last.rows).toHaveLength(MAX_PAGE);
    const rest = store.lists.agents(query({ limit: AGENTS, after: last.nextAfter }));
    expect(rest.rows).toHaveLength(AGENTS - MAX_PAGE);
    expect(rest.nextAfter).toBe('');
  });

  it('refuses bad filters and cursors as bad input', () => {
    expect(() => store.lists.agents(query({ status: 'asleep' }))).toThrow(/--status: 'asleep' is not one of connected, unreachable/);
    expect(() => store.lists.agents(query({ group: 'a/b' }))).toThrow(BadInputError);
    expect(() => store.lists.agents(query({ after: 'not-a-cursor' }))).toThrow(/--after: 'not-a-cursor' is not a cursor of this listing/);
    const instanceCursor = store.lists.instances('shop', query({ limit: 1 })).nextAfter;
    expect(() => store.lists.agents(query({ after: instanceCursor }))).toThrow(BadInputError);
    expect(() => store.lists.agents(query({ after: encodeCursor('a', [7 as unknown as string]) }))).toThrow(BadInputError);
  });
});

describe('instance listing', () => {
  it('pages cover every instance of every app exactly once, in app, group, id order', () => {
    const everyone = store.listInstances('');
    const { rows, summaries } = allPages((after) => store.lists.instances('', query({ limit: 333, after })));
    expect(rows.map((i) => `${i.app}/${i.agentId}`)).toEqual(everyone.map((i) => `${i.app}/${i.agentId}`));
    const listed = everyone.map((i) => ({ group: i.group, status: i.agentStatus === 'unreachable' ? 'unreachable' : i.processState }));
    expect(summaries[0]).toEqual({ total: everyone.length, counts: countsOf(listed) });
  });

  it('filters by group, edition and the status it is listed with (unreachable with its agent)', () => {
    const shop = store.listInstances('shop');
    const statusOf = (i: (typeof shop)[number]) => (i.agentStatus === 'unreachable' ? 'unreachable' : i.processState);
    const filters: Array<Partial<PageQuery>> = [{ status: 'unreachable' }, { status: 'stopped', group: 'blue' }, { edition: '2.0', status: 'running' }];
    for (const filter of filters) {
      const expected = shop.filter(
        (i) => statusOf(i) === filter.status && (!filter.group || i.group === filter.group) && (!filter.edition || i.activeEdition === filter.edition),
      );
      const { rows, summaries } = allPages((after) => store.lists.instances('shop', query({ ...filter, limit: 40, after })));
      expect(rows.map((i) => i.agentId)).toEqual(expected.map((i) => i.agentId));
      expect(summaries[0]!.total).toBe(expected.length);
      expect(rows.every((i) => statusOf(i) === filter.status)).toBe(true);
    }
  });

  it('names an unknown app', () => {
    expect(() => store.lists.instances('nope', query())).toThrow(NotFoundError);
    expect(() => store.lists.instances('shop', query({ status: 'connected' }))).toThrow(/--status: 'connected' is not one of running, stopped/);
  });
});

describe('release detail pages', () => {
  it('pages its instances by batch and id, exactly once, each with its own steps and edition', () => {
    const whole = store.getReleaseDetail(RELEASE);
    expect(whole.batches.length).toBeGreaterThan(1);
    const pages = allPages((after) => {
      const page = store.lists.releaseDetail(RELEASE, query({ limit: 101, after }));
      expect(page.batches).toEqual(whole.batches);
      // Steps of the page's instances only, two each.
      expect(page.steps).toHaveLength(page.instances.length * 2);
      expect(new Set(page.steps.map((s) => s.instance))).toEqual(new Set(page.instances.map((i) => i.instance)));
      expect(Object.keys(page.editions).sort()).toEqual(page.instances.map((i) => i.instance).sort());
      return { rows: page.instances, summary: page.summary, nextAfter: page.nextAfter };
    });
    expect(pages.rows.map((i) => i.instance)).toEqual(whole.instances.map((i) => i.instance));
    const groupOf = new Map(whole.batches.map((b) => [b.number, b.group]));
    const expected = countsOf(whole.instances.map((i) => ({ group: groupOf.get(i.batch)!, batch: i.batch, status: i.status })));
    expect(sorted(pages.summaries[0]!.counts)).toEqual(expected);
    expect(pages.summaries[0]!.total).toBe(AGENTS);
  });

  it('filters by group, status and the edition an instance runs now', () => {
    const whole = store.getReleaseDetail(RELEASE);
    const expected = whole.instances.filter((i) => i.group === 'green' && i.status === 'failed' && whole.editions[i.instance] === '1.0');
    const { rows, summaries } = allPages((after) => {
      const page = store.lists.releaseDetail(RELEASE, query({ group: 'green', status: 'failed', edition: '1.0', limit: 10, after }));
      return { rows: page.instances, summary: page.summary, nextAfter: page.nextAfter };
    });
    expect(expected.length).toBeGreaterThan(10);
    expect(rows.map((i) => i.instance)).toEqual(expected.map((i) => i.instance));
    expect(summaries[0]!.total).toBe(expected.length);
    expect(summaries[0]!.counts.every((c) => c.status === 'failed' && c.group === 'green')).toBe(true);
  });

  it('answers on the wire with the size of its page: big batches give their count, not their ids', () => {
    const whole = store.getReleaseDetail(RELEASE);
    const wire = detailPageToProto(store.lists.releaseDetail(RELEASE, query({ limit: 5 })));
    expect(wire.instances).toHaveLength(5);
    expect(wire.batches.map((b) => b.instanceCount)).toEqual(whole.batches.map((b) => b.instances.length));
    for (const b of wire.batches) expect(b.instances).toEqual(b.instanceCount > BATCH_IDS_LISTED ? [] : whole.batches[b.number - 1]!.instances);
    expect(wire.summary!.total).toBe(AGENTS);
    expect(detailToProto(whole).batches.map((b) => b.instances)).toEqual(whole.batches.map((b) => b.instances));
  });

  it('refuses a cursor of another release or listing, and names an unknown release', () => {
    const agentCursor = store.lists.agents(query({ limit: 1 })).nextAfter;
    expect(() => store.lists.releaseDetail(RELEASE, query({ after: agentCursor }))).toThrow(BadInputError);
    expect(() => store.lists.releaseDetail(RELEASE, query({ after: encodeCursor('r', ['r-other', 1, 'h00001']) }))).toThrow(BadInputError);
    expect(() => store.lists.releaseDetail(RELEASE, query({ status: 'asleep' }))).toThrow(/--status: 'asleep' is not one of pending, in progress/);
    expect(() => store.lists.releaseDetail('r-nope', query())).toThrow(NotFoundError);
  });
});

describe('query plans', () => {
  const plan = (sql: string, params: Record<string, unknown>) =>
    (store.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as Array<{ detail: string }>).map((r) => r.detail).join('; ');

  it('reads pages and counts from indexes, not by scanning the tables', () => {
    expect(plan('SELECT a.* FROM agents a WHERE a.grp = @g AND a.status = @s AND a.id > @k ORDER BY a.id LIMIT 5', { g: 'x', s: 'y', k: '' })).toMatch(/USING INDEX agents_group/);
    expect(plan('SELECT a.* FROM agents a WHERE a.status = @s AND a.id > @k ORDER BY a.id LIMIT 5', { s: 'y', k: '' })).toMatch(/USING INDEX agents_status/);
    expect(plan('SELECT a.grp, a.status, count(*) FROM agents a GROUP BY a.grp, a.status', {})).toMatch(/USING COVERING INDEX agents_group/);
    expect(plan(`SELECT ri.batch, ri.status, count(*) FROM release_instances ri WHERE ri.release_id = @id GROUP BY 1, 2`, { id: RELEASE })).toMatch(/COVERING INDEX release_instances_status/);
    expect(plan(`SELECT ri.* FROM release_instances ri WHERE ri.release_id = @id AND (ri.batch, ri.instance) > (@b, @i) ORDER BY ri.batch, ri.instance LIMIT 5`, { id: RELEASE, b: 1, i: '' })).toMatch(
      /USING INDEX release_instances_page/,
    );
    expect(plan(`SELECT i.* FROM instances i WHERE i.app = @a AND (i.app, i.grp, i.agent_id) > (@a, @g, @k) ORDER BY i.app, i.grp, i.agent_id LIMIT 5`, { a: 'shop', g: '', k: '' })).toMatch(
      /USING INDEX instances_list/,
    );
  });
});
