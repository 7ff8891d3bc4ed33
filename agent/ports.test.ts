// Internal port choice: in range, never a service port, never one another agent reserved, never one bound now.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { candidatePorts, INTERNAL_RANGE, reserveInternalPort, reservePort } from './ports.js';
import { tempDir } from './test-support.js';

const dir = tempDir('ports');
afterAll(() => dir.remove());

/** Always starts the candidate scan at the first port of the range. */
const fromStart = () => 0;

describe('candidatePorts', () => {
  it('walks the whole range once from a random start, wrapping around', () => {
    const ports = [...candidatePorts(() => 0.5, { from: 100, to: 104 })];
    expect(ports).toEqual([102, 103, 100, 101]);
  });
});

describe('reserveInternalPort', () => {
  it('skips service ports and ports that cannot be bound', async () => {
    const registryDir = join(dir.path, 'skip');
    const first = INTERNAL_RANGE.from;
    const taken = new Set([first + 1]);
    const port = await reserveInternalPort({ avoid: [first], registryDir, random: fromStart, canBind: async (p) => !taken.has(p) });
    expect(port.port).toBe(first + 2);
    // The unbindable candidate's reservation was dropped on the way.
    expect(existsSync(join(registryDir, String(first + 1)))).toBe(false);
    port.release();
  });

  it('never hands out a port another live process reserved, and takes over a dead one\'s', async () => {
    const registryDir = join(dir.path, 'shared');
    const first = INTERNAL_RANGE.from;
    const a = await reserveInternalPort({ registryDir, random: fromStart, canBind: async () => true });
    const b = await reserveInternalPort({ registryDir, random: fromStart, canBind: async () => true });
    expect([a.port, b.port]).toEqual([first, first + 1]);
    expect(readFileSync(join(registryDir, String(first)), 'utf8')).toBe(String(process.pid));
    // A reservation left by a process that is gone (an agent killed with -9) is stale.
    writeFileSync(join(registryDir, String(first + 2)), '999999999');
    const c = await reserveInternalPort({ registryDir, random: fromStart, canBind: async () => true });
    expect(c.port).toBe(first + 2);
    a.release();
    expect(existsSync(join(registryDir, String(first)))).toBe(false);
    const again = await reserveInternalPort({ registryDir, random: fromStart, canBind: async () => true });
    expect(again.port).toBe(first);
    for (const r of [b, c, again]) r.release();
  });

  it('skips a port a process is listening on, with the real bind check', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(INTERNAL_RANGE.from + 7, '127.0.0.1', r));
    try {
      const port = await reserveInternalPort({ registryDir: join(dir.path, 'bind'), random: () => 7 / (INTERNAL_RANGE.to - INTERNAL_RANGE.from) });
      expect(port.port).not.toBe(INTERNAL_RANGE.from + 7);
      port.release();
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('reservePort', () => {
  it('reserves a service port so no agent takes it as an internal port', () => {
    const registryDir = join(dir.path, 'service');
    const hold = reservePort(8080, registryDir)!;
    expect(reservePort(8080, registryDir)).toBeNull();
    hold.release();
    hold.release();
    expect(reservePort(8080, registryDir)).not.toBeNull();
  });
});
