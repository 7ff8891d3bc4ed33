// `release watch`: follows the WatchRelease stream and prints what changed,
// reconnecting while the controller restarts (it resumes releases where they were).
import type { ReleaseDetail } from '../proto/gen/fleetwave/v1/admin.js';
import { UnavailableError } from '../common/errors.js';
import { formatTime } from './format.js';
import type { Io } from './io.js';
import { isFinal, renderChanges, renderSummary } from './progress.js';

/** What watching needs from the controller (AdminClient has it; tests fake it). */
export interface ReleaseSource {
  watchRelease(id: string): AsyncIterable<ReleaseDetail>;
  getRelease(id: string): Promise<ReleaseDetail>;
}

export interface WatchOptions {
  /** How long to keep trying while the controller is unreachable. */
  reconnectForMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const sleepReal = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Prints progress until the release ends; resolves to its last snapshot. */
export async function watchRelease(client: ReleaseSource, id: string, io: Io, options: WatchOptions = {}): Promise<ReleaseDetail> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? sleepReal;
  const reconnectForMs = options.reconnectForMs ?? 60_000;
  let previous: ReleaseDetail | undefined;
  let lostSince: number | undefined;
  const print = (line: string) => io.out(`${formatTime(now())} ${line}`);

  for (let attempt = 0; ; attempt++) {
    try {
      for await (const detail of client.watchRelease(id)) {
        if (lostSince !== undefined) print('controller is back');
        lostSince = undefined;
        attempt = 0;
        for (const line of renderChanges(previous, detail)) print(line);
        previous = detail;
        if (isFinal(detail)) break;
      }
      // The server ends the stream when the release ends; if it ended early, ask once more.
      if (isFinal(previous)) break;
      previous = await catchUp(client, id, previous, print);
      if (isFinal(previous)) break;
      await sleep(500);
    } catch (err) {
      if (!(err instanceof UnavailableError) || previous === undefined) throw err;
      lostSince ??= now();
      if (now() - lostSince > reconnectForMs) throw err;
      if (attempt === 0) print(`lost the controller (${err.message}); reconnecting`);
      await sleep(Math.min(200 * 2 ** attempt, 5_000));
    }
  }
  for (const line of renderSummary(previous!)) io.out(line);
  return previous!;
}

async function catchUp(
  client: ReleaseSource,
  id: string,
  previous: ReleaseDetail | undefined,
  print: (line: string) => void,
): Promise<ReleaseDetail> {
  const detail = await client.getRelease(id);
  for (const line of renderChanges(previous, detail)) print(line);
  return detail;
}
