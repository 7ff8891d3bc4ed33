// Helpers of the forged-events suites: read the controller's SSE stream, its refusal counter and the events stream, run a controller that should refuse to start.
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
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

/** How a secured controller's HTTP side is read: its CA and a viewer (or higher) token. */
export interface HttpAccess {
  ca: Buffer;
  token: string;
}

/** One GET over http or https (with `access`); the response, or the error. */
function get(url: string, access: HttpAccess | undefined, signal?: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const options = access ? { ca: access.ca, headers: { authorization: `Bearer ${access.token}` }, signal } : { signal };
    const req = url.startsWith('https:') ? httpsGet(url, options, resolve) : httpGet(url, options, resolve);
    req.on('error', reject);
  });
}

/** Subscribes to `/events` and keeps everything it receives (raw text and parsed events) until close(). */
export function readSse(url: string, access?: HttpAccess): { events(): SseEvent[]; raw(): string; close(): void } {
  const abort = new AbortController();
  let raw = '';
  void get(url, access, abort.signal)
    .then(async (res) => {
      res.setEncoding('utf8');
      for await (const chunk of res) raw += chunk as string;
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
export async function rejectedCount(httpUrl: string, reason?: string, access?: HttpAccess): Promise<number> {
  const res = await get(`${httpUrl}/metrics`, access);
  res.setEncoding('utf8');
  let text = '';
  for await (const chunk of res) text += chunk as string;
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
