// Live updates: the controller's event stream (GET /events, server-sent events, the session cookie as credential) and
// a refetch scheduler. A 10,000-instance release sends thousands of events a minute: the visible view refetches at
// most once per window (~300 ms) and never twice at once, whatever the event rate.

/** Every event type (common/event-types.ts, the daemons' own list): the stream names each event by its type, so EventSource needs a listener per type. */
import { EVENT_TYPES, type EventFilter } from '../../common/event-types.js';

export { EVENT_TYPES };

/** What a view needs of an event to decide whether it is relevant. */
export interface LiveEvent {
  type: string;
  app?: string;
  release?: string;
  instance?: string;
}

/** Timers the scheduler uses; the tests pass fake ones. */
export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * Coalesces pokes into refetches: the first poke arms a timer of `windowMs`; pokes before it fires join it; a poke during
 * a refetch arms the next one after the refetch ends. So at most one refetch per window and one in flight.
 */
export class RefreshScheduler {
  private timer: unknown = null;
  private running = false;
  private again = false;
  private stopped = false;

  constructor(private readonly refetch: () => Promise<void>, private readonly windowMs = 300, private readonly clock: Clock = globalThis) {}

  poke(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer === null) this.timer = this.clock.setTimeout(() => void this.fire(), this.windowMs);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private async fire(): Promise<void> {
    this.timer = null;
    this.running = true;
    try {
      await this.refetch();
    } catch {
      // The view shows its own fetch errors; the next event tries again.
    } finally {
      this.running = false;
    }
    if (this.again) {
      this.again = false;
      this.poke();
    }
  }
}

export type LiveState = 'connecting' | 'live' | 'reconnecting';

/** The query of /events for `filter` (the server sends only those events). */
export function eventsUrl(filter: EventFilter): string {
  const query = new URLSearchParams();
  if (filter.types.length > 0) query.set('types', filter.types.join(','));
  if (filter.app) query.set('app', filter.app);
  if (filter.release) query.set('release', filter.release);
  const text = query.toString();
  return text ? `/events?${text}` : '/events';
}

/**
 * Opens /events for the events `filter` names; `onEvent` gets each parsed event, `onState` the connection state
 * (EventSource reconnects by itself).
 */
export function openEvents(filter: EventFilter, onEvent: (e: LiveEvent) => void, onState: (s: LiveState) => void): () => void {
  const source = new EventSource(eventsUrl(filter), { withCredentials: true });
  onState('connecting');
  source.onopen = () => onState('live');
  source.onerror = () => onState(source.readyState === EventSource.CLOSED ? 'reconnecting' : 'connecting');
  const listener = (message: MessageEvent<string>) => {
    try {
      const event = JSON.parse(message.data) as { type?: string; data?: { app?: string; release?: string; instance?: string } };
      onEvent({ type: event.type ?? message.type, app: event.data?.app, release: event.data?.release, instance: event.data?.instance });
    } catch {
      // Not JSON: not an event of ours.
    }
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, listener as EventListener);
  return () => source.close();
}
