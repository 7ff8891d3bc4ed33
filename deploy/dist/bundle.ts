// The artifacts `make dist` builds from the sources: the agent as one CommonJS file with every npm dependency inlined
// (nothing to compile or install on a host), a Node single executable made from it, and the whole `fleetwave` CLI as
// one file with better-sqlite3 (native) beside it. Code that behaves differently in them reads common/artifact.ts.
import { execFile } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { build, type BuildOptions } from 'esbuild';
import * as tar from 'tar';
import { repoRootAbove } from '../../common/repo-root.js';
import { buildConsole } from '../console/build.js';

const run = promisify(execFile);

/** The repository root, from source (vitest) or from dist/deploy/dist/. */
export const REPO_ROOT = repoRootAbove(import.meta.url);

/**
 * The native module the controller needs at run time and the packages it loads its addon with: what each needs
 * (better-sqlite3's build tree also holds sqlite's objects and sources, 28 MB; only the .node is loaded).
 */
const SQLITE_FILES: Record<string, string[]> = {
  'better-sqlite3': ['package.json', 'LICENSE', 'lib', 'build/Release/better_sqlite3.node'],
  bindings: ['.'],
  'file-uri-to-path': ['.'],
};
/** Sentinel of the fuse postject flips in the node binary (Node's single-executable docs). */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export type SeaResult = { ok: true } | { ok: false; reason: string };

/** package.json's version: what the artifacts report unless told otherwise. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * `fleetwave-agent` as one CommonJS file (agent/bin.ts): `node OUT_FILE [agent flags]`. No native module and no
 * file beside it; `version` (default package.json's) is the version its Hello reports.
 */
export async function buildAgentBundle(o: { outFile: string; version?: string }): Promise<void> {
  const { metafile } = await build(bundleOptions('agent', 'agent/bin.ts', o.outFile, o.version, []));
  const native = Object.keys(metafile.inputs).filter((f) => f.endsWith('.node') || f.includes('node_modules/better-sqlite3/'));
  if (native.length) throw new Error(`the agent bundle would load native code: ${native.join(', ')}`);
}

/**
 * The whole `fleetwave` CLI (controller, router, agent, admin verbs) in OUT_DIR: fleetwave.cjs, the router's
 * fleetwave.lua beside it (read at run time), the web console in console/ (the controller serves it from beside
 * itself), and node_modules/ with better-sqlite3 (its compiled addon) and the packages it loads that with.
 * `node OUT_DIR/fleetwave.cjs controller ...`.
 */
export async function buildCliBundle(o: { outDir: string; version?: string }): Promise<void> {
  mkdirSync(o.outDir, { recursive: true });
  await build(bundleOptions('cli', 'cli/main.ts', join(o.outDir, 'fleetwave.cjs'), o.version, ['better-sqlite3']));
  copyFileSync(join(REPO_ROOT, 'router', 'fleetwave.lua'), join(o.outDir, 'fleetwave.lua'));
  await buildConsole({ outDir: join(o.outDir, 'console') });
  for (const [name, parts] of Object.entries(SQLITE_FILES)) {
    const from = join(REPO_ROOT, 'node_modules', name);
    if (!existsSync(from)) throw new Error(`${relative(REPO_ROOT, from)} is missing: run npm ci`);
    for (const part of parts) cpSync(join(from, part), join(o.outDir, 'node_modules', name, part), { recursive: true, dereference: true });
  }
}

/**
 * A Node single executable (this node binary with `bundle` injected): `OUT_FILE [agent flags]`. Not an error when the
 * node binary cannot make one (a build without the fuse, no postject): `reason` says why.
 */
export async function buildSea(o: { bundle: string; outFile: string }): Promise<SeaResult> {
  const postject = join(REPO_ROOT, 'node_modules', '.bin', 'postject');
  if (!existsSync(postject)) return { ok: false, reason: `no ${relative(REPO_ROOT, postject)} (npm ci installs it)` };
  if (!readFileSync(process.execPath).includes(SEA_FUSE)) return { ok: false, reason: `${process.execPath} has no single-executable fuse` };
  const work = mkdtempSync(join(tmpdir(), 'fleetwave-sea-'));
  try {
    const blob = join(work, 'sea.blob');
    const config = join(work, 'sea-config.json');
    // Code cache: V8 compiles the bundle at build time, which shortens every start (the bundle never calls import()).
    writeFileSync(config, JSON.stringify({ main: resolve(o.bundle), output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
    await run(process.execPath, ['--experimental-sea-config', config], { cwd: work });
    mkdirSync(dirname(o.outFile), { recursive: true });
    rmSync(o.outFile, { force: true });
    copyFileSync(process.execPath, o.outFile);
    chmodSync(o.outFile, 0o755);
    await run(postject, [o.outFile, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', SEA_FUSE], { maxBuffer: 16 << 20 });
    return { ok: true };
  } catch (err) {
    rmSync(o.outFile, { force: true });
    const e = err as Error & { stderr?: string };
    return { ok: false, reason: (e.stderr?.trim() || e.message).split('\n')[0]! };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

function bundleOptions(kind: 'agent' | 'cli', entry: string, outFile: string, version: string | undefined, external: string[]): BuildOptions & { metafile: true } {
  return {
    entryPoints: [join(REPO_ROOT, entry)],
    outfile: outFile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external,
    minify: true,
    // Error and class names stay readable in logs.
    keepNames: true,
    metafile: true,
    logLevel: 'error',
    legalComments: 'none',
    define: {
      FLEETWAVE_BUNDLE: JSON.stringify(kind),
      FLEETWAVE_VERSION: JSON.stringify(version ?? packageVersion()),
      // import.meta is empty in CommonJS: modules that find files beside themselves (the router's lua) look beside the bundle.
      'import.meta.url': '__fleetwave_bundle_url',
    },
    banner: { js: `var __fleetwave_bundle_url = require('node:url').pathToFileURL(__filename).href;` },
  };
}


/**
 * The package `fleetwave agent publish FILE --version V` takes (docs/agent-upgrade.md): a tar.gz holding the agent
 * program at its top level — the single executable `fleetwave-agent` (what the Debian package's agent runs; it has no
 * node for a script), or else the bundle `fleetwave-agent.cjs`.
 */
export async function buildAgentUpgradePackage(o: { artifact: string; outFile: string }): Promise<void> {
  const name = o.artifact.endsWith('.cjs') ? 'fleetwave-agent.cjs' : 'fleetwave-agent';
  const staging = mkdtempSync(join(tmpdir(), 'fleetwave-agent-pkg-'));
  try {
    copyFileSync(o.artifact, join(staging, name));
    chmodSync(join(staging, name), 0o755);
    await tar.create({ gzip: true, file: o.outFile, cwd: staging, portable: true }, [name]);
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}
