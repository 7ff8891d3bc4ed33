// Builds the two Debian packages, fleetwave-agent and fleetwave-controller, from already-built artifacts with
// `dpkg-deb --build --root-owner-group` (no network, no debhelper).
//
//   fleetwave-agent_<v>_<arch>.deb       /usr/bin/fleetwave-agent (the SEA executable; or a sh wrapper running the
//                                        bundle with the node shipped in /usr/lib/fleetwave-agent/),
//                                        /etc/fleetwave/agent.yaml, fleetwave-agent.service
//   fleetwave-controller_<v>_<arch>.deb  /usr/bin/fleetwave (sh wrapper) → /usr/lib/fleetwave/{node, fleetwave.cjs,
//                                        fleetwave.lua, node_modules/better-sqlite3, install-nats-users},
//                                        /etc/fleetwave/{controller,router}.yaml, fleetwave-controller.service,
//                                        fleetwave-router.service, fleetwave-nats-users.{path,service}
//
// The maintainer scripts live in deploy/debian/, the units in deploy/systemd/ (the same ones install.sh uses).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { repoRootAbove } from '../../common/repo-root.js';

export interface DebInputs {
  /** Debian version of both packages (e.g. package.json's 0.1.0). */
  version: string;
  /**
   * The agent artifact: an executable (SEA, or any file that runs on its own) becomes /usr/bin/fleetwave-agent;
   * a `.cjs`/`.js` bundle is shipped with `nodeBinary` and a sh wrapper instead.
   */
  agentArtifact: string;
  /** buildCliBundle's output: fleetwave.cjs and what sits beside it (fleetwave.lua, node_modules/better-sqlite3), copied as it is. */
  cliDir: string;
  /** Holds agent.yaml, controller.yaml and router.yaml (the conffiles). */
  configDir: string;
  /** Where the .deb files go (created). */
  outDir: string;
  /** The node executable shipped beside the bundles; default the one running this. */
  nodeBinary?: string;
  /** better-sqlite3's package dir, used when cliDir has no node_modules/better-sqlite3; default the repo's. */
  betterSqlite3Dir?: string;
  /** Debian architecture; default `dpkg --print-architecture`. */
  arch?: string;
  /** dpkg-deb's compressor: xz (smallest, the default) or gzip (fast, for tests). */
  compression?: 'xz' | 'gzip' | 'none';
}

export interface BuiltDebs {
  agent: string;
  controller: string;
}

/** The repository root, from source or from dist/ (dist has no package.json of its own). */
export const REPO_ROOT = repoRootAbove(import.meta.url);

const MAINTAINER = 'fleetwave maintainers <fleetwave@localhost>';
/** What the shipped node (and a SEA, which is node) links against. */
const NODE_DEPENDS = 'libc6 (>= 2.28), libstdc++6, libgcc-s1, passwd';
const CONFFILES = { agent: ['agent.yaml'], controller: ['controller.yaml', 'router.yaml'] } as const;

export async function buildDebs(inputs: DebInputs): Promise<BuiltDebs> {
  checkInputs(inputs);
  const arch = inputs.arch ?? execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  mkdirSync(inputs.outDir, { recursive: true });
  const work = mkdtempSync(join(tmpdir(), 'fleetwave-deb-'));
  try {
    const agentRoot = join(work, 'agent');
    stageAgent(agentRoot, inputs);
    const agent = packDeb(agentRoot, inputs, {
      name: 'fleetwave-agent',
      arch,
      description: 'fleetwave agent: runs and releases apps on this host for a fleetwave controller',
      scripts: 'agent',
    });
    const controllerRoot = join(work, 'controller');
    stageController(controllerRoot, inputs);
    const controller = packDeb(controllerRoot, inputs, {
      name: 'fleetwave-controller',
      arch,
      description: 'fleetwave controller, router and the fleetwave command',
      scripts: 'controller',
    });
    return { agent, controller };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function checkInputs(i: DebInputs): void {
  if (!/^[0-9][A-Za-z0-9.+~-]*$/.test(i.version)) throw new Error(`deb: version "${i.version}" is not a Debian version (digits first, then [A-Za-z0-9.+~-])`);
  if (!isFile(i.agentArtifact)) throw new Error(`deb: agent artifact ${i.agentArtifact} is missing (make dist builds it)`);
  if (!isFile(join(i.cliDir, 'fleetwave.cjs'))) throw new Error(`deb: ${join(i.cliDir, 'fleetwave.cjs')} is missing (the CLI bundle)`);
  for (const file of [...CONFFILES.agent, ...CONFFILES.controller]) {
    if (!isFile(join(i.configDir, file))) throw new Error(`deb: config ${join(i.configDir, file)} is missing`);
  }
}

/** True when the agent artifact needs a node beside it (a JavaScript bundle, not an executable). */
export function isBundle(artifact: string): boolean {
  return /\.(c?js|mjs)$/.test(artifact);
}

function stageAgent(root: string, i: DebInputs): void {
  if (isBundle(i.agentArtifact)) {
    const lib = join(root, 'usr/lib/fleetwave-agent');
    install(i.nodeBinary ?? process.execPath, join(lib, 'node'), 0o755);
    install(i.agentArtifact, join(lib, 'fleetwave-agent.cjs'), 0o644);
    writeWrapper(join(root, 'usr/bin/fleetwave-agent'), 'fleetwave-agent', 'fleetwave-agent.cjs');
  } else {
    install(i.agentArtifact, join(root, 'usr/bin/fleetwave-agent'), 0o755);
  }
  install(join(i.configDir, 'agent.yaml'), join(root, 'etc/fleetwave/agent.yaml'), 0o600);
  installUnit(root, 'fleetwave-agent.service');
}

function stageController(root: string, i: DebInputs): void {
  const lib = join(root, 'usr/lib/fleetwave');
  mkdirSync(lib, { recursive: true });
  cpSync(i.cliDir, lib, { recursive: true, dereference: true });
  install(i.nodeBinary ?? process.execPath, join(lib, 'node'), 0o755);
  if (!existsSync(join(lib, 'node_modules/better-sqlite3'))) copyBetterSqlite3(i.betterSqlite3Dir ?? join(REPO_ROOT, 'node_modules/better-sqlite3'), lib);
  writeWrapper(join(root, 'usr/bin/fleetwave'), 'fleetwave', 'fleetwave.cjs');
  for (const file of CONFFILES.controller) install(join(i.configDir, file), join(root, 'etc/fleetwave', file), 0o640);
  installUnit(root, 'fleetwave-controller.service');
  installUnit(root, 'fleetwave-router.service');
  // Root installs the NATS users file the unprivileged controller writes (enabled by hand where NATS is local).
  installUnit(root, 'fleetwave-nats-users.path');
  installUnit(root, 'fleetwave-nats-users.service');
  install(join(REPO_ROOT, 'deploy/nats/install-nats-users.sh'), join(lib, 'install-nats-users'), 0o755);
}

/**
 * better-sqlite3 at run time: its lib/, package.json and the compiled addon, plus `bindings` (and its one
 * dependency) that finds the addon. Build-time files (sources, deps/, obj/) stay out: ~2 MB instead of ~40.
 */
function copyBetterSqlite3(from: string, lib: string): void {
  const addon = join(from, 'build/Release/better_sqlite3.node');
  if (!isFile(addon)) throw new Error(`deb: ${addon} is missing (better-sqlite3 must be built for this node)`);
  const to = join(lib, 'node_modules/better-sqlite3');
  cpSync(join(from, 'lib'), join(to, 'lib'), { recursive: true });
  install(join(from, 'package.json'), join(to, 'package.json'), 0o644);
  install(addon, join(to, 'build/Release/better_sqlite3.node'), 0o644);
  const modules = dirname(from);
  for (const dep of ['bindings', 'file-uri-to-path']) {
    if (existsSync(join(modules, dep))) cpSync(join(modules, dep), join(lib, 'node_modules', dep), { recursive: true, dereference: true });
  }
}

/** /usr/bin/NAME: runs ../lib/NAME/node on the bundle, found from the wrapper's own path (so it works under any root). */
function writeWrapper(path: string, libName: string, bundle: string): void {
  const script = [
    '#!/bin/sh',
    `# ${basename(path)}: the bundled fleetwave with the node it was built for (both in /usr/lib/${libName}).`,
    `lib="$(dirname "$(readlink -f "$0")")/../lib/${libName}"`,
    `exec "$lib/node" "$lib/${bundle}" "$@"`,
    '',
  ].join('\n');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, script, { mode: 0o755 });
  chmodSync(path, 0o755);
}

function installUnit(root: string, unit: string): void {
  install(join(REPO_ROOT, 'deploy/systemd', unit), join(root, 'lib/systemd/system', unit), 0o644);
}

function packDeb(root: string, i: DebInputs, p: { name: string; arch: string; description: string; scripts: 'agent' | 'controller' }): string {
  const debian = join(root, 'DEBIAN');
  mkdirSync(debian, { recursive: true });
  const control = [
    `Package: ${p.name}`,
    `Version: ${i.version}`,
    `Architecture: ${p.arch}`,
    `Maintainer: ${MAINTAINER}`,
    `Installed-Size: ${Math.ceil(treeBytes(root) / 1024)}`,
    `Depends: ${NODE_DEPENDS}`,
    'Section: admin',
    'Priority: optional',
    `Description: ${p.description}`,
    ' fleetwave releases new editions of an application to a fleet of hosts in phases, without losing a request.',
    '',
  ].join('\n');
  writeFileSync(join(debian, 'control'), control, { mode: 0o644 });
  writeFileSync(join(debian, 'conffiles'), CONFFILES[p.scripts].map((f) => `/etc/fleetwave/${f}\n`).join(''), { mode: 0o644 });
  const common = readFileSync(join(REPO_ROOT, 'deploy/debian/common.sh'), 'utf8');
  for (const script of ['postinst', 'prerm', 'postrm']) {
    const text = readFileSync(join(REPO_ROOT, 'deploy/debian', p.scripts, script), 'utf8').replace('#COMMON#', common.trimEnd());
    writeFileSync(join(debian, script), text, { mode: 0o755 });
    chmodSync(join(debian, script), 0o755);
  }
  const out = join(i.outDir, `${p.name}_${i.version}_${p.arch}.deb`);
  execFileSync('dpkg-deb', ['--build', '--root-owner-group', `-Z${i.compression ?? 'xz'}`, root, out], { stdio: ['ignore', 'ignore', 'pipe'] });
  return out;
}

function install(from: string, to: string, mode: number): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
  chmodSync(to, mode);
}

/** Bytes of a file, or of every file under a directory (Installed-Size, and `make dist`'s size column). */
export function treeBytes(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, name) => sum + treeBytes(join(path, name)), 0);
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}

