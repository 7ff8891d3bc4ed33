// The one nats-server launcher for every suite (unit tests of the NATS clients, integration, faults, bench, demo).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../../agent/ports.js';
import { Proc, spawnProc } from './proc.js';
import { waitFor } from './wait.js';

/** Whether nats-server is installed (suites that only need it skip without it; `make setup` installs it). */
export const HAS_NATS_SERVER = spawnSync('nats-server', ['--version']).status === 0;

export interface Nats {
  url: string;
  port: number;
  proc: Proc;
  stop(): Promise<void>;
  /** SIGKILL: the server dies without a goodbye to its clients. */
  kill(): Promise<void>;
  /** Starts nats-server again on the same port and store (after stop or kill). */
  restart(): Promise<void>;
  /** Where nats-server writes its pid (SIGHUP there reloads its config); only with a raw config. */
  pidFile: string;
}

/** What a NATS user may publish and subscribe to (nats-server's `permissions` block); everything when absent. */
export interface NatsPermissions {
  publish?: { allow?: string[]; deny?: string[] };
  subscribe?: { allow?: string[]; deny?: string[] };
}

/** Users a nats-server started with `auth` accepts; nobody else may connect. */
export interface NatsUsers {
  users: Array<{ user: string; password: string; permissions?: NatsPermissions }>;
}

/**
 * A real nats-server with JetStream on a loopback port (`port`, else a free one), storing under `dir`; with `auth`,
 * only those users get in. Resolves once it accepts connections.
 */
export async function startNats(dir: string, logFile?: string, auth?: NatsUsers, port?: number, rawConfig?: string): Promise<Nats> {
  mkdirSync(dir, { recursive: true });
  const listenPort = port ?? (await freePort());
  const pidFile = join(dir, 'nats.pid');
  const config: string[] = [];
  if (rawConfig !== undefined) {
    config.push('-P', pidFile);
    // The caller's own config text (e.g. an `include` of a users file); relative includes resolve from `dir`.
    // JetStream goes in the file: nats-server 2.9 shuts JetStream down on a reload (SIGHUP) when only -js enabled it.
    const file = join(dir, 'nats.conf');
    writeFileSync(file, `jetstream { store_dir: ${JSON.stringify(dir)} }\n${rawConfig}`);
    config.push('-c', file);
  }
  if (auth) {
    const file = join(dir, 'auth.conf');
    const permissions = (u: NatsUsers['users'][number]) => (u.permissions ? `, permissions: ${JSON.stringify(u.permissions)}` : '');
    const users = auth.users.map((u) => `    { user: ${JSON.stringify(u.user)}, password: ${JSON.stringify(u.password)}${permissions(u)} }`).join('\n');
    writeFileSync(file, `authorization {\n  users = [\n${users}\n  ]\n}\n`);
    config.push('-c', file);
  }
  const launch = async (): Promise<Proc> => {
    const proc = spawnProc('nats-server', 'nats-server', [...config, '-a', '127.0.0.1', '-p', String(listenPort), ...(rawConfig === undefined ? ['-js', '-sd', dir] : [])], logFile);
    await waitFor(`nats-server on port ${listenPort}`, async () => {
      if (!proc.running) throw new Error(`nats-server exited: ${proc.tail()}`);
      return (await canConnect(listenPort)) || undefined;
    });
    return proc;
  };
  const nats: Nats = {
    url: `nats://127.0.0.1:${listenPort}`,
    port: listenPort,
    pidFile,
    proc: await launch(),
    stop: () => nats.proc.stop(),
    kill: () => nats.proc.kill(),
    restart: async () => {
      nats.proc = await launch();
    },
  };
  return nats;
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function canConnect(port: number): Promise<boolean> {
  return new Promise((r) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      r(true);
    });
    socket.once('error', () => r(false));
  });
}
