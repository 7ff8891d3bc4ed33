// Shared set-up of the release-model suites: one real fleet (nats-server, controller, four agents in
// groups blue and green) serving several apps, so each test uses its own app and stays independent.
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { ReleaseDetail } from '../../../proto/gen/fleetwave/v1/admin.js';
import { buildEdition } from '../../../examples/demo/package.js';
import { Fleet, repoPath, waitFor } from '../../harness/fleet.js';
import { FINAL_RELEASE_STATUSES } from '../../../controller/domain/transitions.js';

export const AGENTS = [
  { id: 'b1', group: 'blue' },
  { id: 'b2', group: 'blue' },
  { id: 'g1', group: 'green' },
  { id: 'g2', group: 'green' },
];

export type CliResult = { code: number; stdout: string; stderr: string };

/** Time a suite's beforeAll may take to start its fleet on a loaded machine. */
export const START_TIMEOUT_MS = 150_000;

const handedOut = new Set<number>();

/**
 * A free service port below Linux's ephemeral range (32768+). Ports from the ephemeral range (what
 * `freePort` returns) may be taken by the agents' internal ports before the gate binds them.
 */
export async function servicePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (handedOut.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (!free) continue;
    handedOut.add(port);
    return port;
  }
}

export class ModelFleet {
  readonly fleet: Fleet;
  /** Service port of each app on each agent: ports[agent][app]. */
  readonly ports: Record<string, Record<string, number>> = {};

  constructor(
    readonly dir: string,
    readonly apps: string[],
    private readonly agentArgs: (id: string) => string[] = () => [],
  ) {
    this.fleet = new Fleet(dir);
  }

  static async start(name: string, apps: string[], agentArgs?: (dir: string, id: string) => string[]): Promise<ModelFleet> {
    const dir = mkdtempSync(join(tmpdir(), `fleetwave-${name}-`));
    const mf = new ModelFleet(dir, apps, agentArgs ? (id) => agentArgs(dir, id) : undefined);
    try {
      await mf.fleet.startNats();
      await mf.fleet.startController(['--heartbeat-timeout', '3s']);
      for (const agent of AGENTS) {
        mf.ports[agent.id] = {};
        for (const app of apps) mf.ports[agent.id]![app] = await servicePort();
        await mf.startAgent(agent.id);
      }
      await mf.fleet.adminClient.waitForAgents(AGENTS.map((a) => a.id), 90_000);
      return mf;
    } catch (err) {
      // Whatever started is stopped, with the output of an agent that died, for the failure message.
      const dead = mf.fleet.agents.filter((a) => !a.proc.running).map((a) => `${a.id}: ${a.proc.tail().slice(-500)}`);
      await mf.stop();
      throw new Error(`${(err as Error).message}${dead.length ? `; exited: ${dead.join(' | ')}` : ''}`, { cause: err });
    }
  }

  async startAgent(id: string): Promise<void> {
    const agent = AGENTS.find((a) => a.id === id)!;
    await this.fleet.startAgent(id, agent.group, this.ports[id]!, this.agentArgs(id));
  }

  get admin() {
    return this.fleet.adminClient;
  }

  cli(args: string[]): Promise<CliResult> {
    return this.fleet.cli(args);
  }

  /** Runs the CLI and expects exit 0; returns its stdout. */
  async ok(args: string[]): Promise<string> {
    const result = await this.cli(args);
    expect(result.code, `fleetwave ${args.join(' ')}: ${result.stderr}`).toBe(0);
    return result.stdout;
  }

  /** Defines the app and installs its editions; editions in `failing` answer /healthz with 500. */
  async createApp(app: string, editions: string[], failing: string[] = []): Promise<void> {
    // Stop-first: this suite checks the quiesce ─▶ drain ─▶ restart pipeline (start-first has its own suite).
    await this.ok(['app', 'create', app, '--start', 'node server.js', '--env', 'START_DELAY_MS=50', '--stop-timeout', '2s', '--update-order', 'stop-first']);
    for (const edition of editions) {
      const source = join(this.dir, 'src', `${app}-${edition}`);
      cpSync(repoPath('examples/app'), source, { recursive: true });
      if (failing.includes(edition)) writeFileSync(join(source, 'FAIL_HEALTH'), 'drill\n');
      const pkg = await buildEdition({ sourceDir: source, edition, outDir: join(this.dir, 'packages'), name: app });
      await this.ok(['edition', 'install', app, edition, '--file', pkg.path, '--description', `${app} ${edition}`]);
    }
  }

  /** `release create` (short drain and health deadline unless given); returns the release id. */
  async create(app: string, edition: string, flags: string[] = []): Promise<string> {
    const defaults = [...(flags.includes('--drain') ? [] : ['--drain', '2s']), ...(flags.includes('--health-timeout') ? [] : ['--health-timeout', '5s'])];
    return (await this.ok(['release', 'create', app, '--edition', edition, ...defaults, ...flags])).trim().split(/\s+/).pop()!;
  }

  /** Deploys `edition` to every instance of the app in one batch per group, and waits for Released. */
  async deploy(app: string, edition: string, group = 'all'): Promise<string> {
    const id = await this.create(app, edition, ['--group', group, '--batches', '1']);
    await this.expectStatus(id, 'Released');
    return id;
  }

  async expectStatus(id: string, status: string, timeoutMs = 60_000): Promise<ReleaseDetail> {
    const detail = await this.admin.waitForRelease(id, [...new Set([status, ...FINAL_RELEASE_STATUSES])], timeoutMs);
    expect(detail.release?.status, detail.release?.message).toBe(status);
    return detail;
  }

  async waitingFor(id: string, text: string): Promise<void> {
    await waitFor(`release ${id} to wait for ${text}`, async () => (await this.admin.release(id)).release?.waitingFor === text, 60_000);
  }

  /** Edition each instance of the app runs, by agent id. */
  async editions(app: string): Promise<Record<string, string>> {
    return Object.fromEntries((await this.admin.instances(app)).map((i) => [i.instance, i.edition]));
  }

  /** The edition that answers on the agent's service port for the app. */
  async serving(agent: string, app: string): Promise<string> {
    const res = await fetch(`http://127.0.0.1:${this.ports[agent]![app]}/`);
    return ((await res.json()) as { edition: string }).edition;
  }

  /** The unpacked edition directory on an agent (the app's working directory). */
  editionDir(agent: string, app: string, edition: string): string {
    return join(this.dir, 'agents', agent, 'apps', app, 'editions', edition);
  }

  /** Makes one agent's copy of an edition fail its health check from its next start. */
  async breakOn(agent: string, app: string, edition: string): Promise<string> {
    const dir = this.editionDir(agent, app, edition);
    await waitFor(`${agent} to have ${app} ${edition} on disk`, () => existsSync(dir));
    const file = join(dir, 'FAIL_HEALTH');
    writeFileSync(file, 'drill\n');
    return file;
  }

  async stop(): Promise<void> {
    await this.fleet.stopAll();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** One line on stderr, a non-zero exit, no stack trace. */
export function expectOneLineError(result: CliResult, pattern: RegExp): void {
  expect(result.code, result.stdout).not.toBe(0);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
}

/** Steps of every instance of a release as [instance, step, start, end]. */
export function stepRows(detail: ReleaseDetail): Array<{ instance: string; step: string; start: number; end: number; error: string }> {
  return detail.instances.flatMap((i) =>
    i.steps.map((s) => ({ instance: i.instance, step: s.step, start: Number(s.startedUnixMs), end: Number(s.finishedUnixMs), error: s.error })),
  );
}
