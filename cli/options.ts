// Turns the admin verbs' raw flags into proto requests. Pure: everything is
// validated here, before anything is sent, and a bad flag throws BadInputError.
import path from 'node:path';
import type { AddRouteRequest, App, InstallEditionRequest, ReleaseSpec, ValidateEditionRequest } from '../proto/gen/fleetwave/v1/admin.js';
import { validateRoute } from '../controller/domain/routing.js';
import { parseRouteSpec } from '../controller/domain/validation.js';
import { parseDuration } from '../common/durations.js';
import { BadInputError } from '../common/errors.js';
import { isSafeName } from '../common/names.js';

/** commander accumulator for repeatable flags. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function parseCount(text: string, flag: string, min = 1): number {
  if (!/^\d+$/.test(text.trim()) || Number(text) < min || !Number.isSafeInteger(Number(text))) {
    throw new BadInputError(`${flag}: '${text}' is not a whole number${min > 0 ? ` ≥ ${min}` : ''}`);
  }
  return Number(text);
}

/** "2,3" → [2, 3] (1-based batch numbers). */
export function parseNumberList(text: string, flag: string): number[] {
  return text
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => parseCount(part, flag));
}

/** ["K=V", ...] → {K: V}; the value may contain '='. */
export function parseKeyValues(pairs: string[], flag: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new BadInputError(`${flag}: '${pair}' is not KEY=VALUE`);
    result[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return result;
}

function oneOf<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | '' {
  if (value === undefined) return '';
  if (!(allowed as readonly string[]).includes(value)) {
    throw new BadInputError(`${flag}: '${value}' is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function duration(value: string | undefined, flag: string): number {
  return value === undefined ? 0 : parseDuration(value, flag);
}

export interface AppFlags {
  start?: string;
  startArg?: string[];
  env?: string[];
  portEnv?: string;
  healthPath?: string;
  stopTimeout?: string;
  drainMode?: string;
  quiesceHook?: string;
  inflightPath?: string;
  updateOrder?: string;
  startGrace?: string;
  healthInitialInterval?: string;
  hold?: string;
}

const UPDATE_ORDERS = ['start-first', 'stop-first'] as const;

/** `app create NAME ...` → App. The start command is argv, run without a shell. */
export function buildApp(name: string, flags: AppFlags): App {
  const startArgs = flags.startArg ?? [];
  if (flags.start !== undefined && startArgs.length > 0) {
    throw new BadInputError('give the start command either with --start or with --start-arg, not both');
  }
  const startCommand = flags.start !== undefined ? flags.start.trim().split(/\s+/).filter(Boolean) : startArgs;
  if (startCommand.length === 0) throw new BadInputError('--start: the app needs a start command (e.g. --start "node server.js")');
  if (flags.healthPath !== undefined && !flags.healthPath.startsWith('/')) {
    throw new BadInputError(`--health-path: '${flags.healthPath}' must start with /`);
  }
  return {
    name,
    startCommand,
    env: parseKeyValues(flags.env ?? [], '--env'),
    portEnv: flags.portEnv ?? '',
    healthPath: flags.healthPath ?? '',
    stopTimeoutMs: duration(flags.stopTimeout, '--stop-timeout'),
    createdUnixMs: 0,
    // Checked by the controller (drain mode self needs both the hook and the in-flight path).
    drainMode: flags.drainMode ?? '',
    quiesceHook: flags.quiesceHook ?? '',
    inflightPath: flags.inflightPath ?? '',
    updateOrder: oneOf(flags.updateOrder, UPDATE_ORDERS, '--update-order') || 'start-first',
    startGraceMs: duration(flags.startGrace, '--start-grace'),
    healthInitialIntervalMs: duration(flags.healthInitialInterval, '--health-initial-interval'),
    holdMs: duration(flags.hold, '--hold'),
  };
}

export interface EditionFlags {
  file?: string;
  url?: string;
  sha256?: string;
  size?: string;
  description?: string;
  format?: string;
  /** The file name a single-file package gets on the hosts (default: the uploaded or downloaded name). */
  as?: string;
}

/** "tar.gz" for .tar.gz/.tgz names, else "file". */
export function inferFormat(name: string): 'tar.gz' | 'file' {
  return /\.(tar\.gz|tgz)$/i.test(name) ? 'tar.gz' : 'file';
}

/**
 * `edition install APP EDITION ...` → the request, except the file's content,
 * which the caller reads (this stays free of I/O).
 */
export function buildInstallRequest(app: string, edition: string, flags: EditionFlags): InstallEditionRequest {
  if ((flags.file === undefined) === (flags.url === undefined)) {
    throw new BadInputError('give the package either with --file PATH or with --url URL --sha256 HEX');
  }
  if (flags.url !== undefined) {
    if (!/^https?:\/\//.test(flags.url)) throw new BadInputError(`--url: '${flags.url}' is not an http(s) URL`);
    if (flags.sha256 === undefined) throw new BadInputError('--url needs --sha256 HEX (the agents verify the download)');
  }
  if (flags.sha256 !== undefined && !/^[0-9a-fA-F]{64}$/.test(flags.sha256)) {
    throw new BadInputError(`--sha256: '${flags.sha256}' is not 64 hex digits`);
  }
  const source = flags.file ?? new URL(flags.url!).pathname;
  const format = oneOf(flags.format, ['tar.gz', 'file'] as const, '--format') || inferFormat(source);
  return installSource(app, edition, flags, format, source);
}

/** The request, once the single-file name (--as, or the package's own name) is checked as the agents will. */
function installSource(app: string, edition: string, flags: EditionFlags, format: 'tar.gz' | 'file', source: string): InstallEditionRequest {
  if (flags.as !== undefined && format !== 'file') {
    throw new BadInputError('--as names a single-file package; a tar.gz package is unpacked (add --format file to keep it as one file)');
  }
  const fileName = format === 'file' ? (flags.as ?? path.basename(source)) : '';
  if (format === 'file' && !isSafeName(fileName)) {
    const flag = flags.as !== undefined ? '--as' : 'the package file name';
    throw new BadInputError(`${flag}: '${fileName}' is not a plain file name (letters, digits, '.', '_', '-'; no '/' or '..')${flags.as === undefined ? '; choose one with --as NAME' : ''}`);
  }
  return {
    app,
    name: edition,
    description: flags.description ?? '',
    content: Buffer.alloc(0),
    url: flags.url ?? '',
    sha256: flags.sha256?.toLowerCase() ?? '',
    size: flags.size === undefined ? 0 : parseCount(flags.size, '--size', 0),
    format,
    fileName,
  };
}

export interface ReleaseFlags {
  /** Required, except with --from-validation (the validation's) or --operation clone (the default edition). */
  edition?: string;
  /** Roll out the edition of the app's validation to its target, then remove the clone. */
  fromValidation?: boolean;
  /** clone: copy the app's default edition onto --to GROUP. */
  operation?: string;
  to?: string;
  group?: string;
  strategy?: string;
  batches?: string;
  groupSize?: string;
  batchMode?: string;
  wait?: string;
  reset?: string;
  drain?: string;
  fullDrain?: boolean;
  bestEffort?: string;
  autoRollback?: boolean;
  maxUnavailable?: string;
  approvalBefore?: string;
  triggerBefore?: string;
  downloadTimeout?: string;
  startTimeout?: string;
  healthTimeout?: string;
  stopTimeout?: string;
  /** commander's `--no-start`: false when given. */
  start?: boolean;
  /** Overrides the app's update order for this release's soft resets. */
  updateOrder?: string;
  /** Go ahead although an edition routing rules name would be left active nowhere. */
  force?: boolean;
}

/** `release create APP ...` → ReleaseSpec. Unset flags stay zero ("controller default"). */
export function buildReleaseSpec(app: string, flags: ReleaseFlags): ReleaseSpec {
  const bestEffort = oneOf(flags.bestEffort, ['on', 'off'] as const, '--best-effort');
  const operation = oneOf(flags.operation, ['clone'] as const, '--operation');
  if (operation && flags.fromValidation) throw new BadInputError('--from-validation and --operation do not go together');
  if (operation === 'clone') {
    if (!flags.to) throw new BadInputError('--operation clone needs --to GROUP');
    if (flags.group !== undefined) throw new BadInputError('--operation clone takes --to GROUP, not --group');
    if (flags.edition !== undefined) throw new BadInputError('--operation clone copies the default edition; leave --edition out');
  } else if (flags.to !== undefined) {
    throw new BadInputError('--to goes with --operation clone');
  }
  if (!operation && !flags.fromValidation && !flags.edition) throw new BadInputError("required option '--edition <name>' not specified");
  return {
    app,
    edition: flags.edition ?? '',
    force: flags.force ?? false,
    fromValidation: flags.fromValidation ?? false,
    operation,
    group: (operation ? flags.to : flags.group) ?? '',
    strategy: oneOf(flags.strategy, ['rolling', 'grouped', 'atomic'] as const, '--strategy'),
    batches: flags.batches === undefined ? 0 : parseCount(flags.batches, '--batches'),
    groupSize: flags.groupSize === undefined ? 0 : parseCount(flags.groupSize, '--group-size'),
    batchMode: oneOf(flags.batchMode, ['auto', 'manual'] as const, '--batch-mode'),
    waitMs: duration(flags.wait, '--wait'),
    approvalBefore: flags.approvalBefore === undefined ? [] : parseNumberList(flags.approvalBefore, '--approval-before'),
    triggerBefore: flags.triggerBefore === undefined ? [] : parseNumberList(flags.triggerBefore, '--trigger-before'),
    reset: oneOf(flags.reset, ['soft', 'hard'] as const, '--reset'),
    drainMs: duration(flags.drain, '--drain'),
    fullDrain: flags.fullDrain ?? false,
    bestEffort: bestEffort === 'on',
    autoRollback: flags.autoRollback ?? false,
    maxUnavailable: flags.maxUnavailable === undefined ? 0 : parseCount(flags.maxUnavailable, '--max-unavailable'),
    timeouts: {
      downloadMs: duration(flags.downloadTimeout, '--download-timeout'),
      stopMs: duration(flags.stopTimeout, '--stop-timeout'),
      startMs: duration(flags.startTimeout, '--start-timeout'),
      healthMs: duration(flags.healthTimeout, '--health-timeout'),
    },
    start: flags.start ?? true,
    health: undefined,
    updateOrder: oneOf(flags.updateOrder, UPDATE_ORDERS, '--update-order'),
  };
}

export interface RouteFlags {
  edition: string;
  header?: string;
  cookie?: string;
  pathPrefix?: string;
  source?: string;
  percent?: string;
  priority?: string;
  comment?: string;
}

/** The match flags of `route add`, one of which is given: flag → rule kind. */
const MATCH_FLAGS = [
  ['header', '--header'],
  ['cookie', '--cookie'],
  ['pathPrefix', '--path-prefix'],
  ['source', '--source'],
  ['percent', '--percent'],
] as const;

/** `route add APP --edition E (one match flag) [--priority N] [--comment C]` → the request, checked as the controller will. */
export function buildRouteRequest(app: string, flags: RouteFlags): AddRouteRequest {
  const given = MATCH_FLAGS.filter(([key]) => flags[key] !== undefined);
  if (given.length !== 1) {
    const got = given.length ? ` (got ${given.map(([, flag]) => flag).join(' and ')})` : '';
    throw new BadInputError(`give exactly one of --header NAME=VALUE, --cookie NAME=VALUE, --path-prefix /P, --source CIDR, --percent N${got}`);
  }
  const [key, flag] = given[0]!;
  const text = flags[key]!;
  let name = '';
  let value = text;
  let percent = 0;
  if (key === 'header' || key === 'cookie') {
    const at = text.indexOf('=');
    if (at <= 0) throw new BadInputError(`${flag}: '${text}' is not NAME=VALUE`);
    name = text.slice(0, at);
    value = text.slice(at + 1);
  } else if (key === 'percent') {
    value = '';
    const digits = text.trim().replace(/%$/, '');
    if (!/^\d{1,3}$/.test(digits) || Number(digits) < 1 || Number(digits) > 100) throw new BadInputError(`--percent: '${text}' is not a whole number from 1 to 100`);
    percent = Number(digits);
  }
  const kind = key === 'pathPrefix' ? 'path-prefix' : key;
  const fields = validateRoute({ kind, name, value, percent, priority: parsePriority(flags.priority) });
  return {
    route: { id: '', app, edition: flags.edition, ...fields, createdUnixMs: 0, createdBy: '' },
    comment: flags.comment ?? '',
  };
}

function parsePriority(text: string | undefined): number {
  if (text === undefined) return 0;
  const n = Number(text.trim());
  if (!/^-?\d+$/.test(text.trim()) || n < -(2 ** 31) || n > 2 ** 31 - 1) {
    throw new BadInputError(`--priority: '${text}' is not a whole number from -2147483648 to 2147483647`);
  }
  return n;
}

export type OutputFormat = 'table' | 'json';

export function parseOutput(value: string | undefined): OutputFormat {
  return oneOf(value ?? 'table', ['table', 'json'] as const, '--output') || 'table';
}

/** The controller address: the verb's flag, else the program's, else the environment, else the default. */
export function resolveController(flag: string | undefined, env: NodeJS.ProcessEnv, fallback: string): string {
  const address = flag ?? env.FLEETWAVE_CONTROLLER ?? fallback;
  if (!/^[^\s:]+:\d+$/.test(address) && !/^\[[0-9a-fA-F:]+\]:\d+$/.test(address)) {
    throw new BadInputError(`--controller: '${address}' is not HOST:PORT`);
  }
  return address;
}

export interface ValidateFlags {
  target?: string;
  group?: string;
  on?: string[];
  route?: string;
  env?: string[];
  comment?: string;
}

/** `edition validate APP EDITION --target G (--group C | --on I…) --route KIND:MATCH [--env K=V…]` → the request. */
export function buildValidateRequest(app: string, edition: string, flags: ValidateFlags): ValidateEditionRequest {
  if (!flags.target) throw new BadInputError("required option '--target <group>' not specified");
  const on = flags.on ?? [];
  if ((flags.group ? 1 : 0) + (on.length ? 1 : 0) !== 1) throw new BadInputError('give the clone as --group GROUP or --on INSTANCE…, one of them');
  if (!flags.route) throw new BadInputError("required option '--route <KIND:MATCH>' not specified");
  const match = parseRouteSpec(flags.route);
  const fields = validateRoute({ ...match, priority: 0 });
  return {
    app,
    edition,
    targetGroup: flags.target,
    cloneGroup: flags.group ?? '',
    cloneInstances: on,
    route: { id: '', app, edition, ...fields, createdUnixMs: 0, createdBy: '' },
    env: parseKeyValues(flags.env ?? [], '--env'),
    comment: flags.comment ?? '',
  };
}
