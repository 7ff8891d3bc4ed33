// Watches a quiesced instance drain: publishes drain.progress every 250 ms and on change, then drained once.
import type { EventSink } from './events.js';

/**
 * What is drained: the traffic gate, or a self-draining app's polled in-flight count (self-drain.ts).
 * Emits 'inflight' (count) on every change and 'released' when the instance takes traffic again.
 */
export interface DrainSource {
  readonly inFlight: number;
  /** Requests held back meanwhile (0 when nothing holds them). */
  readonly held: number;
  on(event: 'inflight' | 'released', listener: (count: number) => void): unknown;
  off(event: 'inflight' | 'released', listener: (count: number) => void): unknown;
}

const PROGRESS_INTERVAL_MS = 250;
/** Under heavy traffic the count changes constantly; change-driven progress is throttled to this. */
const CHANGE_MIN_GAP_MS = 50;

/**
 * Starts watching; returns a function that stops it without publishing `drained`. `quiesceCommandId` goes into
 * `drained`, so the controller ends only the drain of that Quiesce (a late copy of an older one ends nothing).
 */
export function watchDrain(source: DrainSource, app: string, drainMs: number, events: EventSink, quiesceCommandId = ''): () => void {
  const started = Date.now();
  let lastPublished = 0;
  let lastCount = -1;
  let done = false;

  const progress = (): void => {
    lastPublished = Date.now();
    lastCount = source.inFlight;
    events.publish(app, 'drain.progress', { inFlight: source.inFlight, held: source.held, elapsedMs: Date.now() - started });
  };
  const finish = (timedOut: boolean): void => {
    stop();
    events.publish(app, 'drained', { inFlight: source.inFlight, timedOut, elapsedMs: Date.now() - started, quiesceCommandId });
  };
  const onChange = (count: number): void => {
    if (count === 0) return finish(false);
    if (count !== lastCount && Date.now() - lastPublished >= CHANGE_MIN_GAP_MS) progress();
  };
  const stop = (): void => {
    if (done) return;
    done = true;
    clearInterval(interval);
    clearTimeout(deadline);
    source.off('inflight', onChange);
    source.off('released', stop);
  };

  const interval = setInterval(progress, PROGRESS_INTERVAL_MS);
  const deadline = setTimeout(() => finish(true), drainMs);
  source.on('inflight', onChange);
  source.on('released', stop);
  events.publish(app, 'quiesce.started', { inFlight: source.inFlight, drainMs });
  if (source.inFlight === 0) finish(false);
  else progress();
  return stop;
}
