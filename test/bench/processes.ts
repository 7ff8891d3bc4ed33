// Plain processes the benchmark starts outside any agent: the sample app on a port, and a standalone traffic gate.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { canConnect, Proc, REPO_ROOT, waitFor } from '../harness/fleet.js';

export const APP_SERVER = join(REPO_ROOT, 'examples', 'app', 'server.js');

/** The sample app listening on `port` as edition `edition`; resolves once it accepts connections. */
export async function startApp(port: number, edition: string, startDelayMs = 0): Promise<Proc> {
  const child = spawn(process.execPath, [APP_SERVER], {
    env: { ...process.env, PORT: String(port), START_DELAY_MS: String(startDelayMs), FLEETWAVE_EDITION: edition },
    stdio: 'ignore',
  });
  await waitFor(`the app on port ${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`app on port ${port} exited with ${child.exitCode}`);
    return canConnect(port);
  });
  return new Proc(`app :${port}`, child);
}

/** A TrafficGate in its own process (as in the agent) in front of `targetPort`. */
export async function startGate(targetPort: number): Promise<Proc & { port: number }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'test', 'bench', 'gate-host.js'), String(targetPort)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve((JSON.parse(d.toString()) as { port: number }).port));
    child.once('exit', (code) => reject(new Error(`gate host exited with ${code}`)));
  });
  return Object.assign(new Proc(`gate -> :${targetPort}`, child), { port });
}
