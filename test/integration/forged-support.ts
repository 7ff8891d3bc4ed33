// Helpers of the forged-events suites: read the controller's SSE stream, its refusal counter and the events stream, run a controller that should refuse to start.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import type { NatsConnection } from 'nats';
import { STREAM_NAME } from '../../common/events.js';
import { CLI_MAIN } from '../harness/fleet.js';

export interface SseEvent {
  id: string;
  type: string;
  source: string;
  subject: string;
  data: Record<string, unknown>;
}

/** Subscribes to `/events` and keeps everything it receives (raw text and parsed events) until close(). */
export function readSse(url: string): { events(): SseEvent[]; raw(): string; close(): void } {
  const abort = new AbortController();
  let raw = '';
  void fetch(url, { signal: abort.signal })
    .then(async (res) => {
      const decoder = new TextDecoder();
      for await (const chunk of res.body!) raw += decoder.decode(chunk as Uint8Array, { stream: true });
    })
    .catch(() => {});
  const events = () =>
    raw
      .split('\n')
      .filter((line) => line.startsWith('data: '))
      .flatMap((line) => {
        try {
          return [JSON.parse(line.slice(6)) as SseEvent];
        } catch {
          return [];
        }
      });
  return { events, raw: () => raw, close: () => abort.abort() };
}

/** fleetwave_events_rejected_total for `reason`, or summed over all reasons. */
export async function rejectedCount(httpUrl: string, reason?: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  let sum = 0;
  for (const m of text.matchAll(/^fleetwave_events_rejected_total\{reason="([^"]+)"\} (\d+)/gm)) if (!reason || m[1] === reason) sum += Number(m[2]);
  return sum;
}

/** Runs `fleetwave controller` (secure unless args say otherwise) and waits for it to exit; a controller still up after 20 s is killed (code -1). */
export function runControllerOnce(dataDir: string, natsUrl: string, args: string[]): Promise<{ code: number; stderr: string }> {
  mkdirSync(dataDir, { recursive: true });
  const child = spawn(process.execPath, [CLI_MAIN, 'controller', '--listen', '127.0.0.1:0', '--http', '127.0.0.1:0', '--data-dir', dataDir, '--nats', natsUrl, ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stderr });
    }),
  );
}

/** Every message the events stream holds, with its subject. */
export async function readStream(nc: NatsConnection): Promise<Array<{ subject: string; text: string }>> {
  const consumer = await nc.jetstream().consumers.get(STREAM_NAME);
  const out: Array<{ subject: string; text: string }> = [];
  for (let got = -1; got !== 0; ) {
    got = 0;
    for await (const m of await consumer.fetch({ max_messages: 1_000, expires: 1_000 })) {
      got++;
      out.push({ subject: m.subject, text: m.string() });
    }
  }
  return out;
}
