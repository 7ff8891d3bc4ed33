import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ReleaseDetail } from '../proto/gen/fleetwave/v1/admin.js';
import { UnavailableError } from '../common/errors.js';
import { bufferIo } from './io.js';
import { watchRelease, type ReleaseSource } from './watch.js';
import { limitsFor, liveView, type Terminal } from './watch-tty.js';

const T0 = 1_700_000_000_000;

/** A terminal that keeps what was written: 80×24, a TTY as far as log-update can tell. */
function fakeTerminal(): Terminal & { text(): string } {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  return Object.assign(stream, { columns: 80, rows: 24, isTTY: true, text: () => chunks.join('') });
}

function snapshot(status: string, done: number): ReleaseDetail {
  const ids = ['a', 'b'];
  return ReleaseDetail.fromPartial({
    release: { id: 'r-1', app: 'shop', edition: '2.0', status, batchCount: 1, createdUnixMs: T0, finishedUnixMs: status === 'Released' ? T0 + 3000 : 0 },
    batches: [{ number: 1, group: 'blue', status: status === 'Released' ? 'done' : 'running', instances: ids, instanceCount: 2 }],
    instances: ids.map((id, n) => ({
      instance: id,
      batch: 1,
      status: n < done ? 'released' : 'in progress',
      edition: n < done ? '2.0' : '1.0',
      steps: [{ step: 'drain', status: n < done ? 'ok' : 'running', startedUnixMs: T0, finishedUnixMs: n < done ? T0 + 2000 : 0 }],
    })),
  });
}

/** Yields the given snapshots, throwing the errors among them (the stream broke there). */
function source(scripts: Array<Array<ReleaseDetail | Error>>): ReleaseSource {
  let call = 0;
  return {
    async *watchRelease() {
      for (const item of scripts[call++] ?? []) {
        if (item instanceof Error) throw item;
        yield item;
      }
    },
    getRelease: async () => snapshot('Released', 2),
  };
}

const ESC = '\u001B[';

describe('liveView', () => {
  it('redraws in place, leaves the last frame on screen, and keeps notes in the scrollback', () => {
    const terminal = fakeTerminal();
    const view = liveView(terminal, { now: () => T0 + 1000, tickMs: 0 });
    view.snapshot(undefined, snapshot('Releasing', 0));
    view.snapshot(undefined, snapshot('Releasing', 1));
    view.note('lost the controller (x); reconnecting');
    view.snapshot(undefined, snapshot('Released', 2));
    view.close();
    view.close();
    const text = terminal.text();
    // Cursor up and erase line: the frame was rewritten, not appended.
    expect(text).toContain(`${ESC}1A`);
    expect(text).toContain(`${ESC}2K`);
    expect(text).toMatch(/\d\d:\d\d:\d\d lost the controller \(x\); reconnecting/);
    expect(text).toContain('release r-1: shop 2.0 to all · Released · 3.00s');
    expect(text).toContain('batch 1/1 (blue)');
    expect(text).toContain('2/2 done');
  });

  it('fits the bars and instance lines to the terminal height', () => {
    expect(limitsFor(24)).toEqual({ maxBatches: 8, maxInstances: 10 });
    expect(limitsFor(12)).toEqual({ maxBatches: 4, maxInstances: 3 });
    expect(limitsFor(undefined)).toEqual(limitsFor(24));
  });
});

describe('watchRelease on a terminal', () => {
  it('draws frames instead of lines, then prints the usual summary below the last frame', async () => {
    const terminal = fakeTerminal();
    const io = { ...bufferIo(), isTTY: true, terminal };
    const lost = new UnavailableError('cannot reach');
    const last = await watchRelease(source([[snapshot('Releasing', 0), lost], [snapshot('Releasing', 1), snapshot('Released', 2)]]), 'r-1', io, {
      sleep: async () => {},
    });
    expect(last.release?.status).toBe('Released');
    // No per-change lines on stdout: only the summary, after the frames.
    expect(io.stdout).toEqual(['release r-1 Released in 3.00s: 2 released']);
    expect(terminal.text()).toContain('lost the controller (cannot reach); reconnecting');
    expect(terminal.text()).toContain('controller is back');
    expect(terminal.text()).toContain('2/2 done');
  });

  it('stops redrawing when the watch fails', async () => {
    const terminal = fakeTerminal();
    const io = { ...bufferIo(), isTTY: true, terminal };
    const broken = new Error('boom');
    await expect(watchRelease(source([[snapshot('Releasing', 0), broken]]), 'r-1', io)).rejects.toBe(broken);
    expect(terminal.listenerCount('resize')).toBe(0);
  });
});
