// The agent artifacts run a real agent against a real controller: the bundle (one CommonJS file, every npm dependency
// inlined) and the single executable made from it. Each starts its gate host as itself in the hidden mode, an app
// behind the gate answers through it, and a bundle of another version has the gate host hand its sockets over.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GateLink } from '../../agent/gate-link.js';
import { gateSocketPath } from '../../agent/gate-protocol.js';
import { buildAgentBundle, buildSea, type SeaResult } from '../../deploy/dist/bundle.js';
import { buildEdition } from '../../examples/demo/package.js';
import { Fleet, freePort, repoPath, waitFor, type AgentProc } from '../harness/fleet.js';

/** The data dir's gate host: its pid and command line. */
async function gateHost(dataDir: string): Promise<{ pid: number; argv: string[] }> {
  const link = await GateLink.connect(gateSocketPath(dataDir));
  if (!link) throw new Error(`no gate host answers in ${dataDir}`);
  try {
    const pid = (await link.request({ op: 'hello' })).pid!;
    return { pid, argv: readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean) };
  } finally {
    link.close();
  }
}

/** The app's answer through the gate on `port`: status and the pid of the process that served it. */
async function through(port: number): Promise<{ status: number; pid: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/`);
  const body = (await res.json()) as { pid?: number };
  return { status: res.status, pid: String(body.pid) };
}

describe('the agent artifacts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-bundle-'));
  const fleet = new Fleet(join(dir, 'fleet'), process.env.KEEP_TEST_DIR ? join(dir, 'logs') : undefined);
  const bundle = join(dir, 'fleetwave-agent.cjs');
  let sea: SeaResult = { ok: false, reason: 'not built' };
  let packagePath = '';

  /** Deploys `app` (the sample app, edition 1.0) to the agents serving it, and waits until it is released. */
  async function deploy(app: string): Promise<void> {
    expect((await fleet.cli(['app', 'create', app, '--start', 'node server.js'])).code).toBe(0);
    const installed = await fleet.cli(['edition', 'install', app, '1.0', '--file', packagePath]);
    expect(installed.code, installed.stderr).toBe(0);
    const release = await fleet.cli(['release', 'create', app, '--edition', '1.0', '--batches', '1']);
    expect(release.code, release.stderr).toBe(0);
    const detail = await fleet.adminClient.waitForRelease(release.stdout.trim().split(/\s+/).pop()!, ['Released', 'Release failed'], 40_000);
    expect(detail.release?.status).toBe('Released');
  }

  async function agentVersion(id: string): Promise<string> {
    return waitFor(`agent ${id} to connect`, async () => (await fleet.adminClient.agents()).find((a) => a.id === id && a.status === 'connected')?.version, 20_000);
  }

  beforeAll(async () => {
    await buildAgentBundle({ outFile: bundle, version: '0.7.0' });
    await fleet.startNats();
    await fleet.startController();
    packagePath = (await buildEdition({ sourceDir: repoPath('examples/app'), edition: '1.0', outDir: join(dir, 'packages'), name: 'shop' })).path;
  }, 60_000);

  afterAll(async () => {
    await fleet.stopAll();
    if (!process.env.KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
  });

  it('the bundle connects with its version and serves an app through a gate host that is the bundle itself', async () => {
    // Given an agent run from the bundle alone (node plus one file)
    const port = await freePort();
    const agent = await fleet.startAgent('b1', 'bundle', { shop: port }, [], { program: [process.execPath, bundle] });

    // Then it reports the version the bundle was built with
    expect(await agentVersion('b1')).toBe('0.7.0');

    // When the app is deployed to it, it answers through the gate, whose host is the bundle in its hidden mode
    await deploy('shop');
    expect((await through(port)).status).toBe(200);
    expect((await gateHost(agent.dataDir)).argv).toEqual([process.execPath, bundle, '__gate-host', agent.dataDir]);
  }, 60_000);

  it('a bundle of another version has the gate host hand over: the app keeps its process and answers', async () => {
    // Given the app serving behind the 0.7.0 gate host
    const agent = fleet.agents.find((a) => a.id === 'b1')!;
    const port = agent.servicePorts.shop!;
    const before = await gateHost(agent.dataDir);
    const appPid = (await through(port)).pid;

    // When the agent stops and a 0.7.1 bundle starts on its data dir
    const next = join(dir, 'fleetwave-agent-0.7.1.cjs');
    await buildAgentBundle({ outFile: next, version: '0.7.1' });
    await agent.restartStop();
    await fleet.startAgent('b1', 'bundle', { shop: port }, [], { program: [process.execPath, next] });

    // Then it reports 0.7.1, a new gate host (the new bundle) serves, and the same app process answers
    await waitFor('b1 to report 0.7.1', async () => (await agentVersion('b1')) === '0.7.1', 20_000);
    const after = await waitFor('the new gate host', async () => {
      const host = await gateHost(agent.dataDir).catch(() => undefined);
      return host && host.pid !== before.pid ? host : undefined;
    }, 20_000);
    expect(after.argv).toEqual([process.execPath, next, '__gate-host', agent.dataDir]);
    expect(await through(port)).toEqual({ status: 200, pid: appPid });
  }, 60_000);

  it('the single executable connects and serves an app through a gate host that is itself', async (ctx) => {
    // Given a single executable made from the bundle (where this node binary can make one)
    sea = await buildSea({ bundle, outFile: join(dir, 'fleetwave-agent') });
    if (!sea.ok) return ctx.skip(`no single executable: ${sea.reason}`);
    const exe = join(dir, 'fleetwave-agent');
    const port = await freePort();
    const agent: AgentProc = await fleet.startAgent('s1', 'sea', { cafe: port }, [], { program: [exe] });

    // Then it connects with its version, serves the app through its gate, and its gate host is the executable
    expect(await agentVersion('s1')).toBe('0.7.0');
    await deploy('cafe');
    expect((await through(port)).status).toBe(200);
    const host = await gateHost(agent.dataDir);
    expect(host.argv.filter((a) => a !== exe)).toEqual(['__gate-host', agent.dataDir]);
  }, 60_000);
});
