// The agent's connection to its gate host on DATA_DIR/gate.sock: adopts a live one, has one of another version hand
// over to a new one, else spawns one (detached).
//
//   connect ──answers, same protocol──▶ adopted ─────────────────────────┐
//      │ answers, other protocol (an agent upgrade)                       │
//      ├──▶ handover: it starts a gate host of ours and passes it ────────┤
//      │    every socket (gate-handover.ts); connect to the new one       ├──▶ linked (requests by id, events)
//      │      └ refused (a host older than the op) or failed:             │      ──socket lost──▶ reconnect/spawn,
//      │        told to shut down (its ports refuse until ours binds) ─┐  │        gates reopened
//      └──▶ no answer ─────────────────────────────────────────────────┴─▶ spawn
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, openSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GATE_HOST_MODE, selfCommand } from '../common/artifact.js';
import type { Logger } from '../common/logger.js';
import { GATE_PROTOCOL, gateSocketPath, type GateEvent, type GateReply, type GateRequest } from './gate-protocol.js';

const CONNECT_TIMEOUT_MS = 1000;
const SPAWN_DEADLINE_MS = 10_000;
const REQUEST_TIMEOUT_MS = 10_000;
/** How long requests in flight on an old gate host may take before it hands gate.sock over (and cuts what is left). */
const HANDOVER_DRAIN_MS = 30_000;
/** A hand-over's answer comes within its drain time plus this (start of the new host, each of its steps). */
const HANDOVER_STEPS_MS = 30_000;

/** A request the gate host refused or did not answer. */
export class GateHostError extends Error {
  override name = 'GateHostError';
}

/** Emits every GateEvent as 'event', and 'lost' when the socket closed without close() being called. */
export class GateLink extends EventEmitter {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: GateReply) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private closed = false;

  private constructor(
    private readonly socket: net.Socket,
    /** True when this link found a gate host already running (an earlier agent run's). */
    readonly adopted: boolean,
    readonly hostPid: number,
  ) {
    super();
  }

  /**
   * Connects to the data dir's gate host: adopts one that speaks our protocol, has one of another version hand over
   * to one of ours, and spawns one when none answers (or the hand-over could not be done).
   */
  static async open(dataDir: string, logger: Logger): Promise<GateLink> {
    const path = gateSocketPath(dataDir);
    const found = await GateLink.tryConnect(path);
    if (found) {
      const hello = await found.request({ op: 'hello' }).catch(() => undefined);
      if (hello?.protocol === GATE_PROTOCOL) {
        logger.info({ pid: hello.pid, gates: hello.gates?.map((g) => `${g.app}:${g.port}${g.quiesced ? ' (quiesced)' : ''}`) }, 'adopting the running gate host');
        return new GateLink(found.socket, true, hello.pid ?? 0).attach();
      }
      const successor = await GateLink.handOver(found, hello, dataDir, logger);
      if (successor) return successor;
      await GateLink.retire(path);
    }
    const pid = spawnGateHost(dataDir, logger);
    const link = await waitUntil(() => GateLink.tryConnect(path), SPAWN_DEADLINE_MS).catch(() => undefined);
    if (!link) throw new GateHostError(`the gate host did not start (see ${join(dataDir, 'gate-host.log')})`);
    logger.info({ pid }, 'gate host started');
    return new GateLink(link.socket, false, pid).attach();
  }

  /**
   * An agent upgrade: the old host starts a gate host of ours and passes it every socket, then exits; this links to
   * the new one. Undefined when that could not be done (a host older than the op refuses it): the caller replaces it.
   */
  private static async handOver(old: GateLink, hello: GateReply | undefined, dataDir: string, logger: Logger): Promise<GateLink | undefined> {
    const path = gateSocketPath(dataDir);
    const theirs = { pid: hello?.pid, theirs: hello?.protocol, ours: GATE_PROTOCOL };
    const fallback = 'replacing it: its ports refuse connections until the new one binds them';
    if (!hello?.features?.includes('handover')) {
      old.close();
      logger.warn(theirs, hello ? `gate host of another version predates the socket hand-over; ${fallback}` : `gate host does not answer hello; ${fallback}`);
      return undefined;
    }
    logger.info(theirs, 'gate host of another version: it hands its sockets over to a new one');
    try {
      const { execPath, args } = gateHostCommand();
      // `entry` alone is what a host older than `args` runs (with DATA_DIR after it).
      const reply = await old.request({ op: 'handover', entry: args[0]!, args, execPath, env: { ...process.env }, drainMs: HANDOVER_DRAIN_MS });
      old.close();
      const link = await waitUntil(() => GateLink.tryConnect(path), SPAWN_DEADLINE_MS);
      const ours = await link.request({ op: 'hello' }).catch((err: Error) => (link.close(), Promise.reject(err)));
      if (ours.protocol !== GATE_PROTOCOL) {
        link.close();
        throw new GateHostError(`the new gate host speaks ${ours.protocol}`);
      }
      logger.info({ from: hello?.pid, to: ours.pid, ...reply.handover }, 'gate host handed its sockets over');
      return new GateLink(link.socket, true, ours.pid ?? 0).attach();
    } catch (err) {
      old.close();
      logger.warn({ ...theirs, err: (err as Error).message }, `socket hand-over failed; ${fallback}`);
      return undefined;
    }
  }

  /** Tells whatever answers on `path` to shut down, and waits until nobody does. */
  private static async retire(path: string): Promise<void> {
    const link = await GateLink.tryConnect(path);
    if (link) {
      await link.request({ op: 'shutdown' }).catch(() => undefined);
      link.close();
    }
    await waitUntil(() => !existsSync(path) || GateLink.tryConnect(path).then((l) => (l?.close(), !l)), SPAWN_DEADLINE_MS);
  }

  /** Connects to a gate host socket without spawning one; undefined when nobody answers. */
  static connect(path: string): Promise<GateLink | undefined> {
    return GateLink.tryConnect(path);
  }

  private static tryConnect(path: string): Promise<GateLink | undefined> {
    if (!existsSync(path)) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const socket = net.connect(path);
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(undefined);
      }, CONNECT_TIMEOUT_MS);
      socket.once('connect', () => {
        clearTimeout(timer);
        resolve(new GateLink(socket, false, 0).attach());
      });
      socket.once('error', () => {
        clearTimeout(timer);
        resolve(undefined);
      });
    });
  }

  private attach(): this {
    this.socket.removeAllListeners('data');
    this.socket.setEncoding('utf8');
    let buffer = '';
    this.socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (line.trim()) this.onLine(line);
      }
    });
    this.socket.on('error', () => {});
    this.socket.once('close', () => {
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new GateHostError('the gate host connection closed'));
      }
      this.pending.clear();
      if (!this.closed) this.emit('lost');
    });
    return this;
  }

  /** Sends one request; rejects with GateHostError when refused, unanswered or the link drops. */
  request(request: GateRequest): Promise<GateReply> {
    const id = this.nextId++;
    // An idle request waits as long as it was told to, a hand-over for requests in flight; others are answered at once.
    const timeoutMs = REQUEST_TIMEOUT_MS + (request.op === 'idle' ? request.timeoutMs : request.op === 'handover' ? request.drainMs + HANDOVER_STEPS_MS : 0);
    return new Promise((resolve, reject) => {
      if (this.socket.destroyed) return reject(new GateHostError('the gate host connection is closed'));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new GateHostError(`the gate host did not answer ${request.op} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (reply) => (reply.ok ? resolve(reply) : reject(new GateHostError(`gate host refused ${request.op}: ${reply.error}`))),
        reject,
        timer,
      });
      this.socket.write(`${JSON.stringify({ id, ...request })}\n`);
    });
  }

  /** Asks the gate host to close its gates and exit; resolves once it hung up (or after `timeoutMs`). */
  async shutdownHost(timeoutMs = 5000): Promise<void> {
    this.closed = true;
    const hungUp = new Promise<void>((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
    });
    await this.request({ op: 'shutdown' }).catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([hungUp, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
    this.socket.destroy();
  }

  /** Leaves the gate host running (it is the data path). */
  close(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private onLine(line: string): void {
    let message: GateReply | GateEvent;
    try {
      message = JSON.parse(line) as GateReply | GateEvent;
    } catch {
      return;
    }
    if ('event' in message) return void this.emit('event', message);
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    pending.resolve(message);
  }
}

/** Starts the gate host for DATA_DIR (gateHostCommand) in its own session: not the agent's child in any way that kills it with the agent. */
function spawnGateHost(dataDir: string, logger: Logger): number {
  // Never made here: a data dir removed under a still-running agent (an uninstall) must not come back with a gate host.
  if (!existsSync(dataDir)) throw new GateHostError(`the data dir ${dataDir} is gone; no gate host started`);
  const log = openSync(join(dataDir, 'gate-host.log'), 'a');
  try {
    const { execPath, args } = gateHostCommand();
    const child = spawn(execPath, [...args, dataDir], { detached: true, stdio: ['ignore', log, log], env: { ...process.env } });
    child.on('error', (err) => logger.error({ err: err.message }, 'could not start the gate host'));
    child.unref();
    return child.pid ?? 0;
  } finally {
    closeSync(log);
  }
}

/**
 * The program and arguments that run a gate host, before DATA_DIR: a bundle or single executable runs itself in its
 * hidden mode; under dist/ node runs gate-host-main.js.
 */
export function gateHostCommand(): { execPath: string; args: string[] } {
  const self = selfCommand();
  if (self) return { execPath: self.execPath, args: [...self.args, GATE_HOST_MODE] };
  return { execPath: process.execPath, args: [gateHostEntry()] };
}

/** The compiled entry point: beside this file in dist/, or dist/agent/ when the agent runs from source (tests). */
function gateHostEntry(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const sibling = join(here, 'gate-host-main.js');
  if (existsSync(sibling)) return sibling;
  const built = join(here, '..', 'dist', 'agent', 'gate-host-main.js');
  if (existsSync(built)) return built;
  throw new GateHostError(`no gate host program at ${sibling} or ${built}: build first (tsc -p tsconfig.json)`);
}

async function waitUntil<T>(check: () => T | undefined | false | Promise<T | undefined | false>, deadlineMs: number): Promise<T> {
  const deadline = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new GateHostError('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}
