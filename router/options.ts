// Compiles `fleetwave router`'s raw flags once into complete, validated options; nothing downstream reads raw flags.
import { accessSync, constants } from 'node:fs';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import { join, resolve } from 'node:path';
import { BadInputError } from '../common/errors.js';
import type { LogFormat } from '../common/logger.js';
import { compileNatsAuth, type NatsAuth, type RawNatsAuth } from '../common/nats-auth.js';
import { isSafeName } from '../common/names.js';
import { readFlagFile } from '../common/flag-file.js';
import { count, daemonSchema, flag, list, LOG_KEYS, NATS_AUTH_KEYS, text } from '../common/config-schema.js';
import type { FrontedApp } from './haproxy-config.js';
import { isHaproxyName } from './names.js';

/** What `fleetwave router` accepts, as the flags give it (all optional). */
export interface RawRouterOptions extends RawNatsAuth {
  app?: string[];
  haproxySocket?: string;
  haproxyBin?: string;
  haproxyThreads?: string | number;
  runDir?: string;
  controller?: string;
  token?: string;
  /** File holding the token (not visible in ps, nor in a world-readable config file). */
  tokenFile?: string;
  ca?: string;
  insecure?: boolean;
  nats?: string;
  editionSlots?: string | number;
  id?: string;
  logFormat?: string;
  logLevel?: string;
  /** `--print-haproxy-config`: only the haproxy config is wanted, so the socket and token are not needed. */
  printHaproxyConfig?: boolean;
  /** Not a flag: how often a full reconcile pass runs when nothing asked for one. */
  resyncMs?: number;
}

export interface RouterOptions {
  apps: FrontedApp[];
  /** Absolute path of haproxy's admin socket. */
  haproxySocket: string;
  /** '' when the router may only attach to a running haproxy. */
  haproxyBin: string;
  /** haproxy's nbthread; 0 for its default (one per CPU). */
  haproxyThreads: number;
  /** Absolute path: generated config, maps, Lua script, pid file. */
  runDir: string;
  /** HOST:PORT of the controller's gRPC listener. */
  controller: string;
  /** '' when none (a controller running --insecure). */
  token: string;
  /** Absolute path, or null for the system's roots. */
  caFile: string | null;
  /** Plaintext gRPC. */
  insecure: boolean;
  /** '' turns instance events off (the watch alone steers). */
  nats: string;
  natsAuth: NatsAuth;
  editionSlots: number;
  id: string;
  logFormat: LogFormat;
  logLevel: string;
  printHaproxyConfig: boolean;
  resyncMs: number;
}

export const ROUTER_DEFAULTS = {
  runDir: './fleetwave-router',
  controller: '127.0.0.1:7400',
  nats: 'nats://127.0.0.1:4222',
  editionSlots: 4,
  logFormat: 'json',
  logLevel: 'info',
  resyncMs: 5_000,
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
/** sun_path holds 108 bytes with its terminating NUL. */
const MAX_SOCKET_PATH = 107;
const MAX_SLOTS = 16;

/** Fills defaults and validates; throws BadInputError naming the flag on the first bad value. */
export function compileRouterOptions(raw: RawRouterOptions, env: NodeJS.ProcessEnv = process.env): RouterOptions {
  const logFormat = raw.logFormat ?? ROUTER_DEFAULTS.logFormat;
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new BadInputError(`--log-format: '${logFormat}' is not json or pretty`);
  const logLevel = raw.logLevel ?? env.FLEETWAVE_LOG_LEVEL ?? ROUTER_DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new BadInputError(`--log-level: '${logLevel}' is not one of ${LOG_LEVELS.join(', ')}`);
  const apps = parseApps(raw.app ?? []);
  const runDir = resolve(raw.runDir ?? ROUTER_DEFAULTS.runDir);
  const haproxyBin = raw.haproxyBin ? resolve(raw.haproxyBin) : '';
  if (haproxyBin) checkExecutable(haproxyBin);
  if (!raw.haproxySocket && !haproxyBin && !raw.printHaproxyConfig) throw new BadInputError('--haproxy-socket: give the admin socket of the haproxy to drive (or --haproxy-bin to have the router start one)');
  const haproxySocket = resolve(raw.haproxySocket ?? join(runDir, 'haproxy.sock'));
  // Both become words of haproxy's config and of Runtime API commands, which have no quoting.
  if (/\s/.test(runDir)) throw new BadInputError(`--run-dir: '${runDir}' may not hold white space`);
  if (/\s/.test(haproxySocket)) throw new BadInputError(`--haproxy-socket: '${haproxySocket}' may not hold white space`);
  if (Buffer.byteLength(haproxySocket) > MAX_SOCKET_PATH) throw new BadInputError(`--haproxy-socket: '${haproxySocket}' is longer than a unix socket path may be (${MAX_SOCKET_PATH} bytes)`);
  const id = raw.id ?? hostname();
  if (!ID.test(id)) throw new BadInputError(`--id: '${id}' may hold only letters, digits, '.', '_' and '-'`);
  if (raw.tokenFile && raw.token) throw new BadInputError('give the token once: --token-file or --token');
  const token = (raw.tokenFile ? readFlagFile(resolve(raw.tokenFile), '--token-file').toString('utf8') : raw.token ?? env.FLEETWAVE_TOKEN ?? '').trim();
  if (/\s/.test(token)) throw new BadInputError(raw.tokenFile ? `--token-file: '${raw.tokenFile}' must hold one token and nothing else` : '--token: a token has no spaces');
  const insecure = raw.insecure ?? false;
  if (insecure && raw.ca) throw new BadInputError('--ca and --insecure: choose TLS (--ca) or plaintext (--insecure)');
  if (!insecure && !token && !raw.printHaproxyConfig) throw new BadInputError('no token: give --token (or env FLEETWAVE_TOKEN) with a router token (fleetwave token create NAME --role router), or --insecure');
  return {
    apps,
    haproxySocket,
    haproxyBin,
    haproxyThreads: parseCount(raw.haproxyThreads ?? 0, '--haproxy-threads', 0, 64),
    runDir,
    controller: parseHostPort(raw.controller ?? ROUTER_DEFAULTS.controller, '--controller'),
    token,
    caFile: raw.ca ? resolve(raw.ca) : null,
    insecure,
    nats: raw.nats ?? ROUTER_DEFAULTS.nats,
    natsAuth: compileNatsAuth(raw, env),
    editionSlots: parseCount(raw.editionSlots ?? ROUTER_DEFAULTS.editionSlots, '--edition-slots', 1, MAX_SLOTS),
    id,
    logFormat,
    logLevel,
    printHaproxyConfig: raw.printHaproxyConfig ?? false,
    resyncMs: raw.resyncMs ?? ROUTER_DEFAULTS.resyncMs,
  };
}

/** `NAME=[HOST]:PORT`: HOST an address or name, an IPv6 address in brackets, none for every IPv4 interface. */
export function parseApp(item: string): FrontedApp {
  const eq = item.indexOf('=');
  if (eq <= 0) throw new BadInputError(`--app: '${item}' is not NAME=[HOST]:PORT`);
  const app = item.slice(0, eq);
  if (!isSafeName(app) || !isHaproxyName(app)) throw new BadInputError(`--app: app '${app}' may hold only letters, digits, '.', '_' and '-'`);
  const listen = item.slice(eq + 1);
  const colon = listen.lastIndexOf(':');
  if (colon < 0) throw new BadInputError(`--app: '${item}' is not NAME=[HOST]:PORT`);
  const portText = listen.slice(colon + 1);
  if (!/^\d+$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) throw new BadInputError(`--app: '${item}': port '${portText}' is not a number from 1 to 65535`);
  let host = listen.slice(0, colon);
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw new BadInputError(`--app: '${item}': '${host}' in brackets is not an IPv6 address`);
  } else if (host.includes(':')) {
    throw new BadInputError(`--app: '${item}': put an IPv6 address in brackets (NAME=[::1]:PORT)`);
  } else if (host && !/^[A-Za-z0-9.-]+$/.test(host)) {
    throw new BadInputError(`--app: '${item}': '${host}' is not an address or host name`);
  }
  return { app, host, port: Number(portText) };
}

function parseApps(items: string[]): FrontedApp[] {
  if (items.length === 0) throw new BadInputError('--app: give at least one app to front, as NAME=[HOST]:PORT');
  const apps: FrontedApp[] = [];
  for (const item of items) {
    const app = parseApp(item);
    if (apps.some((a) => a.app === app.app)) throw new BadInputError(`--app: app '${app.app}' is given twice`);
    if (apps.some((a) => a.port === app.port && a.host === app.host)) throw new BadInputError(`--app: ${app.host || '*'}:${app.port} is given twice`);
    apps.push(app);
  }
  return apps;
}

function parseHostPort(text: string, flag: string): string {
  const match = /^(.+):(\d+)$/.exec(text);
  if (!match || Number(match[2]) > 65535) throw new BadInputError(`${flag}: '${text}' is not HOST:PORT`);
  return text;
}

function parseCount(value: string | number, flag: string, min: number, max: number): number {
  const text = String(value);
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) throw new BadInputError(`${flag}: '${text}' is not a whole number from ${min} to ${max}`);
  return Number(text);
}

function checkExecutable(path: string): void {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new BadInputError(`--haproxy-bin: '${path}' is not an executable file`);
  }
}

/**
 * The router's config file (/etc/fleetwave/router.yaml) and merged flags: one key per long flag, checked for
 * type and format here; compileRouterOptions then checks apps, paths and the token.
 */
export const routerConfigSchema = daemonSchema({
  app: list('NAME=[HOST]:PORT'),
  'haproxy-socket': text('a socket path'),
  'haproxy-bin': text('a file path'),
  'haproxy-threads': count(),
  'run-dir': text('a directory'),
  controller: text('HOST:PORT'),
  token: text('a router token'),
  'token-file': text('a file path'),
  ca: text('a file path'),
  insecure: flag(),
  nats: text("a NATS URL, or '' for none"),
  ...NATS_AUTH_KEYS,
  'edition-slots': count(),
  id: text('a router id'),
  ...LOG_KEYS,
});
