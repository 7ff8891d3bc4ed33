// The drain-aware traffic gate on an instance's service port: counts requests in flight, holds new ones while quiesced.
//
//   open ──quiesce()──▶ quiesced ──release()──▶ open
//   open:     requests forwarded to the app's internal port (held briefly if the app is restarting after a crash)
//   quiesced: health path answers 503, new requests wait in a bounded FIFO until release() or the hold limit
//             (AppSpec hold_ms, else --gate-hold, 1.5 s by default: below common 2 s client timeouts)
//
//   setTarget(new port) (start-first): new requests go to the new port at once; those in flight on the old one
//   finish there, counted per port (idle(old) resolves at 0), and the old port's connection pool closes then.
//
//   hand-over (agent upgrade, agent/gate-handover.ts): a successor gate accepts on the same listening socket
//   (listenOn), this one stops accepting (handOff), passes each client connection on between two requests and
//   relays its held requests to the successor, where they stay held.
import { EventEmitter } from 'node:events';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';
import type { Logger } from '../common/logger.js';
import { GateHandoff, relayedSince, type GateSuccessor } from './gate-handoff.js';
import { forwardRequest, forwardUpgrade, sendError } from './gate-proxy.js';
import { HoldStats, type HoldFigures } from './hold-stats.js';

export interface GateOptions {
  app: string;
  host: string;
  /** Service port (0: any free port; see `port` after listen()). */
  port: number;
  /** The app's internal port on 127.0.0.1 (setTarget() moves it). */
  targetPort: number;
  /** Path the load balancer probes; answered 503 while quiesced. */
  healthPath: string;
  queueLimit: number;
  holdMs: number;
  /** False when no app process is meant to run (never started, or stopped): requests fail at once instead of waiting. */
  isAppExpected: () => boolean;
  logger: Logger;
}

interface HeldRequest {
  req: IncomingMessage;
  res: ServerResponse;
  /** When the gate first received it; the hold time counts from here across retries. */
  since: number;
  timer: NodeJS.Timeout;
}

const PROBE_INTERVAL_MS = 100;

/** Emits 'inflight' (count) whenever the number of requests in flight changes, and 'released' on release(). */
export class TrafficGate extends EventEmitter {
  private readonly server: http.Server;
  private agent = this.newUpstreamAgent();
  private readonly queue: HeldRequest[] = [];
  private quiescedFlag = false;
  private inFlightCount = 0;
  /** Where requests go now; starts at options.targetPort. */
  private target: number;
  /** Requests in flight by the internal port they went to (a port with none has no entry). */
  private readonly inFlightByPort = new Map<number, number>();
  private probeTimer: NodeJS.Timeout | undefined;
  private healthPath: string;
  private boundPort = 0;
  /** Upgraded sockets leave the HTTP server's bookkeeping; close() must end them itself. */
  private readonly upgraded = new Set<Socket>();
  /** How long held requests waited, and how many were answered 503 after waiting (a successor goes on from them). */
  readonly holdStats = new HoldStats();
  /** Client connections, passed on to a successor gate host at a hand-over (relayed: its held requests sent there). */
  readonly handoff: GateHandoff;

  constructor(private readonly options: GateOptions) {
    super();
    this.healthPath = options.healthPath;
    this.target = options.targetPort;
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
    this.handoff = new GateHandoff(this.server);
    // The port to take when listen() comes (a gate handed over unlistened reports the port it gave up).
    this.boundPort = options.port;
    // Longer than common load balancers' idle timeouts, so the gate is not the one closing reused connections.
    this.server.keepAliveTimeout = 65_000;
    this.server.headersTimeout = 66_000;
  }

  get listening(): boolean {
    return this.server.listening;
  }

  /**
   * Gives the service port up for an app that drains itself (AppSpec drain_mode "self"); listen() takes it back.
   * Held requests get 503 with Retry-After, open connections are closed.
   */
  async unlisten(): Promise<void> {
    if (!this.server.listening) return;
    this.options.logger.info({ app: this.options.app, port: this.boundPort }, 'gate steps aside: the app drains itself');
    this.quiescedFlag = false;
    await this.close();
    this.agent = this.newUpstreamAgent();
  }

  async listen(): Promise<number> {
    // After unlisten(), the same port again (a port 0 choice included): it is what the load balancer targets.
    return this.bind((done) => this.server.listen(this.boundPort || this.options.port, this.options.host, done));
  }

  /** Accepts on a listening socket a predecessor gate host passed over (its native handle; see listeningHandle()). */
  listenOn(handle: object): Promise<number> {
    return this.bind((done) => this.server.listen(handle, done));
  }

  private async bind(listen: (done: () => void) => void): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      listen(() => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.boundPort = (this.server.address() as net.AddressInfo).port;
    return this.boundPort;
  }

  /**
   * The listening socket's native handle, for a successor gate host. Sent as is (not as a server) so the successor
   * holds the socket without accepting on it until it commits: a failed hand-over then loses no connection.
   */
  listeningHandle(): object | undefined {
    return this.server.listening ? (this.server as unknown as { _handle: object })._handle : undefined;
  }

  /** A client connection a predecessor gate host passed over between two requests: served here from its next one. */
  adoptConnection(socket: Socket): void {
    this.server.emit('connection', socket);
  }

  /**
   * Hands over to a successor that accepts on the same listening socket now: stops accepting (the socket stays open
   * in the successor), relays held requests to it, and passes every client connection to it between two requests.
   * Requests in flight finish here; `handoff` tells when the connections are gone.
   */
  handOff(successor: GateSuccessor): void {
    // Not http's close(): that would also close idle keep-alive connections, and a client racing that close fails.
    net.Server.prototype.close.call(this.server);
    this.handoff.start(successor);
    for (const held of this.queue.splice(0)) {
      clearTimeout(held.timer);
      if (!held.res.destroyed) this.handoff.relay(held.req, held.res, held.since);
    }
  }

  /** After handOff(): client connections and websockets still open here. */
  get connectionsLeft(): number {
    return this.handoff.size + this.upgraded.size;
  }

  /** The options a successor's gate needs beyond the live state. */
  get settings(): { host: string; healthPath: string; queueLimit: number } {
    return { host: this.options.host, healthPath: this.healthPath, queueLimit: this.options.queueLimit };
  }

  get port(): number {
    return this.boundPort;
  }

  get quiesced(): boolean {
    return this.quiescedFlag;
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  /** The internal port requests go to now. */
  get targetPort(): number {
    return this.target;
  }

  /** Requests (and open upgraded connections) in flight on one internal port. */
  inFlightOn(port: number): number {
    return this.inFlightByPort.get(port) ?? 0;
  }

  /**
   * Switches new requests to `port` in one step (start-first). Requests in flight on the old port finish there; its
   * upstream pool stops pooling, loses its idle sockets now and is destroyed once its last request ended.
   */
  setTarget(port: number): void {
    if (port === this.target) return;
    const oldPort = this.target;
    const oldAgent = this.agent;
    this.target = port;
    this.agent = this.newUpstreamAgent();
    this.options.logger.info({ app: this.options.app, from: oldPort, to: port, inFlightOld: this.inFlightOn(oldPort) }, 'gate switched target');
    oldAgent.on('free', (socket: Socket) => socket.destroy());
    destroyIdleSockets(oldAgent);
    void this.idle(oldPort, Infinity).then(() => oldAgent.destroy());
    // Requests held for a restarting app are better served by the new one.
    if (!this.quiescedFlag && this.queue.length > 0) this.flush();
  }

  /** Resolves true once no request is in flight on `port`, false when `timeoutMs` passes first. */
  idle(port: number, timeoutMs: number): Promise<boolean> {
    if (this.inFlightOn(port) === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = Number.isFinite(timeoutMs) ? setTimeout(() => done(false), timeoutMs) : undefined;
      const onChange = (): void => {
        if (this.inFlightOn(port) === 0) done(true);
      };
      const done = (idle: boolean): void => {
        clearTimeout(timer);
        this.off('inflight', onChange);
        resolve(idle);
      };
      this.on('inflight', onChange);
    });
  }

  /** Requests waiting in the hold queue. */
  get held(): number {
    return this.queue.length;
  }

  /** The app's own hold limit (AppSpec hold_ms); 0 keeps the agent's --gate-hold. Applies to requests held from now on. */
  setHoldMs(ms: number): void {
    if (ms > 0) this.options.holdMs = ms;
  }

  get holdMs(): number {
    return this.options.holdMs;
  }

  /** Held-time figures since the gate opened (or the last reset). */
  stats(reset = false): HoldFigures {
    const figures = this.holdStats.figures();
    if (reset) this.holdStats.reset();
    return figures;
  }

  setHealthPath(path: string): void {
    if (path) this.healthPath = path;
  }

  /** Stops forwarding new requests; the health path answers 503 from now on. Idempotent. */
  quiesce(): void {
    if (!this.quiescedFlag) this.options.logger.info({ app: this.options.app, inFlight: this.inFlightCount }, 'gate quiesced');
    this.quiescedFlag = true;
    // Idle keep-alive connections would keep the old process's server.close() waiting after its SIGTERM.
    destroyIdleSockets(this.agent);
  }

  /** Takes traffic again: held requests go to the (new) app in arrival order. Idempotent. */
  release(): void {
    if (this.quiescedFlag) this.options.logger.info({ app: this.options.app, held: this.queue.length }, 'gate released');
    this.quiescedFlag = false;
    // Sockets pooled to the previous process are dead or dying; start a fresh pool for the new one.
    const old = this.agent;
    this.agent = this.newUpstreamAgent();
    destroyIdleSockets(old);
    this.emit('released');
    this.flush();
  }

  async close(): Promise<void> {
    clearTimeout(this.probeTimer);
    for (const held of this.queue.splice(0)) {
      clearTimeout(held.timer);
      sendError(held.res, 503, 'agent is shutting down', { 'retry-after': '1' });
    }
    await new Promise<void>((resolve) => {
      // Handed off: the listening socket is closed here already, and the server's connection count, which passing
      // connections on upsets, is no guide.
      if (this.handoff.active) resolve();
      else this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const socket of this.upgraded) socket.destroy();
    });
    this.agent.destroy();
    this.handoff.close();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    this.handoff.request(req, res);
    if (this.quiescedFlag && this.isHealthPath(req.url)) {
      const body = '{"status":"quiesced"}';
      res.writeHead(503, { 'content-type': 'application/json', 'content-length': body.length, 'retry-after': '1' });
      return void res.end(body);
    }
    if (this.quiescedFlag) return this.hold(req, res, Date.now());
    this.forward(req, res, Date.now());
  }

  private forward(req: IncomingMessage, res: ServerResponse, since: number): void {
    const port = this.target;
    this.track(1, port);
    forwardRequest(this.agent, port, req, res, (outcome) => {
      this.track(-1, port);
      if (outcome !== 'refused') return;
      if (this.options.isAppExpected()) this.hold(req, res, since);
      else sendError(res, 503, `app ${this.options.app} is not running`, { 'retry-after': '1' });
    });
  }

  private hold(req: IncomingMessage, res: ServerResponse, since: number): void {
    if (this.handoff.active) return this.handoff.relay(req, res, since);
    since = relayedSince(req, since, this.options.holdMs);
    const remaining = since + this.options.holdMs - Date.now();
    if (this.queue.length >= this.options.queueLimit) return sendError(res, 503, 'gate queue is full', { 'retry-after': '1' });
    if (remaining <= 0) {
      this.holdStats.gaveUp(Date.now() - since);
      return sendError(res, 503, 'request held too long', { 'retry-after': '1' });
    }
    const held: HeldRequest = {
      req,
      res,
      since,
      timer: setTimeout(() => {
        if (!this.unqueue(held)) return;
        this.holdStats.gaveUp(Date.now() - since);
        sendError(res, 503, 'request held too long', { 'retry-after': '1' });
      }, remaining),
    };
    res.once('close', () => this.unqueue(held) && clearTimeout(held.timer));
    this.queue.push(held);
    if (!this.quiescedFlag) this.probe();
  }

  private unqueue(held: HeldRequest): boolean {
    const index = this.queue.indexOf(held);
    if (index < 0) return false;
    this.queue.splice(index, 1);
    return true;
  }

  /** Forwards every held request, oldest first. */
  private flush(): void {
    for (const held of this.queue.splice(0)) {
      clearTimeout(held.timer);
      if (held.res.destroyed) continue;
      this.holdStats.forwarded(Date.now() - held.since);
      this.forward(held.req, held.res, held.since);
    }
  }

  /** While requests wait for a restarting app, one TCP probe at a time finds the moment it listens again. */
  private probe(): void {
    if (this.probeTimer) return;
    this.probeTimer = setTimeout(() => {
      const socket = net.connect(this.target, '127.0.0.1');
      const next = (up: boolean): void => {
        socket.destroy();
        this.probeTimer = undefined;
        if (this.quiescedFlag || this.queue.length === 0) return;
        if (up || !this.options.isAppExpected()) this.flush();
        else this.probe();
      };
      socket.once('connect', () => next(true));
      socket.once('error', () => next(false));
    }, PROBE_INTERVAL_MS);
  }

  private newUpstreamAgent(): http.Agent {
    // Idle upstream sockets close after 4 s, before Node's default 5 s server keep-alive timeout closes them under us.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, timeout: 4000 });
    // While quiesced, a connection whose request finished is closed rather than pooled: the app is about to stop.
    agent.on('free', (socket: Socket) => {
      if (this.quiescedFlag) socket.destroy();
    });
    return agent;
  }

  private onUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    this.handoff.upgraded(socket);
    if (this.quiescedFlag) {
      socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    // Open websockets count as in flight: a drain waits for them until its interval ends.
    const port = this.target;
    this.track(1, port);
    this.upgraded.add(socket);
    forwardUpgrade(port, req, socket, head, () => {
      this.upgraded.delete(socket);
      this.track(-1, port);
    });
  }

  private track(delta: number, port: number): void {
    this.inFlightCount += delta;
    const onPort = this.inFlightOn(port) + delta;
    if (onPort > 0) this.inFlightByPort.set(port, onPort);
    else this.inFlightByPort.delete(port);
    this.emit('inflight', this.inFlightCount);
  }

  private isHealthPath(url: string | undefined): boolean {
    if (!url || !this.healthPath) return false;
    const q = url.indexOf('?');
    return (q < 0 ? url : url.slice(0, q)) === this.healthPath;
  }
}

function destroyIdleSockets(agent: http.Agent): void {
  for (const sockets of Object.values(agent.freeSockets)) sockets?.forEach((s) => s.destroy());
}
