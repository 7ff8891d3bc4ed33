// Gathers the fleet's inputs of one turn of the event loop and hands them to the engine together.
//
//   gRPC results, NATS `drained` events, routers' acks ──▶ inbox ──setImmediate──▶ engine.apply(up to MAX_BATCH at a time)
//
// A thousand results read from the sockets in one turn cost one transaction and one pass per release, not a thousand:
// the release's work per input stays bounded however many agents answer at once. Inputs are never reordered.
import type { CommandResult } from '../../proto/gen/fleetwave/v1/agent.js';
import type { EngineInput, ReleaseEngine } from './engine.js';

/** Inputs handed over at most at once, so one flush never holds the event loop (keepalives, heartbeats) for long. */
const MAX_BATCH = 500;

export class EngineInbox {
  private queue: EngineInput[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(private readonly engine: Pick<ReleaseEngine, 'apply'>) {}

  commandResult(agentId: string, result: CommandResult): void {
    this.push({ kind: 'result', agentId, result });
  }

  drained(app: string, instance: string, quiesceCommandId = '', elapsedMs?: number): void {
    this.push({ kind: 'drained', app, instance, quiesceCommandId, elapsedMs });
  }

  /** Any input, e.g. the routers' ack of an atomic release's route phase (the engine submits it itself). */
  submit(input: EngineInput): void {
    this.push(input);
  }

  /** Hands over everything queued now (the controller stopping, or a test). */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    while (this.queue.length) this.engine.apply(this.queue.splice(0, MAX_BATCH));
  }

  /** Hands over what is queued and takes nothing more: an agent sends a result the stopping controller missed again. */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private push(input: EngineInput): void {
    if (this.closed) return;
    this.queue.push(input);
    this.scheduled ??= setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = undefined;
    this.engine.apply(this.queue.splice(0, MAX_BATCH));
    if (this.queue.length) this.scheduled = setImmediate(() => this.drain());
  }
}
