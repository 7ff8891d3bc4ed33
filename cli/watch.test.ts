import { describe, expect, it } from 'vitest';
import { ReleaseDetail } from '../proto/gen/fleetwave/v1/admin.js';
import { UnavailableError } from '../common/errors.js';
import { bufferIo } from './io.js';
import { watchRelease, watchUntil, WatchOutcomeError, type ReleaseSource } from './watch.js';

function snapshot(status: string): ReleaseDetail {
  return ReleaseDetail.fromPartial({ release: { id: 'r-1', app: 'shop', edition: '2.0', status, batchCount: 1 } });
}

/** A controller whose streams are scripted: each watch call plays the next script. */
function source(scripts: Array<Array<ReleaseDetail | Error>>, current = snapshot('Releasing')): ReleaseSource & { watches: number } {
  const fake = {
    watches: 0,
    async *watchRelease() {
      const script = scripts[fake.watches++] ?? [];
      for (const item of script) {
        if (item instanceof Error) throw item;
        yield item;
      }
    },
    getRelease: async () => current,
  };
  return fake;
}

const noWait = { sleep: async () => {} };

describe('watchRelease', () => {
  it('follows the stream until the release ends and prints a summary', async () => {
    const io = bufferIo();
    const last = await watchRelease(source([[snapshot('Releasing'), snapshot('Released')]]), 'r-1', io, noWait);
    expect(last.release?.status).toBe('Released');
    expect(io.stdout.map((l) => l.replace(/^\d\d:\d\d:\d\d /, ''))).toEqual([
      'release r-1: shop 2.0 to all in 1 batch: Releasing',
      'release Releasing → Released',
      'release r-1 Released: no instances',
    ]);
  });

  it('reconnects when the controller goes away mid-release', async () => {
    const io = bufferIo();
    const lost = new UnavailableError('cannot reach the controller at x:1 (is it running?)');
    const fake = source([[snapshot('Releasing'), lost], [lost], [snapshot('Releasing'), snapshot('Release failed')]]);
    const last = await watchRelease(fake, 'r-1', io, noWait);
    expect(fake.watches).toBe(3);
    expect(last.release?.status).toBe('Release failed');
    expect(io.stdout.join('\n')).toContain('lost the controller');
    expect(io.stdout.join('\n')).toContain('controller is back');
  });

  it('gives up on an unreachable controller before the first snapshot', async () => {
    const lost = new UnavailableError('cannot reach');
    await expect(watchRelease(source([[lost]]), 'r-1', bufferIo(), noWait)).rejects.toBe(lost);
  });

  it('asks for the release when the stream ends before it does', async () => {
    const io = bufferIo();
    const fake = source([[snapshot('Releasing')]], snapshot('Released'));
    expect((await watchRelease(fake, 'r-1', io, noWait)).release?.status).toBe('Released');
  });
});

describe('watchUntil', () => {
  const rollback = () => [snapshot('Rolling back'), snapshot('Rolled back')];

  it('aims at Rolled back when the release is already rolling back as the watch begins', async () => {
    const last = await watchUntil(source([rollback()]), 'r-1', bufferIo(), 'auto', noWait);
    expect(last.release?.status).toBe('Rolled back');
    await expect(watchUntil(source([rollback()]), 'r-1', bufferIo(), 'Rolled back', noWait)).resolves.toBeDefined();
  });

  it('aims at Released otherwise, and says in one line where the release ended', async () => {
    const watched = watchUntil(source([[snapshot('Releasing'), ...rollback()]]), 'r-1', bufferIo(), 'auto', noWait);
    await expect(watched).rejects.toThrow(WatchOutcomeError);
    await expect(watchUntil(source([[snapshot('Releasing'), snapshot('Release failed')]]), 'r-1', bufferIo(), 'auto', noWait)).rejects.toThrow(
      /^release r-1 ended Release failed, not Released$/,
    );
  });
});
