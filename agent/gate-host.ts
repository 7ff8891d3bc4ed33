// The gate host: owns the service ports and runs the traffic gates of one agent, in a process that outlives the agent.
//
//   spawned by an agent ──▶ serving (gates listen; agents come and go on gate.sock) ──shutdown / data dir gone──▶ exit
//        or by an older gate host ──taking over (gate-takeover.ts)──▶ serving
//   serving ──handover (an agent of another version)──▶ handing over (gate-handover.ts) ──▶ exit
//            └─ the successor failed before it accepted ──▶ serving, as before
//   An agent that connects later adopts the gates as they are: ports, quiesced or not, targets, held requests.
import { existsSync, rmSync } from 'node:fs';
import { chmod } from 'node:fs/promises';
import net from 'node:net';
import type { Logger } from '../common/logger.js';
import { TrafficGate } from './gate.js';
import { handOver, HandoverError } from './gate-handover.js';
import { GATE_FEATURES, GATE_PROTOCOL, type GateEvent, type GateFeature, type GateReply, type GateRequest, type GateSpec, type GateState, type HandoverRequest } from './gate-protocol.js';
import type { HoldFigures, HoldHistory } from './hold-stats.js';

interface HostedGate {
  gate: TrafficGate;
  /** Last word from the agent on whether the app should run; kept while no agent is connected. */
  appExpected: boolean;
  /** While quiesced: tells the agents of a changed hold queue (requests held do not change the in-flight count). */
  heldWatch?: NodeJS.Timeout;
}

/** How often the host checks that its data dir still exists (removed: an uninstall or a finished test). */
const DATA_DIR_CHECK_MS = 2000;
/** How often a quiesced gate's hold queue is compared with what the agents were last told (drain.progress: 250 ms). */
const HELD_WATCH_MS = 100;

/** What a test changes to play an older gate host. */
export interface GateHostOptions {
  protocol?: string;
  features?: GateFeature[];
}

export class GateHost {
  private readonly gates = new Map<string, HostedGate>();
  private readonly clients = new Set<net.Socket>();
  private readonly server = net.createServer((socket) => this.onClient(socket));
  private watch: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private handingOver = false;
  /** Whether gate.sock is ours to remove: not before start() (a successor's predecessor serves it), nor once given up. */
  private ownsControl = false;

  constructor(
    private readonly socketPath: string,
    private readonly dataDir: string,
    private readonly logger: Logger,
    /** Called once every gate closed after a shutdown request, a hand-over or the data dir's removal. */
    private readonly onExit: () => void = () => {},
    private readonly options: GateHostOptions = {},
  ) {}

  get protocol(): string {
    return this.options.protocol ?? GATE_PROTOCOL;
  }

  async start(): Promise<void> {
    // A socket file left by a dead host: nobody answers on it (the caller checked), so it can go.
    rmSync(this.socketPath, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.socketPath, () => resolve());
    });
    this.ownsControl = true;
    await chmod(this.socketPath, 0o600);
    this.watch = setInterval(() => {
      if (!existsSync(this.dataDir)) void this.shutdown('data dir removed');
    }, DATA_DIR_CHECK_MS);
    this.logger.info({ socket: this.socketPath, pid: process.pid }, 'gate host serving');
  }

  shutdown(reason: string): Promise<void> {
    return (this.closing ??= (async () => {
      this.logger.info({ reason }, 'gate host stopping');
      clearInterval(this.watch);
      for (const g of this.gates.values()) clearInterval(g.heldWatch);
      await Promise.all([...this.gates.values()].map((g) => g.gate.close()));
      this.gates.clear();
      for (const client of this.clients) client.destroy();
      await new Promise<void>((resolve) => this.server.close(() => resolve()));
      if (this.ownsControl) rmSync(this.socketPath, { force: true });
      this.onExit();
    })());
  }

  private onClient(socket: net.Socket): void {
    this.clients.add(socket);
    socket.setEncoding('utf8');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim()) void this.onLine(socket, line);
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.clients.delete(socket));
  }

  private async onLine(socket: net.Socket, line: string): Promise<void> {
    let id = 0;
    let reply: Omit<GateReply, 'id'>;
    try {
      const message = JSON.parse(line) as GateRequest & { id: number };
      id = message.id;
      reply = { ok: true, ...(await this.handle(message)) };
    } catch (err) {
      reply = { ok: false, error: (err as Error).message };
    }
    if (!socket.destroyed) socket.write(`${JSON.stringify({ id, ...reply })}\n`);
  }

  private async handle(request: GateRequest): Promise<Partial<GateReply>> {
    if (this.handingOver && request.op !== 'hello' && request.op !== 'stats') throw new Error(`handing over to a new gate host: ${request.op} refused`);
    switch (request.op) {
      case 'hello':
        return { protocol: this.protocol, features: this.options.features ?? GATE_FEATURES, pid: process.pid, gates: [...this.gates.keys()].map((app) => this.describe(app)) };
      case 'handover':
        if (!(this.options.features ?? GATE_FEATURES).includes('handover')) break;
        return this.handOver(request);
      case 'open':
        return { gate: await this.open(request) };
      case 'stats':
        return { stats: this.stats(request.app, request.reset ?? false) };
      case 'retain':
        for (const app of [...this.gates.keys()].filter((a) => !request.apps.includes(a))) await this.closeGate(app);
        return {};
      case 'shutdown':
        // Answered first; the gates close once the reply is out.
        setImmediate(() => void this.shutdown('asked by the agent'));
        return {};
      case 'close':
        await this.closeGate(request.app);
        return {};
    }
    if (!('app' in request)) throw new Error(`unknown op ${request.op}`);
    const hosted = this.hosted(request.app);
    const { gate } = hosted;
    switch (request.op) {
      case 'quiesce':
        gate.quiesce();
        this.watchHeld(request.app, hosted);
        break;
      case 'release':
        clearInterval(hosted.heldWatch);
        hosted.heldWatch = undefined;
        gate.release();
        break;
      case 'listen':
        await gate.listen();
        break;
      case 'unlisten':
        await gate.unlisten();
        break;
      case 'setTarget':
        gate.setTarget(request.port);
        break;
      case 'idle': {
        const idle = await gate.idle(request.port, request.timeoutMs);
        return { idle, inFlightOn: gate.inFlightOn(request.port), gate: this.describe(request.app) };
      }
      case 'setHealthPath':
        gate.setHealthPath(request.path);
        break;
      case 'setHoldMs':
        gate.setHoldMs(request.ms);
        break;
      case 'setAppExpected':
        hosted.appExpected = request.expected;
        break;
    }
    return { gate: this.describe(request.app) };
  }

  /** Opens a gate, or hands over the one an earlier agent run opened (its state kept, its target and settings updated). */
  private async open(spec: GateSpec): Promise<GateState> {
    const known = this.gates.get(spec.app);
    if (known && (spec.port === 0 || spec.port === known.gate.port || !known.gate.listening)) {
      known.appExpected = spec.appExpected;
      known.gate.setTarget(spec.targetPort);
      known.gate.setHealthPath(spec.healthPath);
      known.gate.setHoldMs(spec.holdMs);
      return { ...this.describe(spec.app), adopted: true };
    }
    // Another service port than the agent asked for before: that gate goes, a new one takes the new port.
    if (known) await this.closeGate(spec.app);
    const gate = this.create(spec);
    if (spec.listen) {
      await gate.listen().catch(async (err: Error) => {
        await this.closeGate(spec.app);
        throw err;
      });
    }
    return { ...this.describe(spec.app), adopted: false };
  }

  /** A gate as an older gate host passed it (not accepting yet: the successor listens on the socket at the commit). */
  takeGate(spec: GateSpec, history: HoldHistory): void {
    if (this.gates.has(spec.app)) throw new Error(`gate of app ${spec.app} handed over twice`);
    this.create(spec).holdStats.resume(history);
  }

  gateOf(app: string): TrafficGate {
    return this.hosted(app).gate;
  }

  private create(spec: GateSpec): TrafficGate {
    const hosted: HostedGate = { appExpected: spec.appExpected, gate: undefined as unknown as TrafficGate };
    const gate = new TrafficGate({
      app: spec.app,
      host: spec.host,
      port: spec.port,
      targetPort: spec.targetPort,
      healthPath: spec.healthPath,
      queueLimit: spec.queueLimit,
      holdMs: spec.holdMs,
      isAppExpected: () => hosted.appExpected,
      logger: this.logger,
    });
    hosted.gate = gate;
    if (spec.quiesced) {
      gate.quiesce();
      this.watchHeld(spec.app, hosted);
    }
    this.gates.set(spec.app, hosted);
    gate.on('inflight', (count: number) => {
      if (gate.quiesced) this.broadcast({ event: 'inflight', app: spec.app, count, held: gate.held });
    });
    gate.on('released', () => this.broadcast({ event: 'released', app: spec.app }));
    return gate;
  }

  /** Hands every gate to a successor of the agent's version; answered once it serves gate.sock, then this host exits. */
  private async handOver(request: HandoverRequest): Promise<Partial<GateReply>> {
    if (this.handingOver) throw new Error('a hand-over is under way');
    this.handingOver = true;
    const gates = [...this.gates.keys()].map((app) => ({ spec: this.specOf(app), gate: this.gateOf(app) }));
    const releaseControl = (): void => {
      if (!this.ownsControl) return;
      this.ownsControl = false;
      // Its clients (the agent asking) stay connected for the answer; closing the server removes the socket file.
      this.server.close();
    };
    try {
      const done = await handOver({ dataDir: this.dataDir, logger: this.logger, gates, releaseControl }, request);
      // After the answer is out: the successor on its own first, then what is left here closes.
      setImmediate(() => {
        done.detach();
        void done.linger().then(() => this.shutdown(`handed over to gate host ${done.pid}`));
      });
      return { pid: done.pid, handover: done.figures };
    } catch (err) {
      this.logger.error({ err: (err as Error).message }, 'hand-over failed');
      if (err instanceof HandoverError && err.committed) setImmediate(() => void this.shutdown('hand-over failed after the new gate host took the ports'));
      else this.handingOver = false;
      throw err;
    }
  }

  /** A gate's spec as it stands, for a successor to open it so. */
  private specOf(app: string): GateSpec {
    const { gate, appExpected } = this.hosted(app);
    return { app, ...gate.settings, port: gate.port, targetPort: gate.targetPort, holdMs: gate.holdMs, quiesced: gate.quiesced, appExpected, listen: gate.listening };
  }

  private watchHeld(app: string, hosted: HostedGate): void {
    if (hosted.heldWatch) return;
    let told = hosted.gate.held;
    hosted.heldWatch = setInterval(() => {
      const { gate } = hosted;
      if (!gate.quiesced) {
        clearInterval(hosted.heldWatch);
        hosted.heldWatch = undefined;
      } else if (gate.held !== told) {
        told = gate.held;
        this.broadcast({ event: 'inflight', app, count: gate.inFlight, held: told });
      }
    }, HELD_WATCH_MS);
  }

  private async closeGate(app: string): Promise<void> {
    const hosted = this.gates.get(app);
    if (!hosted) return;
    this.gates.delete(app);
    clearInterval(hosted.heldWatch);
    await hosted.gate.close();
  }

  private hosted(app: string): HostedGate {
    const hosted = this.gates.get(app);
    if (!hosted) throw new Error(`no gate open for app ${app}`);
    return hosted;
  }

  private describe(app: string): GateState {
    const { gate } = this.hosted(app);
    return { app, port: gate.port, targetPort: gate.targetPort, listening: gate.listening, quiesced: gate.quiesced, inFlight: gate.inFlight, held: gate.held, holdMs: gate.holdMs };
  }

  private stats(app: string | undefined, reset: boolean): Record<string, HoldFigures> {
    const apps = app ? [app] : [...this.gates.keys()];
    return Object.fromEntries(apps.map((a) => [a, this.hosted(a).gate.stats(reset)]));
  }

  private broadcast(event: GateEvent): void {
    const line = `${JSON.stringify(event)}\n`;
    for (const client of this.clients) if (!client.destroyed) client.write(line);
  }
}
