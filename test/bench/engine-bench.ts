// The release engine alone, in process, at fleet scale: a real SQLite file, N instances, agents that answer at once.
// Prints one JSON line per N: the release's wall time, instance steps per second, the engine's work per batch.
//
//   node dist/test/bench/engine-bench.js --agents 1000,3000,10000 [--chunk 100]
//
// --chunk: results handed to the engine together, as the agent service hands over what arrived in one turn of the
// event loop (1: one at a time).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../../common/logger.js';
import { Command, type CommandResult } from '../../proto/gen/fleetwave/v1/agent.js';
import { ReleaseEngine, type EngineInput } from '../../controller/engine/engine.js';
import { commandKind } from '../../controller/engine/commands.js';
import type { PendingCommand } from '../../controller/domain/ports.js';
import { Store } from '../../controller/store/store.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    agents: { type: 'string', default: '1000,3000,10000' },
    chunk: { type: 'string', default: '100' },
    batches: { type: 'string', default: '10' },
  },
});

interface Queued {
  agentId: string;
  command: Command;
  kind: string;
}

function seed(store: Store, n: number): void {
  store.createApp({ name: 'shop', startCommand: ['node', 'server.js'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 10_000, createdUnixMs: 1 });
  for (const name of ['1.0', '2.0']) {
    store.installEdition({ app: 'shop', name, description: '', url: `http://x/${name}`, sha256: 'ab'.repeat(32), size: 10, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
  }
  store.transaction(() => {
    for (let k = 0; k < n; k++) {
      store.markAgentConnected(
        {
          agentId: `a${String(k).padStart(5, '0')}`,
          host: `h${k}`,
          group: 'all',
          labels: {},
          bootId: 'boot',
          version: 'bench',
          instances: [{ app: 'shop', servicePort: 8080, activeEdition: '1.0', keptEditions: ['1.0'], processState: 'running', quiesced: false }],
        },
        Date.now(),
      );
    }
  });
}

function answer(q: Queued, disk: Map<string, string>): CommandResult {
  const c = q.command;
  const edition = c.restartApp?.edition ?? c.startApp?.edition ?? c.hardResetServer?.edition ?? '';
  if (edition) disk.set(q.agentId, edition);
  const active = disk.get(q.agentId) ?? '1.0';
  const now = Date.now();
  return {
    commandId: c.commandId,
    ok: true,
    error: '',
    replayed: false,
    startedUnixMs: now,
    finishedUnixMs: now,
    activeEdition: edition,
    updateOrder: c.restartApp ? c.restartApp.updateOrder || 'stop-first' : '',
    instance: { app: c.app, servicePort: 8080, activeEdition: active, keptEditions: ['1.0', '2.0'], processState: 'running', quiesced: false },
  };
}

async function run(n: number, chunk: number, batches: number): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-engine-bench-'));
  const store = Store.open(join(dir, 'fleetwave.db'));
  try {
    seed(store, n);
    const queue: Queued[] = [];
    const sink = {
      deliver(commands: PendingCommand[]) {
        for (const p of commands) {
          const command = Command.decode(p.payload);
          queue.push({ agentId: p.agentId, command, kind: commandKind(command) });
        }
      },
    };
    const engine = new ReleaseEngine({ store, sink, logger: createLogger({ name: 'engine-bench', level: 'silent' }) });
    engine.start();
    const disk = new Map<string, string>();
    const started = performance.now();
    const id = engine.createRelease({ app: 'shop', edition: '2.0', group: 'all', batches, start: true, drainMs: 1, batchMode: 'auto' }, 'bench').id;
    let steps = 0;
    const turnMs: number[] = [];
    while (queue.length) {
      const take = queue.splice(0, chunk);
      const t0 = performance.now();
      const inputs: EngineInput[] = [];
      for (const q of take) {
        inputs.push({ kind: 'result', agentId: q.agentId, result: answer(q, disk) });
        if (q.kind === 'Quiesce') inputs.push({ kind: 'drained', app: 'shop', instance: q.agentId });
      }
      engine.apply(inputs);
      turnMs.push(performance.now() - t0);
      steps += take.length;
      // Deadlines (the drain interval) come due; a real controller's timer fires them.
      if (!queue.length) {
        engine.fireDeadlines();
        if (!queue.length && store.getRelease(id).status === 'Releasing') await new Promise((r) => setTimeout(r, 2));
        if (!queue.length) engine.fireDeadlines();
      }
    }
    const releaseMs = performance.now() - started;
    const release = store.getRelease(id);
    engine.stop();
    return {
      agents: n,
      chunk,
      status: release.status,
      releaseMs: Math.round(releaseMs),
      steps,
      stepsPerSec: Math.round(steps / (releaseMs / 1000)),
      turnP50Ms: +(percentile(turnMs, 50) ?? 0).toFixed(2),
      turnP99Ms: +(percentile(turnMs, 99) ?? 0).toFixed(2),
      rssMb: Math.round(process.memoryUsage().rss / 1e6),
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const n of values.agents.split(',').map(Number)) {
  console.log(JSON.stringify(await run(n, Number(values.chunk), Number(values.batches))));
}
