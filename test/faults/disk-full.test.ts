// Fault: an agent's disk is full, or its data dir read-only: the download fails with a clear error and the old edition keeps serving.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportFault } from './report.js';
import { APP, FaultFleet } from './support.js';

/** A tiny tmpfs is a real full disk; mounting needs root (CAP_SYS_ADMIN), which the test runs have. */
function tryMount(dir: string, options: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function unmount(dir: string): void {
  try {
    execFileSync('umount', [dir], { stdio: 'ignore' });
  } catch {
    // Not mounted.
  }
}

describe('fault: a full disk or a read-only data dir on an agent', () => {
  const f = new FaultFleet('disk-full', [
    { id: 'd1', group: 'blue' },
    { id: 'd2', group: 'blue' },
  ]);
  const downloads = join(f.agentDir('d1'), 'apps', APP, 'downloads');

  beforeAll(() => f.start(), 120_000);
  afterAll(async () => {
    unmount(downloads);
    await f.stop();
  }, 60_000);

  it('fails the download with a clear error while the old edition keeps running', async (ctx) => {
    mkdirSync(downloads, { recursive: true });
    if (!tryMount(downloads, 'size=64k')) return ctx.skip('cannot mount a tmpfs here (needs root): no real full disk to test with');
    const trials = [
      { name: 'disk full', expect: /ENOSPC|no space left/i },
      { name: 'read-only', expect: /EROFS|read-only/i },
    ];
    let completed = 0;
    const wrong: string[] = [];
    const errors: string[] = [];
    for (const trial of trials) {
      if (trial.name === 'disk full') {
        // Fill it: the next write gets ENOSPC.
        try {
          writeFileSync(join(downloads, 'filler'), Buffer.alloc(64 * 1024));
        } catch {
          // Full already.
        }
      } else {
        unmount(downloads);
        expect(tryMount(downloads, 'ro,size=64k')).toBe(true);
      }
      // When 2.0 is released to both, d1 cannot store the package
      const detail = await f.release({ edition: '2.0' });
      const d1 = detail.instances.find((i) => i.instance === 'd1');
      errors.push(`${trial.name}: ${d1?.error}`);
      // Then the release fails in its first batch with the disk error, and both instances still serve 1.0
      if (detail.release?.status === 'Release failed' && d1?.status === 'failed' && trial.expect.test(d1.error)) completed++;
      else wrong.push(`${trial.name}: ${detail.release?.status}, d1 ${d1?.status}: ${d1?.error}`);
      wrong.push(...(await f.settledEditions({ d1: '1.0', d2: '1.0' })));
    }
    const reruns = f.journalReruns();
    const duplicates = Object.values(reruns).reduce((n, ids) => n + Object.values(ids).reduce((m, runs) => m + runs - 1, 0), 0) + f.controllerDuplicates();
    reportFault({
      fault: 'disk full / read-only data dir',
      trials: trials.length,
      releasesCompleted: completed,
      releases: trials.length,
      duplicateExecutions: duplicates,
      rerunsAfterAgentDeath: 0,
      wrongEditions: wrong.length,
      eventsLost: 0,
      notes: `completed = failed as it must, old edition serving; errors: ${errors.join(' | ')}`,
    });
    expect(wrong).toEqual([]);
    expect(completed).toBe(trials.length);
    expect(duplicates).toBe(0);
  }, 180_000);
});
