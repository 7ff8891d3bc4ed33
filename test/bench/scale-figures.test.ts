// The scale benchmark's arithmetic: percentiles, overhead between batches, /proc parsing, flags, simulated commands.
import { describe, expect, it } from 'vitest';
import { Command, type InstanceReport } from '../../proto/gen/fleetwave/v1/agent.js';
import { isPipelineCommand, simulateCommand } from './scale-commands.js';
import { batchGaps, batchSpreads, parseCpuSeconds, parseStatusMb, type AgentTiming } from './scale-figures.js';
import { median, percentile } from './stats.js';
import { numberList, parseScaleOptions } from './scale-options.js';

describe('percentile', () => {
  it.each([
    [[], 50, null],
    [[7], 99, 7],
    [[5, 1, 3, 2, 4], 50, 3],
    [[1, 2, 3, 4], 50, 2],
    [[1, 2, 3, 4], 99, 4],
    [Array.from({ length: 100 }, (_, i) => i + 1), 99, 99],
    [[3, 1, 2], 0, 1],
  ] as [number[], number, number | null][])('%j at p%d is %s', (values, p, expected) => {
    expect(percentile(values, p)).toBe(expected);
  });

  it('leaves its input unsorted', () => {
    const values = [3, 1, 2];
    expect(median(values)).toBe(2);
    expect(values).toEqual([3, 1, 2]);
  });
});

describe('batchGaps and batchSpreads', () => {
  const timings = new Map<string, AgentTiming>([
    ['a', { firstCommandAt: 100, lastResultAt: 150 }],
    ['b', { firstCommandAt: 101, lastResultAt: 160 }],
    ['c', { firstCommandAt: 165, lastResultAt: 200 }],
    ['d', { firstCommandAt: 162, lastResultAt: 210 }],
    ['e', { firstCommandAt: 0, lastResultAt: 0 }],
  ]);

  it('measures from the last result of a batch to the first command of the next', () => {
    expect(batchGaps([['a', 'b'], ['c', 'd']], timings)).toEqual([2]);
  });

  it('skips a pair whose next batch never ran, or whose batch has no result', () => {
    expect(batchGaps([['a', 'b'], ['e'], ['c']], timings)).toEqual([]);
    expect(batchGaps([['a'], ['c', 'e']], timings)).toEqual([15]);
    expect(batchGaps([], timings)).toEqual([]);
  });

  it('measures how long a batch took to dispatch', () => {
    expect(batchSpreads([['a', 'b'], ['c', 'd'], ['e']], timings)).toEqual([1, 3]);
  });
});

describe('/proc parsing', () => {
  it('reads user + system ticks after the command name, even one with spaces and parentheses', () => {
    const stat = '1234 (node (x) y) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 11 0 100 0';
    expect(parseCpuSeconds(stat)).toBe(3);
  });

  it('reads VmRSS and VmHWM in MiB', () => {
    const status = 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n';
    expect(parseStatusMb(status, 'VmRSS')).toBe(100);
    expect(parseStatusMb(status, 'VmHWM')).toBe(200);
    expect(parseStatusMb('Name:\tnode\n', 'VmRSS')).toBeNull();
  });
});

describe('scale options', () => {
  it('has the issue defaults', () => {
    expect(parseScaleOptions([])).toMatchObject({ agents: [1000, 3000, 10000], delaysMs: [0], idleS: 60, sims: 4, sessionsPerChannel: 250, updateOrder: 'stop-first', batches: 10, keep: false });
  });

  it('takes lists and short idle windows', () => {
    expect(parseScaleOptions(['--agents', '1000,3000', '--delay-ms', '0,50', '--idle-s', '5', '--cpu-prof', '/tmp/p'])).toMatchObject({
      agents: [1000, 3000],
      delaysMs: [0, 50],
      idleS: 5,
      cpuProfDir: '/tmp/p',
    });
  });

  it.each([
    [['--agents', '3k']],
    [['--agents', '0']],
    [['--delay-ms', '-1']],
    [['--update-order', 'sideways']],
    [['--bogus']],
  ])('refuses %j in one line', (argv) => {
    expect(() => parseScaleOptions(argv)).toThrow(/^[^\n]+$/);
  });

  it('parses a number list', () => {
    expect(numberList(' 1, 2 ,3', '--x', 1)).toEqual([1, 2, 3]);
  });
});

describe('simulateCommand', () => {
  const fresh = (): InstanceReport => ({ app: 'shop', servicePort: 1, activeEdition: '1.0', keptEditions: ['1.0'], processState: 'running', quiesced: false });
  const command = (kind: Partial<Command>): Command => Command.fromPartial({ commandId: 'c1', app: 'shop', releaseId: 'r1', ...kind });

  it('walks a stop-first pipeline: download, quiesce (drained at once), restart, health', () => {
    const instance = fresh();
    expect(simulateCommand(instance, command({ downloadPackage: { edition: '2.0', url: '', sha256: '', size: 0, format: '', fileName: '', keepEditions: 0 } }), 7).events).toEqual([]);
    expect(instance.keptEditions).toEqual(['2.0', '1.0']);
    const quiesce = simulateCommand(instance, command({ quiesce: { drainMs: 1000 } }), 7);
    expect(quiesce.events.map(([reason]) => reason)).toEqual(['quiesce.started', 'drained']);
    expect(quiesce.events[1]![1]).toMatchObject({ inFlight: 0, quiesceCommandId: 'c1' });
    expect(instance.quiesced).toBe(true);
    const restart = simulateCommand(instance, command({ restartApp: { edition: '2.0', updateOrder: 'stop-first', app: undefined } }), 7);
    expect(restart.events.map(([reason]) => reason)).toEqual(['stopped', 'started']);
    expect(restart.updateOrder).toBe('stop-first');
    expect(instance).toMatchObject({ activeEdition: '2.0', processState: 'running', quiesced: true });
    expect(simulateCommand(instance, command({ healthCheck: { path: '', expectedStatus: 200, retries: 1, intervalMs: 1, timeoutMs: 1 } }), 7).events[0]![0]).toBe('healthy');
    expect(instance.quiesced).toBe(false);
  });

  it('starts first when the command or the app asks for nothing else', () => {
    const restart = simulateCommand(fresh(), command({ restartApp: { edition: '2.0', updateOrder: '', app: undefined } }), 7);
    expect(restart.events.map(([reason]) => reason)).toEqual(['started', 'stopped']);
    expect(restart.updateOrder).toBe('start-first');
  });

  it('answers a command without a kind with an error, and tells pipeline commands from downloads', () => {
    expect(simulateCommand(fresh(), command({}), 7).error).toMatch(/no kind/);
    expect(isPipelineCommand(command({ quiesce: { drainMs: 1 } }))).toBe(true);
    expect(isPipelineCommand(command({ downloadPackage: { edition: '2.0', url: '', sha256: '', size: 0, format: '', fileName: '', keepEditions: 0 } }))).toBe(false);
    expect(isPipelineCommand({ ...command({ healthCheck: { path: '', expectedStatus: 200, retries: 1, intervalMs: 1, timeoutMs: 1 } }), releaseId: '' })).toBe(false);
  });
});
