// The arithmetic of the scale benchmark: the controller's overhead between batches, and a process's CPU
// and memory from /proc (parsing is pure; the readers only add readFileSync).
import { readFileSync } from 'node:fs';

/** When one simulated agent saw its release's pipeline begin and end (Unix ms, fractional; 0: never). */
export interface AgentTiming {
  /** The first pipeline command (quiesce, restart, start…; not the download) arrived. */
  firstCommandAt: number;
  /** The agent sent its last result of the release. */
  lastResultAt: number;
}

/**
 * The controller's overhead between batches: for each batch k followed by k+1, the time from the last result any
 * instance of batch k sent to the first pipeline command any instance of batch k+1 received. It holds the controller
 * recording the last result, finishing batch k, starting k+1 and dispatching its first command, plus the wire both
 * ways. Pairs where either side has no timing (a batch that never ran) are left out.
 */
export function batchGaps(batches: readonly (readonly string[])[], timings: ReadonlyMap<string, AgentTiming>): number[] {
  const gaps: number[] = [];
  for (let k = 0; k + 1 < batches.length; k++) {
    const lastResult = Math.max(...batches[k]!.map((id) => timings.get(id)?.lastResultAt ?? 0));
    const next = batches[k + 1]!.map((id) => timings.get(id)?.firstCommandAt ?? 0).filter((t) => t > 0);
    if (lastResult <= 0 || next.length === 0) continue;
    gaps.push(Math.min(...next) - lastResult);
  }
  return gaps;
}

/** For each batch, first to last pipeline command received by its instances: how long dispatching a whole batch took. */
export function batchSpreads(batches: readonly (readonly string[])[], timings: ReadonlyMap<string, AgentTiming>): number[] {
  const spreads: number[] = [];
  for (const batch of batches) {
    const firsts = batch.map((id) => timings.get(id)?.firstCommandAt ?? 0).filter((t) => t > 0);
    if (firsts.length > 0) spreads.push(Math.max(...firsts) - Math.min(...firsts));
  }
  return spreads;
}

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** User + system CPU seconds from the text of /proc/<pid>/stat (fields 14 and 15; the name may hold spaces). */
export function parseCpuSeconds(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** A size line of /proc/<pid>/status (VmRSS, VmHWM) in MiB; null when absent. */
export function parseStatusMb(status: string, field: 'VmRSS' | 'VmHWM'): number | null {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) / 1024 : null;
}

/** What /proc says about a running process now. */
export function processUsage(pid: number): { cpuSeconds: number; rssMb: number | null; peakRssMb: number | null } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return {
    cpuSeconds: parseCpuSeconds(readFileSync(`/proc/${pid}/stat`, 'utf8')),
    rssMb: parseStatusMb(status, 'VmRSS'),
    peakRssMb: parseStatusMb(status, 'VmHWM'),
  };
}
