// What outlives a stopped agent on purpose, from outside it: its gate host's held-time figures, and stopping the gate
// host and the app processes it recorded (tests, uninstall).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GateLink } from './gate-link.js';
import { gateSocketPath } from './gate-protocol.js';
import type { HoldFigures } from './hold-stats.js';
import type { AppRecord } from './state.js';
import { alive, processStartTime } from './supervisor.js';

const STOP_TIMEOUT_MS = 5000;

/** Held-time figures of every gate of a data dir's gate host (the bench reads them); {} when none answers. */
export async function readGateStats(dataDir: string, reset = false): Promise<Record<string, HoldFigures>> {
  const link = await GateLink.connect(gateSocketPath(dataDir));
  if (!link) return {};
  try {
    return (await link.request({ op: 'stats', reset })).stats ?? {};
  } finally {
    link.close();
  }
}

/** Closes the data dir's gate host (if one answers) and stops the recorded apps (SIGTERM, then SIGKILL). Idempotent. */
export async function stopDataPath(dataDir: string): Promise<void> {
  await stopGateHost(dataDir);
  await Promise.all(recordedApps(dataDir).map((a) => stopGroup(a.pid!, a.pidStartTime!)));
}

async function stopGateHost(dataDir: string): Promise<void> {
  const path = gateSocketPath(dataDir);
  if (!existsSync(path)) return;
  const link = await GateLink.connect(path);
  if (!link) return;
  const hello = await link.request({ op: 'hello' }).catch(() => undefined);
  await link.request({ op: 'shutdown' }).catch(() => undefined);
  link.close();
  const pid = hello?.pid;
  if (!pid) return;
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (alive(pid) && Date.now() < deadline) await delay(20);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

function recordedApps(dataDir: string): AppRecord[] {
  try {
    const apps = JSON.parse(readFileSync(join(dataDir, 'apps.json'), 'utf8')) as Record<string, AppRecord>;
    return Object.values(apps).filter((a) => a.pid && a.pidStartTime);
  } catch {
    return [];
  }
}

async function stopGroup(pid: number, startTime: string): Promise<void> {
  if (processStartTime(pid) !== startTime) return;
  kill(-pid, 'SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (processStartTime(pid) === startTime && Date.now() < deadline) await delay(20);
  kill(-pid, 'SIGKILL');
}

function kill(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Gone already.
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
