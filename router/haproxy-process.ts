// The haproxy the router drives: attached to when its admin socket answers, else (with --haproxy-bin) started from a
// generated configuration, detached, in daemon mode with a pid file in the run dir, so it outlives the router and
// the next router attaches to it. Without --haproxy-bin a socket that does not answer is the operator's to fix.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BadInputError, FleetwaveError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { generateConfig, mapPath, type FrontedApp } from './haproxy-config.js';
import { haproxyPid } from './haproxy-state.js';
import { socketError, type RuntimeApi } from './runtime.js';

export class HaproxyStartError extends FleetwaveError {}

export const RUN_FILES = { config: 'haproxy.cfg', pid: 'haproxy.pid', lua: 'fleetwave.lua', log: 'haproxy-start.log' } as const;
const START_TIMEOUT_MS = 15_000;

export interface HaproxySetup {
  apps: readonly FrontedApp[];
  slots: number;
  runDir: string;
  socketPath: string;
  /** '' when the router may not start haproxy. */
  haproxyBin: string;
  threads: number;
}

/** fleetwave.lua: beside this file (a build that copied it), else in the source tree's router/ (dist/router/ → router/). */
export function luaScriptPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, RUN_FILES.lua), join(here, '..', '..', 'router', RUN_FILES.lua)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new HaproxyStartError(`no ${RUN_FILES.lua} at ${candidates.join(' or ')}`);
  return found;
}

/** The configuration for `setup`, with every path in the run dir. */
export function runDirConfig(setup: HaproxySetup, daemon = true): string {
  return generateConfig({
    apps: setup.apps,
    slots: setup.slots,
    mapDir: setup.runDir,
    socketPath: setup.socketPath,
    luaFile: join(setup.runDir, RUN_FILES.lua),
    pidFile: daemon ? join(setup.runDir, RUN_FILES.pid) : '',
    threads: setup.threads,
  });
}

/** Attaches to the haproxy behind the socket, or starts one; resolves to its pid and whether this call started it. */
export async function ensureHaproxy(setup: HaproxySetup, api: RuntimeApi, logger: Logger): Promise<{ pid: number; started: boolean }> {
  if (await api.answers()) {
    const pid = await haproxyPid(api);
    logger.info({ socket: setup.socketPath, pid }, 'attached to the running haproxy');
    return { pid, started: false };
  }
  if (!setup.haproxyBin) {
    try {
      await api.one('show info');
    } catch (err) {
      throw new BadInputError(`${(err as Error).message}; give --haproxy-bin to have the router start one`, { cause: err });
    }
    throw new BadInputError(socketError(setup.socketPath, new Error('no answer')).message);
  }
  const pid = await startHaproxy(setup, api);
  logger.info({ socket: setup.socketPath, pid, config: join(setup.runDir, RUN_FILES.config) }, 'started haproxy');
  return { pid, started: true };
}

async function startHaproxy(setup: HaproxySetup, api: RuntimeApi): Promise<number> {
  const { runDir } = setup;
  mkdirSync(runDir, { recursive: true });
  copyFileSync(luaScriptPath(), join(runDir, RUN_FILES.lua));
  // Maps start empty: the router fills them once the controller has described the apps.
  for (const { app } of setup.apps) writeFileSync(mapPath(runDir, app), '');
  const config = join(runDir, RUN_FILES.config);
  writeFileSync(config, runDirConfig(setup));
  const logFile = join(runDir, RUN_FILES.log);
  const log = openSync(logFile, 'w');
  let code: number | null;
  try {
    // In daemon mode the launched process forks haproxy into its own session and exits once it is running (or
    // with the reason it could not: a port in use, a bad config). Its output goes to a file: the daemon keeps the
    // descriptors it was given, and a pipe to the router would keep the router's event loop busy.
    const child = spawn(setup.haproxyBin, ['-f', config], { detached: true, stdio: ['ignore', log, log] });
    code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', (err) => reject(new HaproxyStartError(`cannot run ${setup.haproxyBin}: ${err.message}`, { cause: err })));
      child.once('exit', (c) => resolve(c));
    });
  } finally {
    closeSync(log);
  }
  if (code !== 0) throw new HaproxyStartError(`haproxy did not start (exit ${code}): ${firstAlert(readFileSync(logFile, 'utf8'))} (${logFile})`);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await api.answers())) {
    if (Date.now() > deadline) throw new HaproxyStartError(`haproxy started but its admin socket ${setup.socketPath} did not answer within ${START_TIMEOUT_MS} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
  return haproxyPid(api);
}

/** haproxy's first alert names the cause ("cannot bind socket … for [0.0.0.0:8080]"); later ones only say it exits. */
function firstAlert(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const alert = lines.find((l) => l.includes('[ALERT]'));
  return (alert ?? lines.pop() ?? 'no output').replace(/^\[ALERT\]\s*\(\d+\)\s*:\s*/, '');
}
