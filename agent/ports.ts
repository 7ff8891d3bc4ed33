// Finds free TCP ports on 127.0.0.1: any (port 0), or one for an app's internal port, reserved host-wide.
//
//   candidate (random start in 10000–20000, then the next ones) ──a service port?──▶ skip
//        │ ──reserved by a live agent in the host's port registry?──▶ skip
//        │ ──cannot bind it now?──▶ drop the reservation, skip
//        ▼
//   reserved: a file <registry>/<port> holding our pid, removed by release() (a dead pid's file is taken over)
//
// The registry is a directory every agent on the host shares (default /tmp/fleetwave-ports): two agents never pick
// the same internal port, and none picks a port another agent's gate serves on (service ports are reserved too),
// even while that agent or its app is down. A port taken outside fleetwave is caught by the bind check, and a race
// left after it (taken between the check and the app's bind) by the start's retry on another port (instance.ts).
import { chmodSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Internal app ports come from below Linux's ephemeral range (32768+ by default), so an outbound
 * connection's local port can never be holding the port when the app binds it. */
export const INTERNAL_RANGE = { from: 10_000, to: 20_000 } as const;

/** The host-wide directory of reserved ports; FLEETWAVE_PORT_REGISTRY moves it (tests, several hosts' agents in one box). */
export function defaultRegistryDir(): string {
  return process.env.FLEETWAVE_PORT_REGISTRY || join(tmpdir(), 'fleetwave-ports');
}

/** A port held for this agent until released. */
export interface PortReservation {
  readonly port: number;
  /** Gives the port back (idempotent). */
  release(): void;
}

export interface InternalPortOptions {
  /** Ports never chosen: every service port this agent serves on. */
  avoid?: Iterable<number>;
  registryDir?: string;
  random?: () => number;
  /** Whether the port can be bound now (tests replace it). */
  canBind?: (port: number) => Promise<boolean>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Every port of the range once, from a random start, wrapping around: the order candidates are tried in. */
export function* candidatePorts(random: () => number = Math.random, range: { from: number; to: number } = INTERNAL_RANGE): Generator<number> {
  const size = range.to - range.from;
  const start = Math.floor(random() * size);
  for (let i = 0; i < size; i++) yield range.from + ((start + i) % size);
}

/** Chooses and reserves a port for an app to listen on behind its gate (see the header for what it never clashes with). */
export async function reserveInternalPort(options: InternalPortOptions = {}): Promise<PortReservation> {
  const avoid = new Set(options.avoid ?? []);
  const dir = options.registryDir ?? defaultRegistryDir();
  const bindable = options.canBind ?? canBind;
  for (const port of candidatePorts(options.random)) {
    if (avoid.has(port)) continue;
    const reservation = reservePort(port, dir);
    if (!reservation) continue;
    if (await bindable(port)) return reservation;
    reservation.release();
  }
  // The whole range taken: any free port, unreserved (the bind check still applies before each start).
  const port = await freePort();
  return { port, release: () => {} };
}

/**
 * Reserves `port` in the registry, or returns null when a live process holds it. A registry that cannot be written
 * (another user's directory) reserves nothing and lets the caller go on with the bind check alone.
 */
export function reservePort(port: number, dir: string = defaultRegistryDir()): PortReservation | null {
  const file = join(dir, String(port));
  if (!ensureDir(dir)) return { port, release: () => {} };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx', mode: 0o644 });
      let held = true;
      return {
        port,
        release: () => {
          if (!held) return;
          held = false;
          if (ownerOf(file) === process.pid) removeQuietly(file);
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return { port, release: () => {} };
      const owner = ownerOf(file);
      // A file whose owner died (an agent killed with -9) is stale; one being written right now (no pid yet) is not.
      if (owner === undefined || isAlive(owner)) return null;
      removeQuietly(file);
    }
  }
  return null;
}

function ensureDir(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    try {
      // Shared by every agent of the host, whatever user it runs as; sticky, so none removes another's file.
      chmodSync(dir, 0o1777);
    } catch {
      // Not ours: another agent made it so already.
    }
    return true;
  } catch {
    return false;
  }
}

function ownerOf(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Gone already, or not ours to remove.
  }
}
