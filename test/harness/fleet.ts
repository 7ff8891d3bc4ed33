// Starts and stops real fleetwave processes (nats-server, controller, agents) on loopback
// for the integration tests, the demo and the benchmarks.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { credentials, Metadata } from '@grpc/grpc-js';
import { freePort } from '../../agent/ports.js';
import { AdminServiceClient, type AgentInfo, type Instance, type ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';

/** The repository root, whether this file runs from source (vitest) or from dist/. */
export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));
export const CLI_MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');

function findRepoRoot(from: string): string {
  let dir = from;
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${from}`);
    dir = parent;
  }
  // dist/ has no package.json of its own, so this is the repo root in both cases.
  return dir;
}

/** A free TCP port on 127.0.0.1 (the agent's own finder). */
export { freePort };

/** Polls `check` every 25 ms until it returns a truthy value, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A child process whose output goes to a log file (or is kept in memory) and that can be stopped. */
export class Proc {
  readonly exited: Promise<number | null>;
  private output = '';
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
    logFile?: string,
  ) {
    if (logFile) {
      mkdirSync(dirname(logFile), { recursive: true });
      const out = createWriteStream(logFile, { flags: 'a' });
      child.stdout?.pipe(out);
      child.stderr?.pipe(out);
    } else {
      const keep = (chunk: Buffer) => {
        this.output = (this.output + chunk.toString()).slice(-20_000);
      };
      child.stdout?.on('data', keep);
      child.stderr?.on('data', keep);
    }
    this.exited = new Promise((r) => child.once('exit', (code, signal) => r(code ?? (signal ? -1 : null))));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** The last output kept in memory (when no log file was given). */
  tail(): string {
    return this.output;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  async kill(): Promise<void> {
    if (!this.running) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

function spawnProc(name: string, command: string, args: string[], logFile?: string): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  return new Proc(name, child, logFile);
}

export interface Nats {
  url: string;
  port: number;
  proc: Proc;
  stop(): Promise<void>;
  /** Starts nats-server again on the same port and store (after stop). */
  restart(): Promise<void>;
}

/** What a NATS user may publish and subscribe to (nats-server's `permissions` block); everything when absent. */
export interface NatsPermissions {
  publish?: { allow?: string[]; deny?: string[] };
  subscribe?: { allow?: string[]; deny?: string[] };
}

/** Users a nats-server started with `auth` accepts; nobody else may connect. */
export interface NatsUsers {
  users: Array<{ user: string; password: string; permissions?: NatsPermissions }>;
}

/** A real nats-server with JetStream on a free loopback port, storing under `dir`; with `auth`, only those users get in. */
export async function startNats(dir: string, logFile?: string, auth?: NatsUsers): Promise<Nats> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config: string[] = [];
  if (auth) {
    const file = join(dir, 'auth.conf');
    const permissions = (u: NatsUsers['users'][number]) => (u.permissions ? `, permissions: ${JSON.stringify(u.permissions)}` : '');
    const users = auth.users.map((u) => `    { user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)}${permissions(u)} }`).join('\n');
    writeFileSync(file, `authorization {\n  users = [\n${users}\n  ]\n}\n`);
    config.push('-c', file);
  }
  const launch = async (): Promise<Proc> => {
    const proc = spawnProc('nats-server', 'nats-server', [...config, '-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], logFile);
    await waitFor(`nats-server on port ${port}`, async () => {
      if (!proc.running) throw new Error(`nats-server exited: ${proc.tail()}`);
      return (await canConnect(port)) || undefined;
    });
    return proc;
  };
  const nats: Nats = {
    url: `nats://127.0.0.1:${port}`,
    port,
    proc: await launch(),
    stop: () => nats.proc.stop(),
    restart: async () => {
      nats.proc = await launch();
    },
  };
  return nats;
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((r) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      r(true);
    });
    socket.once('error', () => r(false));
  });
}

export interface ControllerProc {
  grpcAddress: string;
  httpUrl: string;
  pid: number;
  proc: Proc;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** `fleetwave controller` as its own process; resolves once its ready file is written. */
export async function startController(o: {
  dataDir: string;
  natsUrl: string;
  logFile?: string;
  args?: string[];
  grpcPort?: number;
  httpPort?: number;
  /** false: no --insecure (then `args` must give TLS, e.g. --tls-dir). Default true. */
  insecure?: boolean;
}): Promise<ControllerProc> {
  mkdirSync(o.dataDir, { recursive: true });
  const readyFile = join(o.dataDir, `ready-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const args = [
    CLI_MAIN, 'controller', ...(o.insecure === false ? [] : ['--insecure']),
    '--listen', `127.0.0.1:${o.grpcPort ?? 0}`,
    '--http', `127.0.0.1:${o.httpPort ?? 0}`,
    '--data-dir', o.dataDir,
    '--nats', o.natsUrl,
    '--ready-file', readyFile,
    ...(o.logFile ? ['--log-format', 'pretty'] : []),
    ...(o.args ?? []),
  ];
  const proc = spawnProc('controller', process.execPath, args, o.logFile);
  const ready = await waitFor('the controller to be ready', () => {
    if (!proc.running) throw new Error(`controller exited early: ${proc.tail() || `see ${o.logFile}`}`);
    return existsSync(readyFile) ? (JSON.parse(readFileSync(readyFile, 'utf8')) as { grpc: number; http: number }) : undefined;
  });
  return {
    grpcAddress: `127.0.0.1:${ready.grpc}`,
    httpUrl: `${o.insecure === false ? 'https' : 'http'}://127.0.0.1:${ready.http}`,
    pid: proc.pid,
    proc,
    stop: () => proc.stop(),
    kill: () => proc.kill(),
  };
}

export interface AgentProc {
  id: string;
  group: string;
  dataDir: string;
  servicePorts: Record<string, number>;
  proc: Proc;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** `fleetwave agent` as its own process serving `instances` (app → service port). */
export async function startAgent(o: {
  id: string;
  group: string;
  controller: string;
  natsUrl: string;
  dataDir: string;
  instances: Record<string, number>;
  logFile?: string;
  args?: string[];
  /** false: no --insecure (then `args` must give --ca and --join-token). Default true. */
  insecure?: boolean;
}): Promise<AgentProc> {
  mkdirSync(o.dataDir, { recursive: true });
  const args = [
    CLI_MAIN, 'agent', ...(o.insecure === false ? [] : ['--insecure']),
    '--id', o.id,
    '--group', o.group,
    '--controller', o.controller,
    '--nats', o.natsUrl,
    '--data-dir', o.dataDir,
    ...Object.entries(o.instances).flatMap(([app, port]) => ['--instance', `${app}:${port}`]),
    ...(o.logFile ? ['--log-format', 'pretty'] : []),
    ...(o.args ?? []),
  ];
  const proc = spawnProc(`agent ${o.id}`, process.execPath, args, o.logFile);
  return {
    id: o.id,
    group: o.group,
    dataDir: o.dataDir,
    servicePorts: o.instances,
    proc,
    stop: () => proc.stop(),
    kill: () => proc.kill(),
  };
}

/** Runs the `fleetwave` CLI against a controller and collects its output. */
export function runCli(
  args: string[],
  controller: string,
  options: { timeoutMs?: number } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((r) => {
    const child = spawn(process.execPath, [CLI_MAIN, '--controller', controller, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      r({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A typed admin client for assertions that read state directly. */
export class Admin {
  readonly client: AdminServiceClient;
  constructor(address: string) {
    this.client = new AdminServiceClient(address, credentials.createInsecure());
  }

  private call<Req, Res>(method: string, request: Req): Promise<Res> {
    return new Promise((res, rej) => {
      const fn = (this.client as unknown as Record<string, Function>)[method].bind(this.client);
      fn(request, new Metadata(), { deadline: Date.now() + 10_000 }, (err: Error | null, value: Res) =>
        err ? rej(err) : res(value),
      );
    });
  }

  async agents(): Promise<AgentInfo[]> {
    return (await this.call<object, { agents: AgentInfo[] }>('listAgents', {})).agents;
  }

  async release(id: string): Promise<ReleaseDetail> {
    return this.call('getRelease', { id });
  }

  async instances(app: string) {
    return (await this.call<object, { instances: Instance[] }>("listInstances", { app })).instances;
  }

  /** Waits until every id is connected. */
  async waitForAgents(ids: string[], timeoutMs = 20_000): Promise<void> {
    await waitFor(`agents ${ids.join(', ')} to connect`, async () => {
      const connected = new Set((await this.agents()).filter((a) => a.status === 'connected').map((a) => a.id));
      return ids.every((id) => connected.has(id));
    }, timeoutMs);
  }

  /** Waits until the release reaches one of `statuses`. */
  async waitForRelease(id: string, statuses: string[], timeoutMs = 60_000): Promise<ReleaseDetail> {
    return waitFor(`release ${id} to reach ${statuses.join(' or ')}`, async () => {
      const detail = await this.release(id);
      return detail.release && statuses.includes(detail.release.status) ? detail : undefined;
    }, timeoutMs);
  }

  close(): void {
    this.client.close();
  }
}

/** Everything a test or the demo started, so one call stops it all. */
export class Fleet {
  nats?: Nats;
  controller?: ControllerProc;
  readonly agents: AgentProc[] = [];
  private admin?: Admin;

  constructor(readonly dir: string, readonly logDir?: string) {
    mkdirSync(dir, { recursive: true });
  }

  private log(name: string): string | undefined {
    return this.logDir ? join(this.logDir, `${name}.log`) : undefined;
  }

  async startNats(auth?: NatsUsers): Promise<Nats> {
    this.nats = await startNats(join(this.dir, 'nats'), this.log('nats-server'), auth);
    return this.nats;
  }

  async startController(args: string[] = []): Promise<ControllerProc> {
    if (!this.nats) throw new Error('start nats first');
    const previous = this.controller;
    this.controller = await startController({
      dataDir: join(this.dir, 'controller'),
      natsUrl: this.nats.url,
      logFile: this.log('controller'),
      args,
      // A restarted controller keeps its ports, as a real one does, so agents find it again.
      grpcPort: previous ? Number(previous.grpcAddress.split(':')[1]) : undefined,
      httpPort: previous ? Number(new URL(previous.httpUrl).port) : undefined,
    });
    return this.controller;
  }

  async startAgent(id: string, group: string, instances: Record<string, number>, args: string[] = []): Promise<AgentProc> {
    if (!this.nats || !this.controller) throw new Error('start nats and the controller first');
    const agent = await startAgent({
      id,
      group,
      controller: this.controller.grpcAddress,
      natsUrl: this.nats.url,
      dataDir: join(this.dir, 'agents', id),
      instances,
      logFile: this.log(`agent-${id}`),
      args,
    });
    const known = this.agents.findIndex((a) => a.id === id);
    if (known >= 0) this.agents[known] = agent;
    else this.agents.push(agent);
    return agent;
  }

  get adminClient(): Admin {
    if (!this.controller) throw new Error('no controller');
    if (!this.admin) this.admin = new Admin(this.controller.grpcAddress);
    return this.admin;
  }

  cli(args: string[]): ReturnType<typeof runCli> {
    if (!this.controller) throw new Error('no controller');
    return runCli(args, this.controller.grpcAddress);
  }

  async stopAll(): Promise<void> {
    this.admin?.close();
    await Promise.all(this.agents.map((a) => a.stop()));
    await this.controller?.stop();
    await this.nats?.stop();
  }
}

export function repoPath(...parts: string[]): string {
  return resolve(REPO_ROOT, ...parts);
}
