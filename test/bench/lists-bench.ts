// Figures for the paged listings at fleet scale (not a timed test): a real SQLite file with N agents, their
// instances and a release of all of them with a few steps each; then the time of a page and its summary, as the
// admin service computes it (store query + mapping to proto + encoding), against the whole-release read it replaces.
//
//   node dist/test/bench/lists-bench.js [N=10000] [rounds=50]
//
// Prints one JSON line per measurement: { what, n, p50Ms, p99Ms, bytes }.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detailPageToProto, detailToProto } from '../../controller/admin-mapping.js';
import { planBatches } from '../../controller/domain/planner.js';
import { compileReleaseSpec } from '../../controller/domain/spec.js';
import type { PageQuery } from '../../controller/store/lists.js';
import { Store } from '../../controller/store/store.js';
import { ListAgentsResponse, ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';

const N = Number(process.argv[2] ?? 10_000);
const ROUNDS = Number(process.argv[3] ?? 50);
const STEPS = ['download', 'quiesce', 'drain', 'restart', 'health'];

function seed(store: Store): void {
  store.createApp({ name: 'shop', startCommand: ['run'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, createdUnixMs: 1 });
  store.installEdition({ app: 'shop', name: '2.0', description: '', url: 'http://x', sha256: 'a'.repeat(64), size: 1, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
  store.transaction(() => {
    for (let i = 0; i < N; i++) {
      const id = `host-${String(i).padStart(6, '0')}`;
      store.markAgentConnected(
        { agentId: id, host: id, group: `g${i % 10}`, labels: { rack: String(i % 40) }, bootId: 'b', version: 'v', instances: [{ app: 'shop', servicePort: 8080, activeEdition: '1.0', keptEditions: ['1.0'], processState: 'running', quiesced: false }] },
        1,
      );
      if (i % 50 === 0) store.markAgentUnreachable(id, 2);
    }
  });
  const spec = compileReleaseSpec({ app: 'shop', edition: '2.0', group: 'all', batches: 1 });
  store.createRelease({ id: 'r-bench', spec, actor: 'bench', now: 10, plan: ({ instances }) => planBatches(spec, instances.map((i) => ({ id: i.agentId, group: i.group }))) });
  store.transaction(() => {
    const ids = store.db.prepare(`SELECT instance FROM release_instances WHERE release_id = 'r-bench'`).pluck().all() as string[];
    const status = store.db.prepare(`UPDATE release_instances SET status = ? WHERE release_id = 'r-bench' AND instance = ?`);
    const step = store.db.prepare(`INSERT INTO steps (release_id, instance, step, phase, status, started_unix_ms, finished_unix_ms, error) VALUES ('r-bench', ?, ?, 'upgrade', 'ok', 1, 2, '')`);
    ids.forEach((id, n) => {
      status.run(n % 3 === 0 ? 'released' : n % 3 === 1 ? 'in progress' : 'pending', id);
      for (const s of STEPS) step.run(id, s);
    });
  });
}

function measure(what: string, fn: () => Uint8Array): void {
  const times: number[] = [];
  let bytes = 0;
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    bytes = fn().length;
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => Math.round(times[Math.min(times.length - 1, Math.floor(q * times.length))]! * 100) / 100;
  console.log(JSON.stringify({ what, n: N, p50Ms: at(0.5), p99Ms: at(0.99), bytes }));
}

const dir = mkdtempSync(join(tmpdir(), 'fleetwave-lists-bench-'));
try {
  const store = Store.open(join(dir, 'fleetwave.db'));
  seed(store);
  const q = (o: Partial<PageQuery> = {}): PageQuery => ({ group: '', status: '', edition: '', limit: 0, after: '', ...o });
  const agents = (query: PageQuery) => () => {
    const page = store.lists.agents(query);
    return ListAgentsResponse.encode({ agents: page.rows.map((a) => ({ ...a, lastSeenUnixMs: a.lastSeenUnixMs, clockSkewMs: 0 })), summary: page.summary, nextAfter: page.nextAfter }).finish();
  };
  measure('agent list --limit 100', agents(q({ limit: 100 })));
  measure('agent list --limit 100 --group g3 --status connected', agents(q({ limit: 100, group: 'g3', status: 'connected' })));
  const middle = store.lists.agents(q({ limit: Math.floor(N / 2) })).nextAfter;
  measure('agent list --limit 100 (a page in the middle)', agents(q({ limit: 100, after: middle })));
  measure('agent list (default page)', agents(q()));
  const release = (query: PageQuery) => () => ReleaseDetail.encode(detailPageToProto(store.lists.releaseDetail('r-bench', query))).finish();
  measure('release show --limit 100', release(q({ limit: 100 })));
  measure('release show (default page)', release(q()));
  measure('release show --status pending --limit 100', release(q({ status: 'pending', limit: 100 })));
  measure('release show, whole release in one answer (the old read, with steps grouped per instance)', () => ReleaseDetail.encode(detailToProto(store.getReleaseDetail('r-bench'))).finish());
  store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
