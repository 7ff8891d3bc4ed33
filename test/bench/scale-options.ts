// The scale benchmark's flags, compiled once into complete options (bad input: BadInputError, one line).
import { parseArgs } from 'node:util';
import { BadInputError } from '../../common/errors.js';

export interface ScaleOptions {
  /** Fleet sizes, one line each, in this order. */
  agents: number[];
  /** Each simulated agent answers every command this long after receiving it; one line per size and delay. */
  delaysMs: number[];
  /** The idle window after all agents connected, in which the controller's RSS and CPU are read. */
  idleS: number;
  /** A release still running this long after its creation is reported with status 'timeout'. */
  releaseTimeoutS: number;
  /** Longest wait for all agents to be connected. */
  connectTimeoutS: number;
  /** Simulator processes (they share the machine with the controller). */
  sims: number;
  /** Agent sessions sharing one gRPC channel (one HTTP/2 connection). */
  sessionsPerChannel: number;
  updateOrder: 'stop-first' | 'start-first';
  batches: number;
  /** Starts the controller with `node --cpu-prof --cpu-prof-dir DIR` (a .cpuprofile per run, written when it stops). */
  cpuProfDir?: string;
  /** Keeps the run directories (controller log, database) and prints where they are. */
  keep: boolean;
}

export const SCALE_USAGE =
  'usage: scale-bench [--agents 1000,3000,10000] [--delay-ms 0|50|0,50] [--idle-s 60] [--release-timeout-s 300] ' +
  '[--connect-timeout-s 120] [--sims 4] [--sessions-per-channel 250] [--update-order stop-first|start-first] ' +
  '[--batches 10] [--cpu-prof DIR] [--keep]';

export function parseScaleOptions(argv: string[]): ScaleOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        agents: { type: 'string', default: '1000,3000,10000' },
        'delay-ms': { type: 'string', default: '0' },
        'idle-s': { type: 'string', default: '60' },
        'release-timeout-s': { type: 'string', default: '300' },
        'connect-timeout-s': { type: 'string', default: '120' },
        sims: { type: 'string', default: '4' },
        'sessions-per-channel': { type: 'string', default: '250' },
        'update-order': { type: 'string', default: 'stop-first' },
        batches: { type: 'string', default: '10' },
        'cpu-prof': { type: 'string' },
        keep: { type: 'boolean', default: false },
      },
    }));
  } catch (err) {
    throw new BadInputError(`${(err as Error).message.split('\n')[0]}; ${SCALE_USAGE}`);
  }
  const order = values['update-order'];
  if (order !== 'stop-first' && order !== 'start-first') throw new BadInputError(`--update-order: stop-first or start-first (got '${order}')`);
  return {
    agents: numberList(values.agents, '--agents', 1),
    delaysMs: numberList(values['delay-ms'], '--delay-ms', 0),
    idleS: count(values['idle-s'], '--idle-s', 0),
    releaseTimeoutS: count(values['release-timeout-s'], '--release-timeout-s', 1),
    connectTimeoutS: count(values['connect-timeout-s'], '--connect-timeout-s', 1),
    sims: count(values.sims, '--sims', 1),
    sessionsPerChannel: count(values['sessions-per-channel'], '--sessions-per-channel', 1),
    updateOrder: order,
    batches: count(values.batches, '--batches', 1),
    cpuProfDir: values['cpu-prof'],
    keep: values.keep,
  };
}

/** Comma-separated whole numbers, each at least `min` ("1000,3000"; "3k" is not taken). */
export function numberList(text: string, flag: string, min: number): number[] {
  const list = text.split(',').map((part) => count(part, flag, min));
  if (list.length === 0) throw new BadInputError(`${flag}: give at least one number`);
  return list;
}

function count(text: string, flag: string, min: number): number {
  const trimmed = text.trim();
  const n = /^\d+$/.test(trimmed) ? Number(trimmed) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new BadInputError(`${flag}: '${trimmed}' is not a whole number of at least ${min}`);
  return n;
}
