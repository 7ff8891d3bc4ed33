// Compiles the controller's raw options (flags) once into complete, validated options; nothing downstream reads raw config.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { DEFAULT_MAX_PACKAGE_ENTRIES, type ArchiveLimits } from '../common/archive.js';
import { BadInputError } from '../common/errors.js';
import { parseDuration } from '../common/durations.js';
import { compileNatsAuth, type NatsAuth, type RawNatsAuth } from '../common/nats-auth.js';
import { CA_FILES } from '../common/tls.js';
import { parseByteSize } from '../common/sizes.js';
import { count, daemonSchema, duration, flag, LOG_KEYS, NATS_AUTH_KEYS, size, text } from '../common/config-schema.js';
import type { LogFormat } from '../common/logger.js';
import { NOTIFY_DEFAULTS, type NotifyTuning } from './notify.js';

export interface RawControllerOptions extends RawNatsAuth {
  listen?: string;
  http?: string;
  advertiseHttp?: string;
  dataDir?: string;
  nats?: string;
  /** A duration ("15s") or milliseconds. */
  heartbeatTimeout?: string | number;
  readyFile?: string;
  insecure?: boolean;
  /** Accept a NATS server that requires no authentication even in secure mode. */
  natsInsecure?: boolean;
  /** TLS certificate and key (PEM) of the gRPC listener. */
  tlsCert?: string;
  tlsKey?: string;
  /** A `fleetwave ca init` directory: controller.crt and controller.key in it. */
  tlsDir?: string;
  /** Written with a new admin token at start-up when the database has no live admin token. */
  bootstrapTokenFile?: string;
  /** The web console's built files (index.html, console.js, ...); default dist/console/ beside the controller. */
  consoleDir?: string;
  /** Largest gRPC message accepted or sent (bytes, or "64MiB"); bounds package uploads too. */
  maxMessageSize?: string | number;
  /** `edition install` refuses bigger packages at a URL (uploads are bounded by maxMessageSize). */
  maxPackageSize?: string | number;
  /** `edition install` refuses a tar.gz that unpacks beyond these, as the agents would. */
  maxUnpackedSize?: string | number;
  maxPackageEntries?: string | number;
  logFormat?: string;
  logLevel?: string;
  /** nats-server users file the controller writes with one nkey user per enrolled agent (docs/design.md, Security). */
  natsAgentUsers?: string;
  /** nats-server user entries (config syntax) the users file starts with: the controller's own user, watchers. */
  natsUsersTemplate?: string;
  /** nats-server's pid file: SIGHUP after every rewrite of the users file. */
  natsReloadPidFile?: string;
  /** Webhook notifications: delay after the first failed attempt (doubling), its cap, and attempts in all. */
  notifyRetryMin?: string | number;
  notifyRetryMax?: string | number;
  notifyAttempts?: string | number;
}

export interface HostPort {
  host: string;
  port: number;
}

export interface ControllerOptions {
  readonly compiled: true;
  /** gRPC: agent and admin services (port 0: any free port). */
  listen: HostPort;
  /** HTTP: artifacts, events, metrics, health. */
  http: HostPort;
  /** Base URL agents download artifacts from; null: derived from the HTTP address once it listens. */
  advertiseHttp: string | null;
  /** Absolute; holds fleetwave.db and artifacts/. */
  dataDir: string;
  natsUrl: string;
  heartbeatTimeoutMs: number;
  readyFile: string | null;
  /** Plaintext gRPC and no authentication (the demo and tests); otherwise TLS and tokens. */
  insecure: boolean;
  /** Secure mode still accepts a NATS server without auth (otherwise refused: anyone could forge agent events). */
  natsInsecure: boolean;
  /** Null exactly when insecure. */
  tls: { certFile: string; keyFile: string } | null;
  bootstrapTokenFile: string | null;
  /** Absolute; null: the console built beside the controller. */
  consoleDir: string | null;
  natsAuth: NatsAuth;
  maxMessageBytes: number;
  /** Checks of `edition install` (the same defaults as the agents' flags). */
  maxPackageBytes: number;
  archiveLimits: ArchiveLimits;
  logFormat: LogFormat;
  logLevel: string;
  /** Null: the controller issues no NATS credentials (the operator manages NATS users). */
  natsAgentUsers: { file: string; templateFile: string | null; reloadPidFile: string | null } | null;
  /** Retries of webhook deliveries (docs/notifications.md). */
  notify: NotifyTuning;
}

export const CONTROLLER_DEFAULTS = {
  listen: '127.0.0.1:7400',
  http: '127.0.0.1:7401',
  dataDir: './fleetwave-data',
  nats: 'nats://127.0.0.1:4222',
  heartbeatTimeout: '15s',
  maxMessageSize: '64MiB',
  maxPackageSize: '2GiB',
  maxUnpackedSize: '8GiB',
  maxPackageEntries: String(DEFAULT_MAX_PACKAGE_ENTRIES),
  logFormat: 'json',
  logLevel: 'info',
  notifyRetryMin: '1s',
  notifyRetryMax: '5m',
  notifyAttempts: '10',
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function compileControllerOptions(raw: RawControllerOptions | ControllerOptions): ControllerOptions {
  if ('compiled' in raw && raw.compiled === true) return raw;
  const r = raw as RawControllerOptions;
  const heartbeatTimeoutMs =
    typeof r.heartbeatTimeout === 'number' ? r.heartbeatTimeout : parseDuration(r.heartbeatTimeout ?? CONTROLLER_DEFAULTS.heartbeatTimeout, '--heartbeat-timeout');
  if (!(heartbeatTimeoutMs >= 1000)) throw new BadInputError('--heartbeat-timeout must be at least 1s');
  const logFormat = r.logFormat ?? CONTROLLER_DEFAULTS.logFormat;
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new BadInputError(`--log-format must be json or pretty (got '${logFormat}')`);
  const logLevel = r.logLevel ?? CONTROLLER_DEFAULTS.logLevel;
  if (!LOG_LEVELS.includes(logLevel)) throw new BadInputError(`--log-level must be one of ${LOG_LEVELS.join(', ')} (got '${logLevel}')`);
  return {
    compiled: true,
    listen: parseHostPort(r.listen ?? CONTROLLER_DEFAULTS.listen, '--listen'),
    http: parseHostPort(r.http ?? CONTROLLER_DEFAULTS.http, '--http'),
    advertiseHttp: r.advertiseHttp ? parseUrl(r.advertiseHttp, '--advertise-http', ['http:', 'https:']).replace(/\/+$/, '') : null,
    dataDir: resolve(r.dataDir || CONTROLLER_DEFAULTS.dataDir),
    natsUrl: parseUrl(r.nats ?? CONTROLLER_DEFAULTS.nats, '--nats', ['nats:', 'tls:', 'ws:', 'wss:']),
    heartbeatTimeoutMs,
    readyFile: r.readyFile ? resolve(r.readyFile) : null,
    insecure: r.insecure === true,
    natsInsecure: r.natsInsecure === true,
    tls: compileTls(r),
    bootstrapTokenFile: r.bootstrapTokenFile ? resolve(r.bootstrapTokenFile) : null,
    consoleDir: r.consoleDir ? resolve(r.consoleDir) : null,
    natsAuth: compileNatsAuth(r),
    maxMessageBytes: parseByteSize(r.maxMessageSize ?? CONTROLLER_DEFAULTS.maxMessageSize, '--max-message-size', 1024),
    maxPackageBytes: parseByteSize(r.maxPackageSize ?? CONTROLLER_DEFAULTS.maxPackageSize, '--max-package-size'),
    archiveLimits: {
      maxUnpackedBytes: parseByteSize(r.maxUnpackedSize ?? CONTROLLER_DEFAULTS.maxUnpackedSize, '--max-unpacked-size'),
      maxEntries: parseEntries(r.maxPackageEntries ?? CONTROLLER_DEFAULTS.maxPackageEntries),
    },
    logFormat,
    logLevel,
    natsAgentUsers: compileNatsAgentUsers(r),
    notify: compileNotify(r),
  };
}

function compileNotify(r: RawControllerOptions): NotifyTuning {
  const ms = (value: string | number, flag: string) => (typeof value === 'number' ? value : parseDuration(value, flag));
  const retryMinMs = ms(r.notifyRetryMin ?? CONTROLLER_DEFAULTS.notifyRetryMin, '--notify-retry-min');
  const retryMaxMs = ms(r.notifyRetryMax ?? CONTROLLER_DEFAULTS.notifyRetryMax, '--notify-retry-max');
  if (!(retryMinMs >= 1)) throw new BadInputError('--notify-retry-min must be at least 1ms');
  if (!(retryMaxMs >= retryMinMs)) throw new BadInputError('--notify-retry-max must be at least --notify-retry-min');
  const attempts = String(r.notifyAttempts ?? CONTROLLER_DEFAULTS.notifyAttempts);
  if (!/^\d+$/.test(attempts) || Number(attempts) < 1 || Number(attempts) > 100) throw new BadInputError(`--notify-attempts: '${attempts}' is not a whole number from 1 to 100`);
  return { ...NOTIFY_DEFAULTS, retryMinMs, retryMaxMs, maxAttempts: Number(attempts) };
}

function compileNatsAgentUsers(r: RawControllerOptions): ControllerOptions['natsAgentUsers'] {
  if (!r.natsAgentUsers) {
    if (r.natsUsersTemplate || r.natsReloadPidFile) throw new BadInputError('--nats-users-template and --nats-reload-pid-file need --nats-agent-users');
    return null;
  }
  if (r.insecure) throw new BadInputError('--nats-agent-users issues NATS keys at enrolment, which --insecure has none of');
  if (r.natsUsersTemplate && !existsSync(r.natsUsersTemplate)) throw new BadInputError(`--nats-users-template: '${r.natsUsersTemplate}' does not exist`);
  return {
    file: resolve(r.natsAgentUsers),
    templateFile: r.natsUsersTemplate ? resolve(r.natsUsersTemplate) : null,
    reloadPidFile: r.natsReloadPidFile ? resolve(r.natsReloadPidFile) : null,
  };
}

function parseEntries(value: string | number): number {
  const text = String(value);
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new BadInputError(`--max-package-entries: '${text}' is not a whole number >= 1`);
  return Number(text);
}

function compileTls(r: RawControllerOptions): { certFile: string; keyFile: string } | null {
  const given = r.tlsCert || r.tlsKey || r.tlsDir;
  if (r.insecure) {
    if (given) throw new BadInputError('--insecure turns TLS off; drop it or the --tls-* flags');
    return null;
  }
  const certFile = r.tlsCert ?? (r.tlsDir ? `${r.tlsDir}/${CA_FILES.serverCert}` : undefined);
  const keyFile = r.tlsKey ?? (r.tlsDir ? `${r.tlsDir}/${CA_FILES.serverKey}` : undefined);
  if (!certFile || !keyFile) {
    throw new BadInputError('TLS needs --tls-cert and --tls-key (or --tls-dir from `fleetwave ca init`); --insecure runs plaintext without auth');
  }
  // A file found through --tls-dir is named by that flag: it is the one the operator wrote.
  const named = (flag: string, given: string | undefined) => (given ? flag : '--tls-dir');
  for (const [flag, file] of [[named('--tls-cert', r.tlsCert), certFile], [named('--tls-key', r.tlsKey), keyFile]] as const) {
    if (!existsSync(file)) throw new BadInputError(`${flag}: '${file}' does not exist`);
  }
  return { certFile: resolve(certFile), keyFile: resolve(keyFile) };
}

/** "HOST:PORT", "[::1]:PORT" or ":PORT" (all interfaces). */
export function parseHostPort(text: string, flag: string): HostPort {
  const match = /^(\[[^\]]+\]|[^:]*):(\d+)$/.exec(text.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new BadInputError(`${flag}: '${text}' is not HOST:PORT (example: 127.0.0.1:7400)`);
  }
  const host = match[1]!.replace(/^\[|\]$/g, '') || '0.0.0.0';
  return { host, port };
}

function parseUrl(text: string, flag: string, protocols: string[]): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new BadInputError(`${flag}: '${text}' is not a URL`);
  }
  if (!protocols.includes(url.protocol)) throw new BadInputError(`${flag}: '${text}' must start with ${protocols.map((p) => p + '//').join(' or ')}`);
  return text;
}

/**
 * The controller's config file (/etc/fleetwave/controller.yaml) and merged flags: one key per long flag, checked
 * for type and format here; compileControllerOptions then checks addresses, URLs and files.
 */
export const controllerConfigSchema = daemonSchema({
  listen: text('HOST:PORT'),
  http: text('HOST:PORT'),
  'advertise-http': text('a URL such as https://fleetwave.example.internal:7401'),
  'data-dir': text('a directory'),
  nats: text('a NATS URL'),
  'heartbeat-timeout': duration(),
  'ready-file': text('a file path'),
  insecure: flag(),
  'nats-insecure': flag(),
  'tls-cert': text('a file path'),
  'tls-key': text('a file path'),
  'tls-dir': text('a directory'),
  'bootstrap-token-file': text('a file path'),
  'console-dir': text('a directory'),
  'max-message-size': size(),
  'max-package-size': size(),
  'max-unpacked-size': size(),
  'max-package-entries': count(),
  'nats-agent-users': text('a file path'),
  'nats-users-template': text('a file path'),
  'nats-reload-pid-file': text('a file path'),
  'notify-retry-min': duration(),
  'notify-retry-max': duration(),
  'notify-attempts': count(),
  ...NATS_AUTH_KEYS,
  ...LOG_KEYS,
});
