// The line-delimited JSON spoken on DATA_DIR/gate.sock between the agent and its gate host.
//
//   agent ──{"id":1,"op":"open",...}\n──▶ gate host        one request per line, answered by id:
//   agent ◀──{"id":1,"ok":true,"gate":{...}}\n── gate host  {"id", "ok", "error"?, "gate"?, "gates"?, "stats"?}
//   agent ◀──{"event":"inflight","app":"shop","count":3}\n── events carry no id
//   An agent of another version has the host hand over to a new one (op handover); agent/gate-handover.ts tells how.
import { join } from 'node:path';
import type { GateOptions } from './gate.js';
import type { HoldFigures } from './hold-stats.js';
import { AGENT_VERSION } from './version.js';

/**
 * Bumped when the protocol changes; an agent adopts only a gate host that speaks its own, and has any other hand its
 * sockets over to a new one. FLEETWAVE_GATE_PROTOCOL_SUFFIX is for tests: an agent that looks like another version.
 */
export const GATE_PROTOCOL = `1/${AGENT_VERSION}${process.env.FLEETWAVE_GATE_PROTOCOL_SUFFIX ?? ''}`;

/** What a gate host can do beyond the ops every version knew, listed in its hello (a host without the list: none). */
export type GateFeature = 'handover';
export const GATE_FEATURES: GateFeature[] = ['handover'];

export function gateSocketPath(dataDir: string): string {
  return join(dataDir, 'gate.sock');
}

/** What the agent sets when it opens a gate: the gate's own options, as plain values. */
export interface GateSpec extends Omit<GateOptions, 'isAppExpected' | 'logger'> {
  /** Open quiesced (a gate that exists already keeps its own state). */
  quiesced: boolean;
  /** Whether an app process is meant to run (requests wait for it rather than failing at once). */
  appExpected: boolean;
  /** Bind the service port now (false: an app that drains itself owns it). */
  listen: boolean;
}

/** A gate as the gate host reports it. */
export interface GateState {
  app: string;
  port: number;
  targetPort: number;
  listening: boolean;
  quiesced: boolean;
  inFlight: number;
  /** Requests waiting in the hold queue. */
  held: number;
  holdMs: number;
  /** True when the gate was open before this request: an earlier agent run opened it. */
  adopted?: boolean;
}

export type GateRequest =
  | { op: 'hello' }
  | ({ op: 'open' } & GateSpec)
  | { op: 'quiesce' | 'release' | 'listen' | 'unlisten' | 'close'; app: string }
  | { op: 'setTarget'; app: string; port: number }
  /** Answers once no request is in flight on `port` (idle: true) or after `timeoutMs` (idle: false). */
  | { op: 'idle'; app: string; port: number; timeoutMs: number }
  | { op: 'setHealthPath'; app: string; path: string }
  | { op: 'setHoldMs'; app: string; ms: number }
  | { op: 'setAppExpected'; app: string; expected: boolean }
  | { op: 'stats'; app?: string; reset?: boolean }
  /** Closes every gate whose app is not listed (an instance the agent no longer serves). */
  | { op: 'retain'; apps: string[] }
  /** Closes every gate and exits. */
  | { op: 'shutdown' }
  | HandoverRequest;

/**
 * Asks the gate host to hand over to a successor (the agent's own version) instead of closing its ports: it starts
 * `execPath ...args DATA_DIR` with `env` and an IPC channel, passes it every gate with its listening socket and state,
 * and once the successor accepts, every client connection between two requests; held requests follow. Answered
 * (reply pid: the successor's) once the successor serves gate.sock, within `drainMs` of in-flight requests; then this
 * host exits. A host older than the op answers an error: the agent falls back to shutdown and spawn.
 */
export interface HandoverRequest {
  op: 'handover';
  /** The first of `args`: all a host older than `args` runs, as `execPath entry DATA_DIR`. */
  entry: string;
  /** What runs the successor before DATA_DIR: gate-host-main.js, or a bundle's file and its hidden mode. */
  args?: string[];
  execPath: string;
  env: Record<string, string | undefined>;
  /** How long requests in flight on the old host may take before it gives its gate.sock up (and cuts what is left). */
  drainMs: number;
}

/** What a hand-over moved, as the old host answers it. */
export interface HandoverFigures {
  gates: number;
  /** Client connections passed to the successor between requests. */
  connections: number;
  /** Held requests sent on to the successor's gate (they stay held there). */
  relayed: number;
  /**
   * Connections still open on the old host when it gave gate.sock up (relayed requests, requests in flight past
   * `drainMs`, websockets): it waits for them at most the longest hold limit, then closes the rest as it exits.
   */
  left: number;
  ms: number;
}

export interface GateReply {
  id: number;
  ok: boolean;
  error?: string;
  protocol?: string;
  /** hello: what this host can do beyond the base ops. */
  features?: GateFeature[];
  /** hello: this host's pid; handover: the successor's. */
  pid?: number;
  handover?: HandoverFigures;
  gate?: GateState;
  gates?: GateState[];
  stats?: Record<string, HoldFigures>;
  /** op idle: whether the port went idle in time, and what is still in flight on it. */
  idle?: boolean;
  inFlightOn?: number;
}

/**
 * 'inflight' is sent only while the gate is quiesced (a drain watches it; open gates would flood the socket): on every
 * change of the in-flight count, and within 100 ms of a change of the held count.
 */
export type GateEvent = { event: 'inflight'; app: string; count: number; held: number } | { event: 'released'; app: string };
