// `release watch` on a terminal: the frame of progress-frame.ts redrawn in place as snapshots arrive, and
// once a second so the running steps' times move. Notes (lost the controller, it is back) stay in the
// scrollback above the frame; when the watch ends the last frame stays on screen and later lines print below.
// log-update: in-place redraws that rewrite only changed lines, inside synchronized-output marks (no
// flicker), clipped to the terminal's height; small and maintained, and the one the design names.
import { createLogUpdate } from 'log-update';
import type { ReleaseDetail } from '../proto/gen/fleetwave/v1/admin.js';
import { formatTime } from './format.js';
import type { Terminal } from './io.js';
import { DEFAULT_MAX_BATCHES, DEFAULT_MAX_INSTANCES, frame, type FrameLimits } from './progress-frame.js';

export type { Terminal };

/** How a watch shows progress: plain lines (watch.ts) or this live view. */
export interface ProgressView {
  /** A new snapshot of the release; `previous` is the one before (undefined: the first). */
  snapshot(previous: ReleaseDetail | undefined, detail: ReleaseDetail): void;
  /** A line about the watch itself ("lost the controller …"), kept in the scrollback. */
  note(line: string): void;
  /** The watch ended (or failed): the last frame stays; what follows prints below. Safe to call twice. */
  close(): void;
}

export interface LiveViewOptions {
  now?: () => number;
  /** How often the frame is redrawn without a new snapshot, so the step times move (0: never). */
  tickMs?: number;
}

/** Frame limits for a terminal of `rows` rows: the bars and the instance lines share what the header and footer leave. */
export function limitsFor(rows: number | undefined): FrameLimits {
  const height = rows && rows > 0 ? rows : 24;
  const maxBatches = Math.max(3, Math.min(DEFAULT_MAX_BATCHES, Math.floor(height / 3)));
  // Header, the two "… N batches" lines, the waiting line, a note, and the line log-update leaves for the cursor.
  const maxInstances = Math.max(3, Math.min(DEFAULT_MAX_INSTANCES, height - maxBatches - 6));
  return { maxBatches, maxInstances };
}

export function liveView(terminal: Terminal, options: LiveViewOptions = {}): ProgressView {
  const now = options.now ?? Date.now;
  const log = createLogUpdate(terminal);
  let last: ReleaseDetail | undefined;
  let closed = false;
  const draw = () => {
    if (last && !closed) log(frame(last, now(), terminal.columns ?? 80, limitsFor(terminal.rows)));
  };
  const tickMs = options.tickMs ?? 1000;
  // unref: a pending redraw never keeps the CLI alive once the watch is over.
  const ticker = tickMs > 0 ? setInterval(draw, tickMs).unref() : undefined;
  const onResize = () => draw();
  terminal.on('resize', onResize);
  return {
    snapshot(_previous, detail) {
      last = detail;
      draw();
    },
    note(line) {
      if (closed) return;
      log.persist(`${formatTime(now())} ${line}`);
      draw();
    },
    close() {
      if (closed) return;
      draw();
      closed = true;
      if (ticker) clearInterval(ticker);
      terminal.off('resize', onResize);
      log.done();
    },
  };
}
