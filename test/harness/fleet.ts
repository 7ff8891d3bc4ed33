// Starts and stops real fleetwave processes (nats-server, controller, agents) on loopback
// for the integration tests, the demo and the benchmarks.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { credentials, Metadata } from '@grpc/grpc-js';
import { stopDataPath } from '../../agent/data-path.js';
import { freePort } from '../../agent/ports.js';
import { AdminServiceClient, ListQuery, type AgentInfo, type Instance, type ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';
import { canConnect, startNats, type Nats, type NatsPermissions, type NatsUsers } from './nats.js';
import { Proc, spawnProc } from './proc.js';
import { waitFor } from './wait.js';
import { repoRootAbove } from '../../common/repo-root.js';

// Suites import these from here too; each has one home (wait.ts, nats.ts, proc.ts).
export { canConnect, Proc, startNats, waitFor, type Nats, type NatsPermissions, type NatsUsers };

/** The repository root, whether this file runs from source (vitest) or from dist/. */
export const REPO_ROOT = repoRootAbove(import.meta.url);
export const CLI_MAIN = join(REPO_ROOT, 'dist', 'cli', 'main.js');


/** A free TCP port on 127.0.0.1 (the agent's own finder). */
export { freePort };

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
  /** What runs the controller, before its flags (default: node dist/cli/main.js controller), e.g. [node, a bundle, 'controller']. */
  program?: string[];
  /** Added to the controller's environment (e.g. FLEETWAVE_NATS_PASS, NODE_EXTRA_CA_CERTS). */
  env?: NodeJS.ProcessEnv;
}): Promise<ControllerProc> {
  mkdirSync(o.dataDir, { recursive: true });
  const readyFile = join(o.dataDir, `ready-${Date.now()}-${Math.random().toString(36).slice(2)}.json`);
  const [command, ...programArgs] = o.program ?? [process.execPath, CLI_MAIN, 'controller'];
  const args = [
    ...programArgs, ...(o.insecure === false ? [] : ['--insecure']),
    '--listen', `127.0.0.1:${o.grpcPort ?? 0}`,
    '--http', `127.0.0.1:${o.httpPort ?? 0}`,
    '--data-dir', o.dataDir,
    '--nats', o.natsUrl,
    '--ready-file', readyFile,
    ...(o.logFile ? ['--log-format', 'pretty'] : []),
    ...(o.args ?? []),
  ];
  const proc = spawnProc('controller', command!, args, o.logFile, o.env);
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
  /** SIGTERM, then stops what the agent leaves serving on purpose (its gate host and apps): tests leak nothing. */
  stop(): Promise<void>;
  /** SIGTERM only: the apps and the gate host keep serving, for the next agent run to adopt. */
  restartStop(): Promise<void>;
  /** SIGKILL only (a crash): the apps and the gate host keep serving; stop() later cleans them up. */
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
  /** Added to the agent's environment (and so its gate host's). */
  env?: NodeJS.ProcessEnv;
  /** What runs the agent, before its flags (default: node dist/cli/main.js agent), e.g. [node, a bundle]. */
  program?: string[];
}): Promise<AgentProc> {
  mkdirSync(o.dataDir, { recursive: true });
  const [command, ...programArgs] = o.program ?? [process.execPath, CLI_MAIN, 'agent'];
  const args = [
    ...programArgs, ...(o.insecure === false ? [] : ['--insecure']),
    '--id', o.id,
    '--group', o.group,
    '--controller', o.controller,
    '--nats', o.natsUrl,
    '--data-dir', o.dataDir,
    ...Object.entries(o.instances).flatMap(([app, port]) => ['--instance', `${app}:${port}`]),
    ...(o.logFile ? ['--log-format', 'pretty'] : []),
    ...(o.args ?? []),
  ];
  const proc = spawnProc(`agent ${o.id}`, command!, args, o.logFile, o.env);
  return {
    id: o.id,
    group: o.group,
    dataDir: o.dataDir,
    servicePorts: o.instances,
    proc,
    stop: async () => {
      await proc.stop();
      await stopDataPath(o.dataDir);
    },
    restartStop: () => proc.stop(),
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

  /** Every page of a listing, from the first (the controller pages at most 1000 rows a call). */
  private async every<T>(read: (query: ListQuery) => Promise<{ rows: T[]; nextAfter: string }>): Promise<T[]> {
    const rows: T[] = [];
    let after = '';
    do {
      const page = await read(ListQuery.fromPartial({ limit: 1000, after }));
      rows.push(...page.rows);
      after = page.nextAfter;
    } while (after);
    return rows;
  }

  /** Every agent. */
  async agents(): Promise<AgentInfo[]> {
    return this.every(async (query) => {
      const page = await this.call<object, { agents: AgentInfo[]; nextAfter: string }>('listAgents', { query });
      return { rows: page.agents, nextAfter: page.nextAfter };
    });
  }

  /** The release with every instance. */
  async release(id: string): Promise<ReleaseDetail> {
    let first: ReleaseDetail | undefined;
    const instances = await this.every(async (query) => {
      const page = await this.call<object, ReleaseDetail>('getRelease', { id, query });
      first ??= page;
      return { rows: page.instances, nextAfter: page.nextAfter };
    });
    return { ...first!, instances, nextAfter: '' };
  }

  /** Every instance of the app. */
  async instances(app: string): Promise<Instance[]> {
    return this.every(async (query) => {
      const page = await this.call<object, { instances: Instance[]; nextAfter: string }>('listInstances', { app, query });
      return { rows: page.instances, nextAfter: page.nextAfter };
    });
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

  async startAgent(
    id: string,
    group: string,
    instances: Record<string, number>,
    args: string[] = [],
    launch: { program?: string[]; env?: NodeJS.ProcessEnv } = {},
  ): Promise<AgentProc> {
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
      ...launch,
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
