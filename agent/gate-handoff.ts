// A gate's side of a hand-over to a successor gate host: which client connections sit between two requests, so each
// is passed on at a moment no request is on it (the client never sees a close), and held requests relayed to it.
//
//   connection ──request──▶ busy ──response closed, request read to its end──▶ idle ──handOff──▶ paused, offered
//   offered ──take(): still idle──▶ passed on (gone from here)      ──take(): bytes came meanwhile──▶ resumed, busy
//   relaying: its request was relayed to the successor (answered with Connection: close): never offered, it closes
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { forwardRequest, sendError } from './gate-proxy.js';

const ACTIVE = Symbol('requests on this connection');
const IDLE_AT = Symbol('bytes read when its last request ended');
const OFFERED = Symbol('offered to the successor');
const RELAYING = Symbol('carrying a request relayed to the successor');
const HANDOFF = Symbol('the GateHandoff tracking it');

interface Tracked extends Socket {
  [ACTIVE]?: number;
  /** bytesRead at the end of the last request; more read since means a next request has begun. -1: body unread. */
  [IDLE_AT]?: number;
  [OFFERED]?: boolean;
  [RELAYING]?: boolean;
  [HANDOFF]?: GateHandoff;
}

/** When a request relayed by a predecessor gate began waiting there (epoch ms): its hold limit counts from then. */
const HELD_SINCE = 'x-fleetwave-held-since';

/** Receives an idle connection, already paused; `take()` (synchronous, right before passing it) says if it still is. */
export type PassConnection = (socket: Socket, take: () => boolean) => void;

/** The gate of the gate host taking over, as the one handing over sees it. */
export interface GateSuccessor {
  /** Where the successor's gate answers (held requests are relayed there). */
  host: string;
  port: number;
  /** Takes each idle client connection. */
  pass: PassConnection;
}

export class GateHandoff {
  private readonly open = new Set<Tracked>();
  private relays = 0;
  private successor: (GateSuccessor & { agent: http.Agent }) | undefined;
  private readonly waiters: { relays: boolean; resolve: () => void }[] = [];
  /** Held requests relayed to the successor. */
  relayed = 0;

  constructor(server: Server) {
    server.on('connection', (socket: Tracked) => {
      socket[HANDOFF] = this;
      this.open.add(socket);
      socket.once('close', () => this.forget(socket));
    });
  }

  /** Whether the gate handed over: its held requests go to the successor. */
  get active(): boolean {
    return this.successor !== undefined;
  }

  /** Connections still here (upgraded ones are counted by the gate apart). */
  get size(): number {
    return this.open.size;
  }

  /** Counts one request on its connection until its response closed (the hot path: a count and a shared listener). */
  request(req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as Tracked;
    socket[ACTIVE] = (socket[ACTIVE] ?? 0) + 1;
    res.on('close', onResponseClose);
  }

  /**
   * Sends a held request on to the successor's gate, which holds it (quiesced as this one was) from its first
   * arrival; its connection closes after the answer (the client's next request goes to the successor) and is never
   * passed on.
   */
  relay(req: IncomingMessage, res: ServerResponse, since: number): void {
    const { host, port, agent } = this.successor!;
    this.relayed++;
    const socket = req.socket as Tracked;
    if (!socket[RELAYING] && this.open.has(socket)) {
      socket[RELAYING] = true;
      this.relays++;
      this.check();
    }
    res.setHeader('connection', 'close');
    req.rawHeaders.push(HELD_SINCE, String(since));
    forwardRequest(agent, port, req, res, (outcome) => {
      if (outcome === 'refused') sendError(res, 503, 'the gate host taking over is gone', { 'retry-after': '1' });
    }, false, host);
  }

  /** An upgraded connection (websocket) leaves HTTP: it is a tunnel now, never passed on. */
  upgraded(socket: Socket): void {
    this.forget(socket);
  }

  /** From now on every idle connection is paused and offered to the successor: those idle now, and each as it goes idle. */
  start(successor: GateSuccessor): void {
    this.successor = { ...successor, agent: new http.Agent() };
    for (const socket of this.open) if (this.idle(socket)) this.offer(socket);
  }

  close(): void {
    this.successor?.agent.destroy();
  }

  /** Resolves once no connection is left here (passed on or closed); `relays: false` leaves relaying ones out. */
  whenEmpty(relays: boolean): Promise<void> {
    return new Promise((resolve) => {
      this.waiters.push({ relays, resolve });
      this.check();
    });
  }

  /** @internal The response to `req` closed (see onResponseClose). */
  ended(req: IncomingMessage, socket: Tracked): void {
    socket[ACTIVE] = (socket[ACTIVE] ?? 1) - 1;
    if (socket[ACTIVE] > 0) return;
    if (!req.complete) {
      // Answered before its body was read (a 503 to a POST): node reads the rest first, then the connection is idle.
      socket[IDLE_AT] = -1;
      req.once('end', () => {
        if (socket[ACTIVE] !== 0) return;
        socket[IDLE_AT] = socket.bytesRead;
        this.settle(socket);
      });
      return;
    }
    socket[IDLE_AT] = socket.bytesRead;
    this.settle(socket);
  }

  private settle(socket: Tracked): void {
    if (this.successor && this.idle(socket)) this.offer(socket);
  }

  private idle(socket: Tracked): boolean {
    // Bytes read since the last request ended are the start of the next one, which the parser here holds.
    return !socket.destroyed && !socket[OFFERED] && !socket[RELAYING] && (socket[ACTIVE] ?? 0) === 0 && socket.bytesRead === (socket[IDLE_AT] ?? 0);
  }

  private offer(socket: Tracked): void {
    socket[OFFERED] = true;
    // Stops reading (the HTTP server's pause handler stops the handle): no byte of a next request is read here now.
    socket.pause();
    this.successor!.pass(socket, () => this.take(socket));
  }

  private take(socket: Tracked): boolean {
    socket[OFFERED] = false;
    if (!this.idle(socket)) {
      if (!socket.destroyed) socket.resume();
      return false;
    }
    this.forget(socket);
    return true;
  }

  private forget(socket: Tracked): void {
    if (!this.open.delete(socket)) return;
    if (socket[RELAYING]) this.relays--;
    this.check();
  }

  private check(): void {
    for (const waiter of [...this.waiters]) {
      if (this.open.size - (waiter.relays ? 0 : this.relays) > 0) continue;
      this.waiters.splice(this.waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }
}

/** A relayed request's first arrival, never before its hold limit (the header comes from the client's side too). */
export function relayedSince(req: IncomingMessage, since: number, holdMs: number): number {
  if (!req.rawHeaders.includes(HELD_SINCE)) return since;
  const told = Number(req.headers[HELD_SINCE]);
  return Number.isFinite(told) && told < since ? Math.max(told, since - holdMs) : since;
}

function onResponseClose(this: ServerResponse): void {
  const socket = this.req.socket as Tracked;
  socket[HANDOFF]?.ended(this.req, socket);
}
