// What router suites share: a real haproxy started the router's way in a temp dir (and killed after), tiny HTTP
// backends that answer with their instance and edition, requests through the frontend, and haproxy's own counters.
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pino } from 'pino';
import { freePort } from '../../agent/ports.js';
import { ensureHaproxy, RUN_FILES } from '../../router/haproxy-process.js';
import { RuntimeApi, parseServersState, parseStatCsv, type ServerStateRow } from '../../router/runtime.js';
import { CLI_MAIN } from './fleet.js';
import { spawnProc, type Proc } from './proc.js';
import { waitFor } from './wait.js';

export const HAPROXY_BIN = process.env.FLEETWAVE_HAPROXY ?? '/usr/sbin/haproxy';
/** Whether haproxy is installed (router suites skip without it; `make setup` installs it). */
export const HAS_HAPROXY = spawnSync(HAPROXY_BIN, ['-v']).status === 0;

export const silentLogger = pino({ level: 'silent' });

/** A tiny app instance: answers every request with `{instance, edition}` as JSON. */
export interface Backend {
  instance: string;
  edition: string;
  port: number;
  /** Requests it answered. */
  hits: number;
  close(): Promise<void>;
}

export async function startBackend(instance: string, edition: string): Promise<Backend> {
  const backend = { instance, edition, port: 0, hits: 0 } as Backend;
  const server = http.createServer((req, res) => {
    backend.hits++;
    req.resume();
    const body = JSON.stringify({ instance, edition });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  backend.port = (server.address() as AddressInfo).port;
  backend.close = () => new Promise((r) => {
    server.closeAllConnections();
    server.close(() => r());
  });
  return backend;
}

export interface Haproxy {
  api: RuntimeApi;
  pid: number;
  socket: string;
  runDir: string;
  /** SIGKILLs haproxy (it runs detached, as the router leaves it) and waits for it to be gone. */
  kill(): Promise<void>;
}

/** haproxy started by the router's own code, fronting `apps` (`app` → frontend port on 127.0.0.1). */
export async function startHaproxy(runDir: string, apps: Record<string, number>, slots = 4, threads = 2): Promise<Haproxy> {
  const socket = join(runDir, 'haproxy.sock');
  const api = new RuntimeApi(socket);
  const setup = {
    apps: Object.entries(apps).map(([app, port]) => ({ app, host: '127.0.0.1', port })),
    slots,
    runDir,
    socketPath: socket,
    haproxyBin: HAPROXY_BIN,
    threads,
  };
  const { pid } = await ensureHaproxy(setup, api, silentLogger);
  return { api, pid, socket, runDir, kill: () => killHaproxy(runDir) };
}

/** Kills the haproxy whose pid file is in `runDir`, if it runs. */
export async function killHaproxy(runDir: string): Promise<void> {
  const pidFile = join(runDir, RUN_FILES.pid);
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!pid || !alive(pid)) return;
  process.kill(pid, 'SIGKILL');
  await waitFor(`haproxy ${pid} gone`, () => !alive(pid), 10_000);
}

/** Stops the router (if one runs) and then the haproxy in `runDir` it started or attached to: every teardown's two steps. */
export async function stopRouter(router: Pick<RouterProc, 'stop'> | undefined, runDir: string): Promise<void> {
  await router?.stop();
  await killHaproxy(runDir);
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One GET through the frontend with a fresh connection: which instance and edition answered, and any Set-Cookie. */
export function get(port: number, path = '/', headers: Record<string, string> = {}, localAddress?: string): Promise<{ status: number; instance: string; edition: string; setCookie: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false, localAddress }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const parsed = res.statusCode === 200 ? (JSON.parse(body) as { instance: string; edition: string }) : { instance: '', edition: '' };
        resolve({ status: res.statusCode ?? 0, ...parsed, setCookie: String(res.headers['set-cookie'] ?? '') });
      });
    });
    req.setTimeout(5_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
  });
}

/** Editions answering `n` requests, counted. */
export async function editionsOf(port: number, n: number, path = '/', headers: Record<string, string> = {}): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const { status, edition } = await get(port, path, headers);
    const key = status === 200 ? edition : `status ${status}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** Total sessions haproxy sent to `server` in `backend` (its `stot` counter). */
export async function sessionsOf(api: RuntimeApi, backend: string, server: string): Promise<number> {
  const row = parseStatCsv(await api.one('show stat')).find((r) => r.pxname === backend && r.svname === server);
  if (!row) throw new Error(`no stats for ${backend}/${server}`);
  return Number(row.stot);
}

export async function serverStates(api: RuntimeApi, app: string): Promise<ServerStateRow[]> {
  return parseServersState(await api.one('show servers state')).filter((r) => r.backend.startsWith(`fw_${app}_`));
}

export { freePort };

export interface RouterProc {
  proc: Proc;
  runDir: string;
  socket: string;
  /** SIGTERM: the router stops, haproxy keeps serving. */
  stop(): Promise<void>;
}

/** `fleetwave router` as its own process (from dist/), starting haproxy in `runDir` unless one answers there. */
export async function startRouter(o: {
  runDir: string;
  /** app → frontend port on 127.0.0.1. */
  apps: Record<string, number>;
  controller: string;
  natsUrl: string;
  id?: string;
  /** Without one the router runs --insecure and sends no token. */
  token?: string;
  logFile?: string;
  args?: string[];
}): Promise<RouterProc> {
  const socket = join(o.runDir, 'haproxy.sock');
  const args = [
    CLI_MAIN, 'router',
    ...Object.entries(o.apps).flatMap(([app, port]) => ['--app', `${app}=127.0.0.1:${port}`]),
    '--haproxy-bin', HAPROXY_BIN,
    '--haproxy-socket', socket,
    '--run-dir', o.runDir,
    '--controller', o.controller,
    '--nats', o.natsUrl,
    '--id', o.id ?? 'router-1',
    '--insecure',
    ...(o.token ? ['--token', o.token] : []),
    '--log-level', 'debug',
    ...(o.args ?? []),
  ];
  const proc = spawnProc(`router ${o.id ?? 'router-1'}`, process.execPath, args, o.logFile);
  const output = () => (o.logFile && existsSync(o.logFile) ? readFileSync(o.logFile, 'utf8') : proc.tail());
  await waitFor('the router to run', () => {
    if (!proc.running) throw new Error(`router exited early: ${output().slice(-2000)}`);
    return output().includes('router running');
  });
  return { proc, runDir: o.runDir, socket, stop: () => proc.stop() };
}
