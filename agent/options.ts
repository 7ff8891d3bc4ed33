// Compiles the agent's raw flags once into complete, validated options; nothing downstream reads raw flags.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { DEFAULT_MAX_PACKAGE_ENTRIES, DEFAULT_MAX_UNPACKED_BYTES, type ArchiveLimits } from '../common/archive.js';
import { parseAdvertiseAddress } from '../common/addresses.js';
import { BadInputError } from '../common/errors.js';
import { isSafeName } from '../common/names.js';
import { parseDuration } from '../common/durations.js';
import { compileNatsAuth, type NatsAuth, type RawNatsAuth } from '../common/nats-auth.js';
import { readFlagFile } from '../common/flag-file.js';
import { parseByteSize } from '../common/sizes.js';
import { count, daemonSchema, duration, flag, labels, list, LOG_KEYS, NATS_AUTH_KEYS, size, text } from '../common/config-schema.js';
import { resolveAppUser, type RunAs } from './app-user.js';
import type { LogFormat } from '../common/logger.js';

/** What `fleetwave agent` accepts, as the flags give it (all optional). */
export interface RawAgentOptions extends RawNatsAuth {
  controller?: string;
  id?: string;
  group?: string;
  label?: string[];
  instance?: string[];
  /** Where load balancers (fleetwave router) reach this host's gates: an IP or host name. */
  advertise?: string;
  dataDir?: string;
  nats?: string;
  resetHook?: string;
  keepEditions?: string | number;
  gateQueue?: string | number;
  gateHold?: string | number;
  stopGates?: boolean;
  bootId?: string;
  insecure?: boolean;
  /** CA certificate (PEM) the controller's TLS certificate is checked against. */
  ca?: string;
  /** Join token (role agent) for the first connect; env FLEETWAVE_JOIN_TOKEN otherwise. Visible in ps: prefer the file. */
  joinToken?: string;
  /** File holding the join token (not visible in ps, unlike --join-token). */
  joinTokenFile?: string;
  maxPackageSize?: string | number;
  maxUnpackedSize?: string | number;
  maxPackageEntries?: string | number;
  /** Unprivileged user apps run as when the agent runs as root. */
  appUser?: string;
  logFormat?: string;
  logLevel?: string;
  /** Free host memory below which a start-first restart falls back to stop-first (two processes would not fit). */
  startFirstMinFreeMemory?: string | number;
  /** Not a flag: where gates listen unless `--instance APP:HOST:PORT` says (production wants every interface). */
  gateHost?: string;
  /** Not a flag: how long a started process must stay up before start answers ok. */
  startGraceMs?: number;
  /** Not a flag: where `joinToken` came from when not the command line (the CLI's merge of environment and config file). */
  joinTokenSource?: 'env' | 'config';
}

/** One application this host serves, and the port its traffic gate owns (0: any free port). */
export interface InstanceOption {
  app: string;
  servicePort: number;
  /** Address the gate binds (`--instance APP:HOST:PORT`); absent: `gateHost` (0.0.0.0, every interface). */
  host?: string;
}

export interface AgentOptions {
  /** `host:port` of the controller's gRPC listener. */
  controller: string;
  /** Stable agent id, also the id of every instance it serves. */
  id: string;
  group: string;
  labels: Record<string, string>;
  instances: InstanceOption[];
  /** Sent in Hello for the routers; '' lets the controller use the address the session comes from. */
  advertise: string;
  /** Absolute path of the state directory. */
  dataDir: string;
  /** NATS server URL; '' disables event publishing (events are then only logged). */
  nats: string;
  /** Local command run through /bin/sh during HardResetServer; '' for none. */
  resetHook: string;
  /** Editions kept on disk when a DownloadPackage does not say. */
  keepEditions: number;
  /** Most requests a gate holds at once while its instance resets. */
  gateQueue: number;
  /** Longest a gate holds one request before answering 503 (apps may set their own: AppSpec hold_ms). */
  gateHoldMs: number;
  /** On SIGTERM, stop the apps and the gate host too (default: both keep running for the next agent run to adopt). */
  stopGates: boolean;
  bootId: string;
  insecure: boolean;
  /** Absolute path, or null for the system's roots. */
  caFile: string | null;
  /** '' when none. */
  joinToken: string;
  /** Where the join token came from; 'flag' earns a warning, since any local user sees it in ps. */
  joinTokenSource: JoinTokenSource;
  natsAuth: NatsAuth;
  /** Largest package download accepted. */
  maxPackageBytes: number;
  /** What a tar.gz package may unpack to (bytes, entries): a package bomb is refused while it streams. */
  archiveLimits: ArchiveLimits;
  /** '' when apps run as the agent's own user. */
  appUser: string;
  /** appUser resolved (only when the agent runs as root); null: apps run as the agent's user. */
  runAs: RunAs | null;
  logFormat: LogFormat;
  logLevel: string;
  gateHost: string;
  startGraceMs: number;
  /** Bytes of free host memory (os.freemem()) a start-first restart needs; below it the agent restarts stop-first. */
  startFirstMinFreeMemory: number;
}

/** 'config': the token is written in the config file. */
export type JoinTokenSource = 'file' | 'env' | 'flag' | 'config' | 'none';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Fills defaults and validates; throws BadInputError naming the flag on the first bad value. */
export function compileAgentOptions(raw: RawAgentOptions): AgentOptions {
  const logFormat = raw.logFormat ?? 'json';
  if (logFormat !== 'json' && logFormat !== 'pretty') {
    throw new BadInputError(`--log-format: '${logFormat}' is not json or pretty`);
  }
  const logLevel = raw.logLevel ?? process.env.FLEETWAVE_LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new BadInputError(`--log-level: '${logLevel}' is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const id = raw.id ?? hostname();
  if (!NAME.test(id)) throw new BadInputError(`--id: '${id}' may hold only letters, digits, '.', '_' and '-'`);
  const group = raw.group ?? 'default';
  if (!NAME.test(group)) throw new BadInputError(`--group: '${group}' may hold only letters, digits, '.', '_' and '-'`);
  return {
    controller: parseHostPort(raw.controller ?? '127.0.0.1:7400', '--controller'),
    id,
    group,
    labels: parseLabels(raw.label ?? []),
    instances: parseInstances(raw.instance ?? []),
    advertise: raw.advertise === undefined ? '' : parseAdvertiseAddress(raw.advertise, '--advertise'),
    dataDir: resolve(raw.dataDir ?? './fleetwave-agent'),
    nats: raw.nats ?? 'nats://127.0.0.1:4222',
    resetHook: raw.resetHook ?? '',
    keepEditions: parseCount(raw.keepEditions ?? 3, '--keep-editions', 1),
    gateQueue: parseCount(raw.gateQueue ?? 1000, '--gate-queue', 0),
    gateHoldMs: typeof raw.gateHold === 'number' ? raw.gateHold : parseDuration(raw.gateHold ?? '1.5s', '--gate-hold'),
    stopGates: raw.stopGates ?? false,
    bootId: raw.bootId ?? readBootId(),
    insecure: raw.insecure ?? false,
    caFile: raw.ca ? resolve(raw.ca) : null,
    ...compileJoinToken(raw),
    natsAuth: compileNatsAuth(raw),
    maxPackageBytes: parseByteSize(raw.maxPackageSize ?? '2GiB', '--max-package-size'),
    archiveLimits: {
      maxUnpackedBytes: parseByteSize(raw.maxUnpackedSize ?? DEFAULT_MAX_UNPACKED_BYTES, '--max-unpacked-size'),
      maxEntries: parseCount(raw.maxPackageEntries ?? DEFAULT_MAX_PACKAGE_ENTRIES, '--max-package-entries', 1),
    },
    appUser: parseAppUser(raw.appUser),
    runAs: resolveAppUser(parseAppUser(raw.appUser)),
    logFormat,
    logLevel,
    gateHost: raw.gateHost ?? '0.0.0.0',
    startGraceMs: raw.startGraceMs ?? 500,
    startFirstMinFreeMemory: parseByteSize(raw.startFirstMinFreeMemory ?? '256MiB', '--start-first-min-free-memory'),
  };
}

/** --join-token-file, else --join-token, else FLEETWAVE_JOIN_TOKEN; both flags at once is a mistake worth naming. */
function compileJoinToken(raw: RawAgentOptions): { joinToken: string; joinTokenSource: JoinTokenSource } {
  if (raw.joinTokenFile && raw.joinToken) throw new BadInputError('give the join token once: --join-token-file or --join-token');
  if (raw.joinTokenFile) {
    const token = readFlagFile(resolve(raw.joinTokenFile), '--join-token-file').toString('utf8').trim();
    if (!token || /\s/.test(token)) throw new BadInputError(`--join-token-file: '${raw.joinTokenFile}' must hold one token and nothing else`);
    return { joinToken: token, joinTokenSource: 'file' };
  }
  if (raw.joinToken?.trim()) return { joinToken: raw.joinToken.trim(), joinTokenSource: raw.joinTokenSource ?? 'flag' };
  const env = (process.env.FLEETWAVE_JOIN_TOKEN ?? '').trim();
  return { joinToken: env, joinTokenSource: env ? 'env' : 'none' };
}

function parseAppUser(user: string | undefined): string {
  if (user === undefined || user === '') return '';
  if (!/^[a-z_][a-z0-9_-]*\$?$/i.test(user) && !/^\d+$/.test(user)) throw new BadInputError(`--app-user: '${user}' is not a user name or uid`);
  return user;
}

/** Validates an app or edition name that will become a directory name. */
export { isSafeName };

function parseHostPort(text: string, flag: string): string {
  const match = /^(.+):(\d+)$/.exec(text);
  if (!match || Number(match[2]) > 65535) throw new BadInputError(`${flag}: '${text}' is not HOST:PORT`);
  return text;
}

function parsePort(text: string, flag: string): number {
  if (!/^\d+$/.test(text) || Number(text) > 65535) throw new BadInputError(`${flag}: port '${text}' is not a number from 0 to 65535`);
  return Number(text);
}

function parseCount(value: string | number, flag: string, min: number): number {
  const text = String(value);
  if (!/^\d+$/.test(text) || Number(text) < min) throw new BadInputError(`${flag}: '${text}' is not a whole number >= ${min}`);
  return Number(text);
}

function parseLabels(items: string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new BadInputError(`--label: '${item}' is not KEY=VALUE`);
    labels[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return labels;
}

/** `APP:PORT` or `APP:HOST:PORT` (HOST an address or name; an IPv6 address in brackets, `shop:[::1]:8080`). */
export function parseInstance(item: string): InstanceOption {
  const first = item.indexOf(':');
  const last = item.lastIndexOf(':');
  if (first <= 0) throw new BadInputError(`--instance: '${item}' is not APP:PORT or APP:HOST:PORT`);
  const app = item.slice(0, first);
  if (!isSafeName(app)) throw new BadInputError(`--instance: app '${app}' may hold only letters, digits, '.', '_' and '-'`);
  const servicePort = parsePort(item.slice(last + 1), '--instance');
  if (first === last) return { app, servicePort };
  let host = item.slice(first + 1, last);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  else if (host.includes(':')) throw new BadInputError(`--instance: '${item}': put an IPv6 address in brackets (APP:[::1]:PORT)`);
  if (!host || /[\s/]/.test(host)) throw new BadInputError(`--instance: '${item}' has no usable bind address`);
  return { app, servicePort, host };
}

function parseInstances(items: string[]): InstanceOption[] {
  const instances: InstanceOption[] = [];
  for (const item of items) {
    const instance = parseInstance(item);
    const { app, servicePort } = instance;
    if (instances.some((i) => i.app === app)) throw new BadInputError(`--instance: app '${app}' is given twice`);
    if (servicePort !== 0 && instances.some((i) => i.servicePort === servicePort)) {
      throw new BadInputError(`--instance: port ${servicePort} is given twice`);
    }
    instances.push(instance);
  }
  return instances;
}

function readBootId(): string {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    // No /proc (not Linux): every agent start counts as a boot.
    return randomUUID();
  }
}

/**
 * The agent's config file (/etc/fleetwave/agent.yaml) and merged flags: one key per long flag, checked for type
 * and format here; compileAgentOptions then checks what only it knows (ports, names, the join token file).
 */
export const agentConfigSchema = daemonSchema({
  controller: text('HOST:PORT'),
  id: text('an agent id'),
  group: text('a group name'),
  label: labels(),
  instance: list('APP:PORT or APP:HOST:PORT'),
  advertise: text('an IP address or host name'),
  'data-dir': text('a directory'),
  nats: text('a NATS URL'),
  'reset-hook': text('a command'),
  'keep-editions': count(),
  'gate-queue': count(),
  'gate-hold': duration(),
  'stop-gates': flag(),
  'start-first-min-free-memory': size(),
  'boot-id': text('a boot id'),
  ...NATS_AUTH_KEYS,
  insecure: flag(),
  ca: text('a file path'),
  'join-token-file': text('a file path'),
  'join-token': text('a join token'),
  'max-package-size': size(),
  'max-unpacked-size': size(),
  'max-package-entries': count(),
  'app-user': text('a user name or uid'),
  ...LOG_KEYS,
});
