// The line-delimited JSON spoken on DATA_DIR/gate.sock between the agent and its gate host.
//
//   agent ──{"id":1,"op":"open",...}\n──▶ gate host        one request per line, answered by id:
//   agent ◀──{"id":1,"ok":true,"gate":{...}}\n── gate host  {"id", "ok", "error"?, "gate"?, "gates"?, "stats"?}
//   agent ◀──{"event":"inflight","app":"shop","count":3}\n── events carry no id
import { join } from 'node:path';
import type { GateOptions } from './gate.js';
import type { HoldFigures } from './hold-stats.js';
import { AGENT_VERSION } from './version.js';

/** Bumped when the protocol changes; an agent adopts only a gate host that speaks its own. */
export const GATE_PROTOCOL = `1/${AGENT_VERSION}`;

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
  | { op: 'shutdown' };

export interface GateReply {
  id: number;
  ok: boolean;
  error?: string;
  protocol?: string;
  pid?: number;
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
