// The old gate host's side of a hand-over (op handover, an agent upgrade): it starts its successor and passes it the
// data path over an IPC channel, so no connection on a service port is refused or cut.
//
//   old host                                              successor (gate-host-main.js with an IPC channel)
//   spawn (detached, own session) ─────────────────────▶ ready {protocol}
//   gate {spec, live state} + listening socket, each ──▶ opens the gate, holds the socket without accepting
//   commit ────────────────────────────────────────────▶ accepts on every socket ──▶ accepting
//   stops accepting; relays held requests (the successor holds them); passes each client connection between two
//   requests (one at a time); waits for requests in flight (at most drainMs); gives gate.sock up
//   control ───────────────────────────────────────────▶ serves gate.sock ──▶ serving
//   answers the agent {pid: successor}, hangs up the IPC channel; once the relayed requests are answered (at most
//   the longest hold limit) closes what is left, exits
//
// Until commit nothing changed for a client: a failure kills the successor and the old host goes on serving.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Logger } from '../common/logger.js';
import type { TrafficGate } from './gate.js';
import type { GateSpec, HandoverFigures, HandoverRequest } from './gate-protocol.js';
import type { HoldHistory } from './hold-stats.js';

/** Old host → successor. */
export type ToSuccessor =
  /** With the listening socket's native handle when spec.listen. */
  | { kind: 'gate'; spec: GateSpec; history: HoldHistory }
  | { kind: 'commit' }
  /** With the client socket, idle between two requests. */
  | { kind: 'connection'; app: string }
  | { kind: 'control' };

/** Successor → old host: one answer per message, in order. */
export type FromSuccessor =
  | { kind: 'ready'; protocol: string }
  | { kind: 'gate-opened'; app: string }
  | { kind: 'accepting' }
  | { kind: 'connection-taken' }
  | { kind: 'serving' }
  | { kind: 'failed'; error: string };

/** Each answer of the successor comes within this, or the hand-over fails. */
const STEP_TIMEOUT_MS = 10_000;
/** After the hand-over the old host waits for relayed requests' answers: at most the longest hold limit plus this. */
const LINGER_MARGIN_MS = 1000;

/** A hand-over that failed; `committed`: the successor already accepted, so the old host no longer does. */
export class HandoverError extends Error {
  override name = 'HandoverError';
  constructor(message: string, readonly committed: boolean, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** What the old host offers the hand-over. */
export interface HandoverSource {
  dataDir: string;
  logger: Logger;
  /** Every gate with the spec its successor opens it from (live state: port, target, quiesced, limits). */
  gates: { spec: GateSpec; gate: TrafficGate }[];
  /** Stops answering on gate.sock (the path goes with it) for the successor to bind it. Idempotent. */
  releaseControl(): void;
}

export interface HandedOver {
  pid: number;
  figures: HandoverFigures;
  /** Hangs up the IPC channel: the successor is on its own. */
  detach(): void;
  /** Resolves once what is still open here closed (relayed requests answered), or the longest hold limit passed. */
  linger(): Promise<void>;
}

/** Runs the whole hand-over; resolves once the successor serves gate.sock. */
export async function handOver(source: HandoverSource, request: HandoverRequest): Promise<HandedOver> {
  const started = Date.now();
  const successor = Successor.spawn(request, source.dataDir, source.logger);
  try {
    const ready = await successor.expect('ready');
    source.logger.info({ pid: successor.pid, protocol: ready.protocol }, 'handing over to a new gate host');
    for (const { spec, gate } of source.gates) {
      successor.send({ kind: 'gate', spec, history: gate.holdStats.history() }, gate.listeningHandle());
      await successor.expect('gate-opened');
    }
    successor.send({ kind: 'commit' });
    await successor.expect('accepting');
  } catch (err) {
    successor.kill();
    throw new HandoverError(`the new gate host did not take over: ${(err as Error).message}`, false, { cause: err });
  }
  try {
    const passer = new ConnectionPasser(successor, source.logger);
    const left = await passOn(source, passer, request.drainMs);
    source.releaseControl();
    successor.send({ kind: 'control' });
    await successor.expect('serving');
    const figures = { gates: source.gates.length, connections: passer.passed, relayed: sum(source.gates.map((g) => g.gate.handoff.relayed)), left, ms: Date.now() - started };
    source.logger.info({ pid: successor.pid, ...figures }, 'handed over to the new gate host');
    return { pid: successor.pid, figures, detach: () => successor.detach(), linger: () => linger(source) };
  } catch (err) {
    // The ports are the successor's now, and so is gate.sock: it serves it once this host hangs up.
    source.releaseControl();
    successor.detach();
    throw new HandoverError(`the hand-over failed after the new gate host took the ports: ${(err as Error).message}`, true, { cause: err });
  }
}

/** Stops every gate accepting here and passes its connections on; resolves with what is still open after `drainMs`. */
async function passOn(source: HandoverSource, passer: ConnectionPasser, drainMs: number): Promise<number> {
  for (const { spec, gate } of source.gates) {
    gate.handOff({ host: loopbackFor(spec.host), port: gate.port, pass: (socket, take) => passer.pass(spec.app, socket, take) });
  }
  // Relayed requests are not waited for here: they wait for an agent, which waits for this hand-over.
  await within(Promise.all(source.gates.map(({ gate }) => gate.handoff.whenEmpty(false))), drainMs);
  await passer.stop();
  return sum(source.gates.map(({ gate }) => gate.connectionsLeft));
}

async function linger(source: HandoverSource): Promise<void> {
  const limitMs = Math.max(0, ...source.gates.map(({ spec }) => spec.holdMs)) + LINGER_MARGIN_MS;
  await within(Promise.all(source.gates.map(({ gate }) => gate.handoff.whenEmpty(true))), limitMs);
  const cut = sum(source.gates.map(({ gate }) => gate.connectionsLeft));
  if (cut > 0) source.logger.warn({ cut }, 'requests or websockets still open on the old gate host: closed as it exits');
}

/** Resolves when `promise` does or `ms` passed, whichever comes first. */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** Passes idle client connections to the successor one at a time (the channel carries one handle until acked). */
class ConnectionPasser {
  passed = 0;
  private readonly queue: { app: string; socket: Socket; take: () => boolean }[] = [];
  private pumping: Promise<void> | undefined;
  private stopped = false;

  constructor(private readonly successor: Successor, private readonly logger: Logger) {}

  pass(app: string, socket: Socket, take: () => boolean): void {
    this.queue.push({ app, socket, take });
    this.pumping ??= this.pump().finally(() => (this.pumping = undefined));
  }

  /** Passes what is queued, then no more: a connection going idle later stays (its client may be mid-request). */
  async stop(): Promise<void> {
    await this.pumping;
    this.stopped = true;
    for (const { socket } of this.queue.splice(0)) socket.resume();
  }

  private async pump(): Promise<void> {
    for (let next = this.queue.shift(); next && !this.stopped; next = this.queue.shift()) {
      // Checked in the same tick as the send: no request can have begun on it in between (it is paused).
      if (!next.take()) continue;
      try {
        this.successor.send({ kind: 'connection', app: next.app }, next.socket);
        // The handle went with the message; this only frees the HTTP server's record of the connection here.
        next.socket.destroy();
        this.passed++;
        await this.successor.expect('connection-taken');
      } catch (err) {
        this.logger.error({ app: next.app, err: (err as Error).message }, 'could not pass a connection to the new gate host');
        next.socket.destroy();
      }
    }
  }
}

/** The successor process and its IPC channel: messages out, answers in order. */
class Successor {
  private readonly answers: FromSuccessor[] = [];
  private wake: (() => void) | undefined;
  private gone: string | undefined;

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (message: FromSuccessor) => {
      this.answers.push(message);
      this.wake?.();
    });
    child.once('exit', (code, signal) => this.lost(`it exited (${signal ?? code})`));
    child.once('disconnect', () => this.lost('it hung up'));
    child.once('error', (err) => this.lost(err.message));
  }

  /** `execPath ...args DATA_DIR` in its own session, as the agent starts a gate host, plus the IPC channel. */
  static spawn(request: HandoverRequest, dataDir: string, logger: Logger): Successor {
    const log = openSync(join(dataDir, 'gate-host.log'), 'a');
    try {
      const child = spawn(request.execPath, [...(request.args ?? [request.entry]), dataDir], { detached: true, stdio: ['ignore', log, log, 'ipc'], env: request.env });
      child.on('error', (err) => logger.error({ err: err.message }, 'could not start the new gate host'));
      return new Successor(child);
    } finally {
      closeSync(log);
    }
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  send(message: ToSuccessor, handle?: object): void {
    if (this.gone) throw new Error(`the new gate host is gone: ${this.gone}`);
    this.child.send(message, handle as Socket | undefined);
  }

  /** The next answer, which must be `kind`. */
  async expect<K extends FromSuccessor['kind']>(kind: K): Promise<Extract<FromSuccessor, { kind: K }>> {
    const deadline = Date.now() + STEP_TIMEOUT_MS;
    while (this.answers.length === 0) {
      if (this.gone) throw new Error(`the new gate host is gone: ${this.gone}`);
      if (Date.now() > deadline) throw new Error(`no ${kind} from the new gate host within ${STEP_TIMEOUT_MS} ms`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(0, deadline - Date.now()) + 1);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    const answer = this.answers.shift()!;
    if (answer.kind === 'failed') throw new Error(answer.error);
    if (answer.kind !== kind) throw new Error(`the new gate host answered ${answer.kind}, not ${kind}`);
    return answer as Extract<FromSuccessor, { kind: K }>;
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  detach(): void {
    if (this.child.connected) this.child.disconnect();
    this.child.unref();
  }

  private lost(why: string): void {
    this.gone ??= why;
    this.wake?.();
  }
}

/** Where this host reaches a gate that listens on `host` (every interface: its loopback). */
function loopbackFor(host: string): string {
  if (host === '' || host === '0.0.0.0') return '127.0.0.1';
  return host === '::' ? '::1' : host;
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}
