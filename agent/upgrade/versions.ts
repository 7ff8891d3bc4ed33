// The agent programs kept on the host for self-upgrade (docs/agent-upgrade.md), under <data-dir>/agent-versions/:
//   <version>/       an unpacked agent package: fleetwave-agent.cjs (run with node) or an executable fleetwave-agent
//   current.json     the kept version the keeper runs (absent: the keeper's own program)
//   next.json        a version staged by UpgradeAgent, for the keeper to try
//   failed.json      the last try the keeper rolled back, reported in Hello until the next staging
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomically } from '../json-file.js';

/** The worker's exit code meaning "a version is staged in next.json: start it". */
export const UPGRADE_EXIT_CODE = 75;
/** Set by the keeper in its worker's environment: the worker may stage upgrades and tells the keeper when it is in. */
export const KEEPER_ENV = 'FLEETWAVE_AGENT_KEEPER';
/** The file names an agent package may hold, in the order they are looked for. */
export const ARTIFACT_NAMES = ['fleetwave-agent.cjs', 'fleetwave-agent.js', 'fleetwave-agent'] as const;

export interface AgentVersion {
  version: string;
  /** Absolute path of the program: a .js/.cjs file run with node, or an executable. */
  artifact: string;
}

export interface UpgradeFailureRecord {
  version: string;
  reason: string;
  failedUnixMs: number;
}

export function versionsDir(dataDir: string): string {
  return join(dataDir, 'agent-versions');
}

export function versionDir(dataDir: string, version: string): string {
  return join(versionsDir(dataDir), version);
}

const file = (dataDir: string, name: 'current' | 'next' | 'failed') => join(versionsDir(dataDir), `${name}.json`);

/** The program in an unpacked package directory, or undefined when it holds none. */
export function findArtifact(dir: string, executableOnly = false): string | undefined {
  // A single executable agent has no node to run a script with: only an executable will do.
  for (const name of executableOnly ? ['fleetwave-agent'] : ARTIFACT_NAMES) {
    const path = join(dir, name);
    if (existsSync(path) && statSync(path).isFile()) return path;
  }
  return undefined;
}

/** How to run a program: node for a script, the file itself otherwise. */
export function launchOf(artifact: string, nodePath = process.execPath): { command: string; args: string[] } {
  return /\.(c|m)?js$/.test(artifact) ? { command: nodePath, args: [artifact] } : { command: artifact, args: [] };
}

function readJson<T>(path: string, check: (value: any) => boolean): T | undefined {
  try {
    const value = JSON.parse(readFileSync(path, 'utf8'));
    return check(value) ? (value as T) : undefined;
  } catch {
    // Absent or torn (an atomic write never leaves it torn; a hand edit might): as if absent.
    return undefined;
  }
}

const isVersion = (v: any) => typeof v?.version === 'string' && typeof v?.artifact === 'string';

export const readCurrent = (dataDir: string) => readJson<AgentVersion>(file(dataDir, 'current'), isVersion);
export const readNext = (dataDir: string) => readJson<AgentVersion>(file(dataDir, 'next'), isVersion);
export const readFailure = (dataDir: string) =>
  readJson<UpgradeFailureRecord>(file(dataDir, 'failed'), (v) => typeof v?.version === 'string' && typeof v?.reason === 'string');

function write(dataDir: string, name: 'current' | 'next' | 'failed', value: object): Promise<void> {
  mkdirSync(versionsDir(dataDir), { recursive: true, mode: 0o700 });
  return writeAtomically(file(dataDir, name), JSON.stringify(value));
}

export const writeCurrent = (dataDir: string, v: AgentVersion) => write(dataDir, 'current', v);
export const writeNext = (dataDir: string, v: AgentVersion) => write(dataDir, 'next', v);
export const writeFailure = (dataDir: string, f: UpgradeFailureRecord) => write(dataDir, 'failed', f);

export function clearNext(dataDir: string): void {
  rmSync(file(dataDir, 'next'), { force: true });
}

export function clearFailure(dataDir: string): void {
  rmSync(file(dataDir, 'failed'), { force: true });
}

/** Removes unpacked versions other than `keep` (the committed one and the one before it, for a manual way back). */
export function pruneVersions(dataDir: string, keep: readonly string[]): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(versionsDir(dataDir), { withFileTypes: true }).filter((d) => d.isDirectory() && !d.name.startsWith('.')).map((d) => d.name);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (keep.includes(name)) continue;
    rmSync(versionDir(dataDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
