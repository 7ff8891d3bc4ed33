// Watches a quiesced gate drain: publishes drain.progress every 250 ms and on change, then drained once.
import type { EventSink } from './events.js';
import type { TrafficGate } from './gate.js';

const PROGRESS_INTERVAL_MS = 250;
/** Under heavy traffic the count changes constantly; change-driven progress is throttled to this. */
const CHANGE_MIN_GAP_MS = 50;

/** Starts watching; returns a function that stops it without publishing `drained`. */
export function watchDrain(gate: TrafficGate, app: string, drainMs: number, events: EventSink): () => void {
  const started = Date.now();
  let lastPublished = 0;
  let lastCount = -1;
  let done = false;

  const progress = (): void => {
    lastPublished = Date.now();
    lastCount = gate.inFlight;
    events.publish(app, 'drain.progress', { inFlight: gate.inFlight, held: gate.held, elapsedMs: Date.now() - started });
  };
  const finish = (timedOut: boolean): void => {
    stop();
    events.publish(app, 'drained', { inFlight: gate.inFlight, timedOut, elapsedMs: Date.now() - started });
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
    gate.off('inflight', onChange);
    gate.off('released', stop);
  };

  const interval = setInterval(progress, PROGRESS_INTERVAL_MS);
  const deadline = setTimeout(() => finish(true), drainMs);
  gate.on('inflight', onChange);
  gate.on('released', stop);
  events.publish(app, 'quiesce.started', { inFlight: gate.inFlight, drainMs });
  if (gate.inFlight === 0) finish(false);
  else progress();
  return stop;
}
