// `make dist`: builds the artifacts into dist/pkg/ (deploy/dist/bundle.ts; the .deb files, deploy/dist/deb.ts) and
// prints each one's size and the agent's start times, the median of 5 runs: `--version`, and a real start until its
// Hello reaches a controller.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { stopDataPath } from '../../agent/data-path.js';
import { FakeController } from '../../agent/test-support.js';
import { buildAgentBundle, buildAgentUpgradePackage, buildCliBundle, buildSea, packageVersion, REPO_ROOT } from './bundle.js';
import { buildDebs, treeBytes } from './deb.js';
import { formatBytes } from '../../cli/format.js';
import { median } from '../../test/bench/stats.js';

const OUT_DIR = join(REPO_ROOT, 'dist', 'pkg');
const RUNS = 5;
const HELLO_DEADLINE_MS = 20_000;

/** One agent artifact to time: what prints its version, and what runs the agent (before the agent's flags). */
interface Timed {
  label: string;
  version: string[];
  agent: string[];
}

async function main(): Promise<void> {
  mkdirSync(OUT_DIR, { recursive: true });
  const version = packageVersion();
  const bundle = join(OUT_DIR, 'fleetwave-agent.cjs');
  const sea = join(OUT_DIR, 'fleetwave-agent');
  const cliDir = join(OUT_DIR, 'fleetwave');

  await buildAgentBundle({ outFile: bundle, version });
  const seaResult = await buildSea({ bundle, outFile: sea });
  rmSync(cliDir, { recursive: true, force: true });
  await buildCliBundle({ outDir: cliDir, version });

  console.log(`fleetwave ${version}: artifacts in ${relative(process.cwd(), OUT_DIR) || '.'}/`);
  console.log(`  ${'fleetwave-agent.cjs'.padEnd(22)} ${size(bundle)}  agent bundle: node fleetwave-agent.cjs [agent flags]`);
  if (seaResult.ok) console.log(`  ${'fleetwave-agent'.padEnd(22)} ${size(sea)}  agent single executable (node ${process.versions.node} inside)`);
  else console.log(`  ${'fleetwave-agent'.padEnd(22)} ${'-'.padStart(9)}  no single executable: ${seaResult.reason}`);
  // What `fleetwave agent publish` takes to upgrade agents through fleetwave (docs/agent-upgrade.md).
  const upgradePackage = join(OUT_DIR, `fleetwave-agent-${version}.tar.gz`);
  await buildAgentUpgradePackage({ artifact: seaResult.ok ? sea : bundle, outFile: upgradePackage });
  console.log(`  ${basename(upgradePackage).padEnd(22)} ${size(upgradePackage)}  agent package for fleetwave agent publish ${relative(process.cwd(), upgradePackage)} --version ${version}`);
  console.log(`  ${'fleetwave/'.padEnd(22)} ${size(cliDir)}  CLI bundle: fleetwave.cjs ${size(join(cliDir, 'fleetwave.cjs')).trim()}, fleetwave.lua, console/, node_modules/better-sqlite3`);
  // The Debian packages: the single executable when there is one, else the bundle with this node beside it.
  const debsStarted = performance.now();
  const debs = await buildDebs({ version, agentArtifact: seaResult.ok ? sea : bundle, cliDir, configDir: join(REPO_ROOT, 'deploy', 'config'), outDir: OUT_DIR });
  for (const deb of [debs.agent, debs.controller]) console.log(`  ${basename(deb).padEnd(38)} ${size(deb)}  Debian package (dpkg-deb --info/--contents ${relative(process.cwd(), deb)})`);
  console.log(`  (.deb files built in ${((performance.now() - debsStarted) / 1000).toFixed(0)} s, mostly xz)`);

  const cliMain = join(REPO_ROOT, 'dist', 'cli', 'main.js');
  const timed: Timed[] = [
    { label: 'bundle (node fleetwave-agent.cjs)', version: [process.execPath, bundle, '--version'], agent: [process.execPath, bundle] },
    ...(seaResult.ok ? [{ label: 'single executable (fleetwave-agent)', version: [sea, '--version'], agent: [sea] }] : []),
    // For comparison: the tsc build as `make build` leaves it, and node alone (the floor on this machine now).
    { label: 'tsc dist/ (node dist/cli/main.js agent)', version: [process.execPath, cliMain, '--version'], agent: [process.execPath, cliMain, 'agent'] },
  ];
  console.log(`agent start, median of ${RUNS} runs (--version: to exit; start: to its Hello at a controller, fresh data dir, gate host included)`);
  const controller = new FakeController();
  await controller.start();
  try {
    for (const t of timed) {
      const versionMs = await medianOf(() => timeRun(t.version));
      const helloMs = await medianOf(() => timeHello(t.agent, controller));
      console.log(`  ${t.label.padEnd(42)} --version ${ms(versionMs)}   start ${ms(helloMs)}`);
    }
    console.log(`  ${'node -e 0 (node alone)'.padEnd(42)}           ${ms(await medianOf(() => timeRun([process.execPath, '-e', '0'])))}`);
  } finally {
    controller.stop();
  }
}

/** `COMMAND` until it exits. */
async function timeRun(command: string[]): Promise<number> {
  const started = performance.now();
  const [exe, ...args] = command;
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn(exe!, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', resolve);
  });
  if (code !== 0) throw new Error(`${command.join(' ')} exited ${code}`);
  return performance.now() - started;
}

/** A real agent start on a fresh data dir until its Hello reaches `controller`; then it, its gate host, are stopped. */
async function timeHello(command: string[], controller: FakeController): Promise<number> {
  const dataDir = mkdtempSync(join(tmpdir(), 'fleetwave-dist-'));
  const before = controller.hellos.length;
  const [exe, ...args] = command;
  const started = performance.now();
  const child = spawn(exe!, [...args, '--insecure', '--id', 'dist-timing', '--controller', `127.0.0.1:${controller.port}`, '--nats', '', '--data-dir', dataDir], { stdio: 'ignore' });
  try {
    const deadline = Date.now() + HELLO_DEADLINE_MS;
    while (controller.hellos.length === before) {
      if (child.exitCode !== null) throw new Error(`${command.join(' ')} exited ${child.exitCode} before its Hello`);
      if (Date.now() > deadline) throw new Error(`${command.join(' ')}: no Hello within ${HELLO_DEADLINE_MS} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
    return performance.now() - started;
  } finally {
    if (child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    await stopDataPath(dataDir);
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The median of RUNS sequential runs (one at a time: they would slow each other). */
async function medianOf(run: () => Promise<number>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < RUNS; i++) samples.push(await run());
  return median(samples)!;
}

function size(path: string): string {
  return formatBytes(treeBytes(path)).padStart(9);
}

function ms(value: number): string {
  return `${value.toFixed(0)} ms`.padStart(7);
}

main().catch((err: Error) => {
  console.error(`make dist: ${err.message}`);
  process.exit(1);
});
