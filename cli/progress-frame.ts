// The live view of a release on a terminal: a pure function of (snapshot, clock, width) → the whole frame,
// redrawn in place by cli/watch-tty.ts. One bar per batch, then one line per instance of the running batch
// (its step and how long that step has taken), capped so a 10,000-instance fleet stays a screenful.
//
//   release r-7: shop 2.0 to all · Releasing · 1m
//   batch 1/3 (blue)   ████████████████████  2/2 done in 12.3s
//   batch 2/3 (blue)   ██████████░░░░░░░░░░  1/2 running
//   batch 3/3 (green)  ░░░░░░░░░░░░░░░░░░░░  0/2 pending · approval
//     agent-3  ✓ 2.0  4.10s
//     agent-4  drain …  1.52s
//   waiting for approval before batch 3 (fleetwave release approve r-7)
//
// A release in a rollback shows its rollback batches and only the rollback's own steps (as progress-rollback.ts).
import type { InstanceProgress, ReleaseDetail, StepRecord } from '../proto/gen/fleetwave/v1/admin.js';
import { formatDuration } from '../common/durations.js';
import { FAILED, isRollbackStep, markOf, OK, rollbackStart, stepError } from './progress-steps.js';
import { waitingLine } from './progress.js';

export interface FrameLimits {
  /** Most instance lines shown; the rest are counted in "… and K more". */
  maxInstances?: number;
  /** Most batch bars shown, around the running batch; the rest are counted. */
  maxBatches?: number;
}

export const DEFAULT_MAX_INSTANCES = 10;
export const DEFAULT_MAX_BATCHES = 12;
const BAR_MIN = 10;
const BAR_MAX = 30;

/** One batch as the frame shows it, forward or rollback alike. */
interface BatchView {
  label: string;
  status: string;
  total: number;
  done: number;
  failed: number;
  /** "done in 12s", "approval", … */
  detail: string;
}

/** One instance line: its part in the running batch. */
interface InstanceView {
  name: string;
  /** Sort rank: what moves first, then what went wrong, then what waits, then what is done. */
  rank: number;
  text: string;
}

/** The whole frame for `detail` at time `now`, every line at most `columns` wide. */
export function frame(detail: ReleaseDetail, now: number, columns: number, limits: FrameLimits = {}): string {
  const since = rollbackStart(detail);
  const batches = since === undefined ? forwardBatches(detail) : rollbackBatches(detail, since);
  const running = since === undefined ? forwardRunning(detail) : rollbackRunning(detail);
  const instances = running.map((i) => instanceView(i, since, now)).sort((a, b) => a.rank - b.rank);
  const lines = [
    headerLine(detail, since, now),
    ...batchLines(batches, columns, limits.maxBatches ?? DEFAULT_MAX_BATCHES),
    ...instanceLines(instances, limits.maxInstances ?? DEFAULT_MAX_INSTANCES),
    ...footerLines(detail),
  ];
  return lines.map((line) => fit(line, columns)).join('\n');
}

function headerLine(detail: ReleaseDetail, since: number | undefined, now: number): string {
  const r = detail.release;
  if (!r) return 'release: no data';
  const start = since || Number(r.createdUnixMs);
  const end = Number(r.finishedUnixMs) || now;
  const took = start ? ` · ${formatDuration(Math.max(0, end - start))}` : '';
  const what = since === undefined ? `${r.app} ${r.edition} to ${r.group || 'all'}` : `rolling ${r.app} ${r.edition} back`;
  return `release ${r.id}: ${what} · ${r.status}${took}`;
}

/** Counts of instance statuses per batch: the server's summary when it has one (it covers every page), else the listed instances. */
function countsByBatch(detail: ReleaseDetail): Map<number, Record<string, number>> {
  const counts = new Map<number, Record<string, number>>();
  const add = (batch: number, status: string, n: number) => {
    const entry = counts.get(batch) ?? {};
    entry[status] = (entry[status] ?? 0) + n;
    counts.set(batch, entry);
  };
  const summary = detail.summary?.counts ?? [];
  if (summary.length > 0) for (const c of summary) add(c.batch, c.status, c.count);
  else for (const i of detail.instances) add(i.batch, i.status, 1);
  return counts;
}

function forwardBatches(detail: ReleaseDetail): BatchView[] {
  const total = detail.release?.batchCount || detail.batches.length;
  const counts = countsByBatch(detail);
  return detail.batches.map((b) => {
    const c = counts.get(b.number) ?? {};
    const took = b.startedUnixMs && b.finishedUnixMs ? ` in ${formatDuration(Number(b.finishedUnixMs) - Number(b.startedUnixMs))}` : '';
    const checkpoint = b.checkpoint && (b.status === 'waiting' || b.status === 'pending') ? ` · ${b.checkpoint}` : '';
    return {
      label: `batch ${b.number}/${total} (${b.group})`,
      status: b.status,
      total: b.instanceCount || b.instances.length,
      done: c['released'] ?? 0,
      failed: (c['failed'] ?? 0) + (c['unreachable'] ?? 0),
      detail: b.status === 'done' || b.status === 'failed' ? took : checkpoint,
    };
  });
}

/** Instances of the batches in progress (waiting batches have not begun). */
function forwardRunning(detail: ReleaseDetail): InstanceProgress[] {
  const running = new Set(detail.batches.filter((b) => b.status === 'running').map((b) => b.number));
  return detail.instances.filter((i) => running.has(i.batch));
}

function rollbackBatches(detail: ReleaseDetail, since: number): BatchView[] {
  const r = detail.release!;
  const views: BatchView[] = [];
  for (let n = 1; n <= r.rollbackBatchCount; n++) {
    const members = detail.instances.filter((i) => i.rollbackBatch === n);
    const failed = members.filter((i) => i.status !== 'rolled back' && rollbackSteps(i, since).at(-1)?.status === 'failed').length;
    const done = members.filter((i) => i.status === 'rolled back').length;
    const current = r.rollbackCurrentBatch;
    const status = n < current || (n === current && r.status !== 'Rolling back') ? (failed ? 'failed' : 'done') : n === current ? 'running' : 'pending';
    views.push({ label: `rollback batch ${n}/${r.rollbackBatchCount}`, status, total: members.length, done, failed, detail: '' });
  }
  return views;
}

function rollbackRunning(detail: ReleaseDetail): InstanceProgress[] {
  const r = detail.release!;
  if (r.status !== 'Rolling back') return [];
  return detail.instances.filter((i) => i.rollbackBatch > 0 && i.rollbackBatch === r.rollbackCurrentBatch);
}

function rollbackSteps(instance: InstanceProgress, since: number): StepRecord[] {
  return instance.steps.filter((s) => isRollbackStep(s, since));
}

/** Bars aligned under each other; at most `max`, a window around the first batch not yet ended. */
function batchLines(batches: BatchView[], columns: number, max: number): string[] {
  if (batches.length === 0) return [];
  const width = Math.max(...batches.map((b) => b.label.length));
  const countWidth = String(Math.max(...batches.map((b) => b.total))).length;
  // The bar takes what the label and the counts leave, within bounds.
  const barWidth = Math.max(BAR_MIN, Math.min(BAR_MAX, columns - width - 2 * countWidth - 24));
  const { first, last } = windowOf(batches, Math.max(1, max));
  const lines = batches.slice(first, last).map((b) => {
    const counts = `${String(b.done).padStart(countWidth)}/${b.total}`;
    const failed = b.failed ? ` · ${b.failed} failed` : '';
    return `${b.label.padEnd(width)}  ${bar(b, barWidth)}  ${counts} ${b.status}${b.detail}${failed}`;
  });
  if (first > 0) lines.unshift(`… ${first} earlier batch${first === 1 ? '' : 'es'}`);
  if (last < batches.length) lines.push(`… ${batches.length - last} more batch${batches.length - last === 1 ? '' : 'es'}`);
  return lines;
}

/** The slice of `max` batches that keeps the first unfinished one in view, with a little history before it. */
function windowOf(batches: BatchView[], max: number): { first: number; last: number } {
  if (batches.length <= max) return { first: 0, last: batches.length };
  const active = batches.findIndex((b) => b.status !== 'done' && b.status !== 'failed');
  const focus = active === -1 ? batches.length - 1 : active;
  const first = Math.max(0, Math.min(focus - Math.floor(max / 3), batches.length - max));
  return { first, last: first + max };
}

/** Settled instances fill the bar: "█" went through, "▒" failed, "░" to go. */
function bar(b: BatchView, width: number): string {
  if (b.total === 0) return '░'.repeat(width);
  const through = Math.round((Math.min(b.done, b.total) / b.total) * width);
  const failed = Math.min(width - through, Math.round((b.failed / b.total) * width) || (b.failed ? 1 : 0));
  return '█'.repeat(through) + '▒'.repeat(failed) + '░'.repeat(width - through - failed);
}

function instanceLines(instances: InstanceView[], max: number): string[] {
  const shown = instances.slice(0, Math.max(0, max));
  const width = Math.max(0, ...shown.map((i) => i.name.length));
  const lines = shown.map((i) => `  ${i.name.padEnd(width)}  ${i.text}`);
  const more = instances.length - shown.length;
  if (more > 0) lines.push(`  … and ${more.toLocaleString('en-US')} more`);
  return lines;
}

/** An instance's line: its current step with the step's time so far, or how its part ended. */
function instanceView(instance: InstanceProgress, since: number | undefined, now: number): InstanceView {
  const steps = since === undefined ? instance.steps : rollbackSteps(instance, since);
  const last = steps.at(-1);
  const name = instance.instance;
  if (instance.status === 'released' || instance.status === 'rolled back') {
    const took = steps.length ? `  ${formatDuration(spanOf(steps, now))}` : '';
    return { name, rank: 3, text: `${OK} ${instance.edition || 'previous edition'}${took}` };
  }
  if (instance.status === 'failed' || last?.status === 'failed') {
    return { name, rank: 1, text: `${last?.step ?? instance.step} ${FAILED} ${stepError(last?.step ?? instance.step, instance.error || last?.error || '')}` };
  }
  if (instance.status === 'unreachable') return { name, rank: 1, text: `unreachable${instance.step ? ` during ${instance.step}` : ''}` };
  if (!last) return { name, rank: 2, text: 'pending' };
  const elapsed = (last.finishedUnixMs ? Number(last.finishedUnixMs) : now) - Number(last.startedUnixMs);
  return { name, rank: last.status === 'running' ? 0 : 2, text: `${last.step} ${markOf(last)}  ${formatDuration(Math.max(0, elapsed))}` };
}

function spanOf(steps: StepRecord[], now: number): number {
  const end = Number(steps.at(-1)?.finishedUnixMs) || now;
  return Math.max(0, end - Number(steps[0]!.startedUnixMs));
}

function footerLines(detail: ReleaseDetail): string[] {
  const r = detail.release;
  if (!r) return [];
  const lines: string[] = [];
  if (r.waitingFor) lines.push(waitingLine(r.waitingFor, r.id));
  else if (r.message) lines.push(r.message);
  return lines;
}

/** Cuts a line to the terminal's width (by code point: every glyph used here is one column), so nothing wraps. */
function fit(line: string, columns: number): string {
  const chars = [...line];
  if (columns <= 0 || chars.length <= columns) return line;
  return `${chars.slice(0, Math.max(0, columns - 1)).join('')}…`;
}
