// Pure helpers of the views: status tones, durations, times. No DOM, so the unit tests run them in Node.

/** The colour family of a status; the text is always shown beside it (colour is never the only signal). */
export type Tone = 'ok' | 'busy' | 'wait' | 'bad' | 'back' | 'idle';

const TONES: Record<string, Tone> = {
  // releases
  'released': 'ok',
  'releasing': 'busy',
  'to release': 'wait',
  'release failed': 'bad',
  'rolling back': 'back',
  'rolled back': 'back',
  'rollback failed': 'bad',
  'suspending': 'wait',
  'suspended': 'wait',
  // batches and steps
  'done': 'ok',
  'ok': 'ok',
  'waiting': 'wait',
  'pending': 'idle',
  // instances of a release and of the fleet
  'in progress': 'busy',
  'failed': 'bad',
  'unreachable': 'bad',
  'running': 'ok',
  'starting': 'busy',
  'stopped': 'idle',
  // agents
  'connected': 'ok',
};

export function toneOf(status: string | undefined): Tone {
  return TONES[(status ?? '').toLowerCase()] ?? 'idle';
}

/** "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1_000).toFixed(1)} s`;
  const s = Math.floor(ms / 1_000);
  if (s < 3_600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3_600)} h ${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')} min`;
}

/** How long something took, or has taken so far (running: until `now`); '' when it has not started. */
export function elapsed(startedMs: number | undefined, finishedMs: number | undefined, now: number): string {
  if (!startedMs) return '';
  return formatDuration((finishedMs || now) - startedMs);
}

/** A local date and time to the second, sortable ("2026-12-01 12:37:05"). */
export function formatTime(ms: number | undefined): string {
  if (!ms) return '';
  const d = new Date(ms);
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export interface GroupCounts {
  group: string;
  total: number;
  /** status → count, in the server's order. */
  byStatus: Array<[string, number]>;
}

/** A ListSummary's (group, status, count) rows folded per group (batch ignored: fleet listings have none). */
export function countsByGroup(counts: Array<{ group?: string; status?: string; count?: number }> | undefined): GroupCounts[] {
  const groups = new Map<string, GroupCounts>();
  for (const c of counts ?? []) {
    const group = c.group ?? '';
    let g = groups.get(group);
    if (!g) groups.set(group, (g = { group, total: 0, byStatus: [] }));
    const n = c.count ?? 0;
    g.total += n;
    const known = g.byStatus.find(([s]) => s === (c.status ?? ''));
    if (known) known[1] += n;
    else g.byStatus.push([c.status ?? '', n]);
  }
  return [...groups.values()];
}
