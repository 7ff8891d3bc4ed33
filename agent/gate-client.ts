// One app's traffic gate as the agent sees it: a handle on the gate the gate host runs, with TrafficGate's surface.
//
//   open (new, or adopted as the gate host kept it) ──quiesce()/release()/listen()/...──▶ the gate host
//   events from the gate host ('inflight' while quiesced: in-flight or held count changed; 'released') feed watchDrain
//   detach(): the agent goes, the gate stays;  close(): the gate goes too (--stop-gates, tests)
import { EventEmitter } from 'node:events';
import type { GateLink } from './gate-link.js';
import type { GateEvent, GateSpec, GateState } from './gate-protocol.js';
import type { HoldFigures } from './hold-stats.js';

/** Emits 'inflight' (count) while quiesced and 'released' on release(), as TrafficGate does. */
export class GateClient extends EventEmitter {
  private state: GateState;
  private expectedSent: boolean;
  private readonly inFlightOnLast = new Map<number, number>();
  private readonly onEvent = (event: GateEvent): void => {
    if (event.app !== this.app) return;
    if (event.event === 'inflight') {
      const changed = event.count !== this.state.inFlight;
      this.state = { ...this.state, inFlight: event.count, held: event.held };
      if (changed) this.emit('inflight', event.count);
    } else this.emit('released');
  };

  private constructor(
    private link: GateLink,
    private readonly spec: GateSpec,
    state: GateState,
    private readonly isAppExpected: () => boolean,
  ) {
    super();
    this.state = state;
    this.expectedSent = spec.appExpected;
    link.on('event', this.onEvent);
  }

  /** Opens the gate, or takes over the one the gate host kept from an earlier agent run (`adopted`). */
  static async open(link: GateLink, spec: GateSpec, isAppExpected: () => boolean): Promise<GateClient> {
    const reply = await link.request({ op: 'open', ...spec });
    return new GateClient(link, spec, reply.gate!, isAppExpected);
  }

  get app(): string {
    return this.spec.app;
  }

  /** True when the gate host already ran this gate before this agent opened it. */
  get adopted(): boolean {
    return this.state.adopted ?? false;
  }

  get port(): number {
    return this.state.port;
  }

  get listening(): boolean {
    return this.state.listening;
  }

  get quiesced(): boolean {
    return this.state.quiesced;
  }

  get inFlight(): number {
    return this.state.inFlight;
  }

  get held(): number {
    return this.state.held;
  }

  async quiesce(): Promise<void> {
    await this.call({ op: 'quiesce', app: this.app });
  }

  async release(): Promise<void> {
    await this.call({ op: 'release', app: this.app });
  }

  async listen(): Promise<number> {
    await this.call({ op: 'listen', app: this.app });
    return this.state.port;
  }

  async unlisten(): Promise<void> {
    await this.call({ op: 'unlisten', app: this.app });
  }

  async setHealthPath(path: string): Promise<void> {
    if (path) await this.call({ op: 'setHealthPath', app: this.app, path });
  }

  async setHoldMs(ms: number): Promise<void> {
    if (ms > 0) await this.call({ op: 'setHoldMs', app: this.app, ms });
  }

  /** Switches new requests to `port` in one step (start-first); those in flight on the old port finish there. */
  async setTarget(port: number): Promise<void> {
    await this.call({ op: 'setTarget', app: this.app, port });
  }

  get targetPort(): number {
    return this.state.targetPort;
  }

  /** Resolves true once no request is in flight on `port`, false when `timeoutMs` passes first. */
  async idle(port: number, timeoutMs: number): Promise<boolean> {
    const reply = await this.link.request({ op: 'idle', app: this.app, port, timeoutMs });
    this.inFlightOnLast.set(port, reply.inFlightOn ?? 0);
    if (reply.gate) this.state = reply.gate;
    return reply.idle ?? false;
  }

  /** In flight on `port` when the last idle() on it answered (the gate host counts; this is its last word). */
  inFlightOn(port: number): number {
    return this.inFlightOnLast.get(port) ?? 0;
  }

  async stats(reset = false): Promise<HoldFigures | undefined> {
    return (await this.link.request({ op: 'stats', app: this.app, reset })).stats?.[this.app];
  }

  /** After the gate host was lost and a new one spawned: the gate opens again as this agent last knew it. */
  async reopen(link: GateLink): Promise<void> {
    this.link.off('event', this.onEvent);
    this.link = link;
    link.on('event', this.onEvent);
    const spec = { ...this.spec, port: this.state.port || this.spec.port, quiesced: this.state.quiesced, listen: this.state.listening, appExpected: this.isAppExpected() };
    this.state = (await link.request({ op: 'open', ...spec })).gate!;
  }

  /** The agent stops; the gate keeps serving in the gate host. */
  detach(): void {
    this.link.off('event', this.onEvent);
  }

  /** Closes the gate in the gate host: held requests get 503, the service port is given up. */
  async close(): Promise<void> {
    this.detach();
    await this.link.request({ op: 'close', app: this.app }).catch(() => undefined);
  }

  private async call(request: Parameters<GateLink['request']>[0]): Promise<void> {
    const reply = await this.link.request(request);
    if (reply.gate) this.state = reply.gate;
  }

  /**
   * Tells the gate host whether the app should be running now (isAppExpected), if that changed since it was last told;
   * called when the supervisor's state changes. The gate host answers requests for a stopped app at once.
   */
  async syncExpected(): Promise<void> {
    const expected = this.isAppExpected();
    if (expected === this.expectedSent) return;
    this.expectedSent = expected;
    await this.link.request({ op: 'setAppExpected', app: this.app, expected }).catch(() => {
      // Lost link: reopen() sends the current value with the gate; until then the next change tries again.
      this.expectedSent = !expected;
    });
  }
}
