// The controller's own overhead in a release: wall time minus the time some instance spent in an agent-side step.
import type { ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';

/**
 * Steps whose time is the app's, the host's or the drain's, not the controller's: drain waits for requests,
 * stop/restart/hard-reset/start wait for processes, health for the new edition, download for the network.
 * Quiesce is left in: it is one command round trip, which is the controller's (and the wire's) cost.
 */
export const AGENT_STEPS: ReadonlySet<string> = new Set(['download', 'drain', 'stop', 'restart', 'hard-reset', 'start', 'health']);

export interface Overhead {
  wallMs: number;
  /** Union of the agent-side step intervals of all instances (batch members run at once, so a sum would overcount). */
  agentMs: number;
  overheadMs: number;
  batches: number;
  perBatchMs: number;
}

/**
 * `drains` are the agents' own drain intervals ([quiesce began, drained] from the `drained` events): when `drained`
 * arrives before the quiesce result, the engine ends the drain step at once and the drain shows inside quiesce.
 */
export function releaseOverhead(detail: ReleaseDetail, drains: [number, number][] = []): Overhead {
  const release = detail.release;
  if (!release || !release.finishedUnixMs) throw new Error('the release has not finished');
  const start = Number(release.createdUnixMs);
  const end = Number(release.finishedUnixMs);
  const intervals: [number, number][] = [];
  for (const instance of detail.instances) {
    for (const step of instance.steps) {
      if (!AGENT_STEPS.has(step.step) || !step.finishedUnixMs) continue;
      intervals.push([Math.max(start, Number(step.startedUnixMs)), Math.min(end, Number(step.finishedUnixMs))]);
    }
  }
  for (const [a, b] of drains) intervals.push([Math.max(start, a), Math.min(end, b)]);
  const agentMs = unionLength(intervals);
  const wallMs = end - start;
  const batches = detail.batches.length || 1;
  return { wallMs, agentMs, overheadMs: wallMs - agentMs, batches, perBatchMs: round((wallMs - agentMs) / batches) };
}

/** Total length covered by the intervals, overlaps counted once. */
export function unionLength(intervals: [number, number][]): number {
  const sorted = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let [curStart, curEnd] = [Number.NaN, Number.NaN];
  for (const [a, b] of sorted) {
    if (Number.isNaN(curStart) || a > curEnd) {
      if (!Number.isNaN(curStart)) total += curEnd - curStart;
      [curStart, curEnd] = [a, b];
    } else curEnd = Math.max(curEnd, b);
  }
  return Number.isNaN(curStart) ? total : total + curEnd - curStart;
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
