// The same load against app processes restarted the way a playbook does it (stop, start, wait for the port), without a gate.
import { LoadGenerator } from '../../examples/demo/load.js';
import { freePort, waitFor } from '../harness/fleet.js';
import type { Proc } from '../harness/fleet.js';
import { startApp } from './processes.js';
import { START_DELAY_MS } from './release-bench.js';

export interface PlainRestartFigures {
  scenario: 'plain-restart';
  instances: number;
  batches: number;
  ok: number;
  failed: number;
  failures: Record<string, number>;
  p50DuringMs: number;
  p99DuringMs: number;
  wallMs: number;
}

/** One instance at a time: SIGTERM and wait for the exit, start the new edition, wait until it listens, next. */
export async function benchPlainRestart(instances: number, concurrency: number, appMs: number): Promise<PlainRestartFigures> {
  const ports: number[] = [];
  const apps: Proc[] = [];
  try {
    for (let i = 0; i < instances; i++) {
      ports.push(await freePort());
      apps.push(await startApp(ports[i]!, '1.0', 0));
    }
    const load = new LoadGenerator({ urls: ports.map((p) => (appMs > 0 ? `http://127.0.0.1:${p}/slow?ms=${appMs}` : `http://127.0.0.1:${p}/`)), concurrency });
    load.start();
    await waitFor('requests to flow', () => load.snapshot().total > 0);
    const started = Date.now();
    for (let i = 0; i < instances; i++) {
      await apps[i]!.stop();
      // startApp returns once the port accepts connections, as a playbook's wait_for would.
      apps[i] = await startApp(ports[i]!, '2.0', START_DELAY_MS);
    }
    const wallMs = Date.now() - started;
    const summary = await load.stop();
    return {
      scenario: 'plain-restart',
      instances,
      batches: instances,
      ok: summary.ok,
      failed: summary.failed,
      failures: summary.failures,
      p50DuringMs: summary.latencyMs.p50,
      p99DuringMs: summary.latencyMs.p99,
      wallMs,
    };
  } finally {
    await Promise.all(apps.map((a) => a.stop()));
  }
}
