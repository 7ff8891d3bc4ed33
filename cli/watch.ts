// `release watch`: follows the WatchRelease stream and prints what changed,
// reconnecting while the controller restarts (it resumes releases where they were). On a terminal the progress
// is one frame redrawn in place (watch-tty.ts); elsewhere (a pipe, a log, TERM=dumb) a line per change.
//
// Exit rule of every watch (README "Exit codes"): 0 when the release ends where the watched action aimed,
// 1 otherwise, with one line on stderr saying where it ended. `release create --watch`, `release watch` and
// the forward actions aim at Released; `release rollback --watch` at Rolled back; cancel and reject at
// Release failed. `release watch` of a release that is already in a rollback (an operator's or the
// automatic one) aims at Rolled back, so it agrees with the `release rollback --watch` beside it.
import type { ReleaseDetail } from '../proto/gen/fleetwave/v1/admin.js';
import { FleetwaveError, UnavailableError } from '../common/errors.js';
import { formatTime } from './format.js';
import type { Io } from './io.js';
import { isFinal, renderChanges, renderSummary } from './progress.js';
import { rollbackStart } from './progress-steps.js';
import { liveView, type ProgressView } from './watch-tty.js';

/** The end a watch counts as success; `auto`: Rolled back when the release is in a rollback as the watch begins, else Released. */
export type WatchAim = 'Released' | 'Rolled back' | 'Release failed' | 'auto';

/** The watched release ended elsewhere than the watch aimed (exit 1). */
export class WatchOutcomeError extends FleetwaveError {}

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
  /** Called with every snapshot, in order. */
  onSnapshot?: (detail: ReleaseDetail) => void;
  /** How progress is shown; default: redrawn in place on a terminal (watch-tty.ts), else plain lines. */
  view?: ProgressView;
}

const sleepReal = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Prints progress until the release ends; resolves to its last snapshot. */
export async function watchRelease(client: ReleaseSource, id: string, io: Io, options: WatchOptions = {}): Promise<ReleaseDetail> {
  const now = options.now ?? Date.now;
  const view = options.view ?? (io.isTTY && io.terminal ? liveView(io.terminal, { now }) : plainView(io, now));
  let last: ReleaseDetail;
  try {
    last = await follow(client, id, view, options);
  } finally {
    view.close();
  }
  for (const line of renderSummary(last)) io.out(line);
  return last;
}

/** Plain lines, one per change, each with the time: what a pipe, a log file or a dumb terminal gets. */
export function plainView(io: Io, now: () => number): ProgressView {
  const print = (line: string) => io.out(`${formatTime(now())} ${line}`);
  return {
    snapshot: (previous, detail) => renderChanges(previous, detail).forEach(print),
    note: print,
    close: () => {},
  };
}

/** Shows every snapshot until the release ends, reconnecting while the controller is away. */
async function follow(client: ReleaseSource, id: string, view: ProgressView, options: WatchOptions): Promise<ReleaseDetail> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? sleepReal;
  const reconnectForMs = options.reconnectForMs ?? 60_000;
  let previous: ReleaseDetail | undefined;
  let lostSince: number | undefined;
  const show = (detail: ReleaseDetail) => {
    view.snapshot(previous, detail);
    options.onSnapshot?.(detail);
    previous = detail;
  };

  for (let attempt = 0; ; attempt++) {
    try {
      for await (const detail of client.watchRelease(id)) {
        if (lostSince !== undefined) view.note('controller is back');
        lostSince = undefined;
        attempt = 0;
        show(detail);
        if (isFinal(detail)) break;
      }
      // The server ends the stream when the release ends; if it ended early, ask once more.
      if (isFinal(previous)) break;
      show(await client.getRelease(id));
      if (isFinal(previous)) break;
      await sleep(500);
    } catch (err) {
      if (!(err instanceof UnavailableError) || previous === undefined) throw err;
      lostSince ??= now();
      if (now() - lostSince > reconnectForMs) throw err;
      if (attempt === 0) view.note(`lost the controller (${err.message}); reconnecting`);
      await sleep(Math.min(200 * 2 ** attempt, 5_000));
    }
  }
  return previous!;
}

/** Watches the release to its end; throws WatchOutcomeError when it ends elsewhere than `aim`. */
export async function watchUntil(client: ReleaseSource, id: string, io: Io, aim: WatchAim, options: WatchOptions = {}): Promise<ReleaseDetail> {
  let first: ReleaseDetail | undefined;
  const last = await watchRelease(client, id, io, { ...options, onSnapshot: (d) => (first ??= d) });
  const wanted = aim === 'auto' ? (rollbackStart(first) !== undefined ? 'Rolled back' : 'Released') : aim;
  const r = last.release;
  if (r?.status !== wanted) {
    throw new WatchOutcomeError(`release ${id} ended ${r?.status ?? 'unknown'}${r?.message ? ` (${r.message})` : ''}, not ${wanted}`);
  }
  return last;
}
