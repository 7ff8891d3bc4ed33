// Plain processes the benchmark starts outside any agent: the sample app on a port, and a standalone traffic gate.
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { REPO_ROOT, waitFor } from '../harness/fleet.js';

export const APP_SERVER = join(REPO_ROOT, 'examples', 'app', 'server.js');

export interface Child {
  child: ChildProcess;
  /** SIGTERM, then waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<void>;
}

function wrap(child: ChildProcess): Child {
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The sample app listening on `port` as edition `edition`; resolves once it accepts connections. */
export async function startApp(port: number, edition: string, startDelayMs = 0): Promise<Child> {
  const child = spawn(process.execPath, [APP_SERVER], {
    env: { ...process.env, PORT: String(port), START_DELAY_MS: String(startDelayMs), FLEETWAVE_EDITION: edition },
    stdio: 'ignore',
  });
  await waitFor(`the app on port ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`app on port ${port} exited with ${child.exitCode}`);
    return listening(port);
  });
  return wrap(child);
}

/** A TrafficGate in its own process (as in the agent) in front of `targetPort`. */
export async function startGate(targetPort: number): Promise<Child & { port: number }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'test', 'bench', 'gate-host.js'), String(targetPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`gate host exited with ${code}`)));
  });
  return { ...wrap(child), port };
}

export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
