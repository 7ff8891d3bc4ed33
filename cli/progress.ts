// Live progress of a release: a pure function of (previous, next) ReleaseDetail
// snapshots → the lines that describe what changed, plus a final summary.
// `release watch` prints these lines as the WatchRelease stream delivers snapshots; a release in a rollback
// is rendered by progress-rollback.ts (only the rollback's own steps).
import type { Batch, InstanceProgress, ReleaseDetail, StepRecord } from '../proto/gen/fleetwave/v1/admin.js';
import { formatDuration } from '../common/durations.js';
import { FINAL_RELEASE_STATUSES } from '../controller/domain/transitions.js';
import { renderRollbackChanges } from './progress-rollback.js';
import { canRollBack, chain, FAILED, markOf, OK, rollbackStart, spanOf, stepError } from './progress-steps.js';

/** Release statuses after which nothing more happens. */
const FINAL_STATUSES: ReadonlySet<string> = new Set(FINAL_RELEASE_STATUSES);

export function isFinal(detail: ReleaseDetail | undefined): boolean {
  return FINAL_STATUSES.has(detail?.release?.status ?? '');
}

/** Instance statuses that end its part in the release (or this attempt of it). */
const SETTLED = new Set(['released', 'failed', 'unreachable', 'rolled back']);
/** Batch statuses that end a batch. */
const BATCH_ENDED = new Set(['done', 'failed']);

/**
 * The lines describing what changed from `prev` (undefined: first snapshot) to
 * `next`, in reading order: what finished, then the release itself, then what began.
 */
export function renderChanges(prev: ReleaseDetail | undefined, next: ReleaseDetail): string[] {
  const since = rollbackStart(next);
  if (since !== undefined) return renderRollbackChanges(prev, next, since, releaseLines);
  return [
    ...(prev ? [] : introLine(next)),
    ...instanceLines(prev, next, (i) => SETTLED.has(i.status)),
    ...batchLines(prev, next, (b) => BATCH_ENDED.has(b.status)),
    ...releaseLines(prev, next),
    ...batchLines(prev, next, (b) => !BATCH_ENDED.has(b.status)),
    ...instanceLines(prev, next, (i) => !SETTLED.has(i.status)),
  ];
}

function introLine(next: ReleaseDetail): string[] {
  const r = next.release;
  if (!r) return [];
  return [`release ${r.id}: ${r.app} ${r.edition} to ${r.group || 'all'} in ${r.batchCount} batch${r.batchCount === 1 ? '' : 'es'}: ${r.status}`];
}

function releaseLines(prev: ReleaseDetail | undefined, next: ReleaseDetail): string[] {
  const r = next.release;
  if (!r) return [];
  const p = prev?.release;
  const lines: string[] = [];
  if (p && p.status !== r.status) {
    lines.push(`release ${p.status} → ${r.status}${r.message ? `: ${r.message}` : ''}`);
  }
  if (r.waitingFor && r.waitingFor !== (p?.waitingFor ?? '')) {
    lines.push(waitingLine(r.waitingFor, r.id));
  }
  return lines;
}

/** "waiting for …", with the command that unblocks a release waiting for an operator. */
export function waitingLine(waitingFor: string, id: string): string {
  return `waiting for ${waitingFor}${waitingHint(waitingFor, id)}`;
}

/** The command that unblocks a release waiting for an operator. */
function waitingHint(waitingFor: string, id: string): string {
  const verb = ['approval', 'trigger', 'continue'].find((word) => waitingFor.includes(word));
  const action = verb === 'approval' ? 'approve' : verb;
  return action ? ` (fleetwave release ${action} ${id})` : '';
}

function batchLines(prev: ReleaseDetail | undefined, next: ReleaseDetail, which: (b: Batch) => boolean): string[] {
  const total = next.release?.batchCount || next.batches.length;
  const before = new Map((prev?.batches ?? []).map((b) => [b.number, b]));
  const lines: string[] = [];
  for (const batch of next.batches.filter(which)) {
    const old = before.get(batch.number);
    if (old?.status === batch.status) continue;
    // On the first snapshot, pending batches are the plan, not news.
    if (!old && batch.status === 'pending') continue;
    const line = batchLine(batch, total);
    if (line) lines.push(line);
  }
  return lines;
}

function batchLine(batch: Batch, total: number): string | undefined {
  const name = `batch ${batch.number}/${total} (${batch.group})`;
  switch (batch.status) {
    case 'running':
      return `${name} started: ${batch.instances.join(', ')}`;
    case 'done':
      return `${name} done${batch.startedUnixMs && batch.finishedUnixMs ? ` in ${formatDuration(batch.finishedUnixMs - batch.startedUnixMs)}` : ''}`;
    case 'failed':
      return `${name} failed`;
    case 'waiting':
      return `${name} waiting${batch.checkpoint ? ` for ${batch.checkpoint}` : ''}`;
    case 'pending':
      return undefined;
    default:
      return `${name} ${batch.status}`;
  }
}

/** What about an instance is worth a new line: its status and its steps' statuses. */
function signature(instance: InstanceProgress): string {
  return `${instance.status}|${instance.steps.map((s) => `${s.step}:${s.status}`).join(',')}`;
}

function instanceLines(prev: ReleaseDetail | undefined, next: ReleaseDetail, which: (i: InstanceProgress) => boolean): string[] {
  const before = new Map((prev?.instances ?? []).map((i) => [i.instance, i]));
  const width = Math.max(0, ...next.instances.map((i) => i.instance.length));
  const lines: string[] = [];
  for (const instance of next.instances.filter(which)) {
    const old = before.get(instance.instance);
    if (old && signature(old) === signature(instance)) continue;
    if (!old && instance.status === 'pending' && instance.steps.length === 0) continue;
    const line = instanceLine(instance);
    if (line) lines.push(`  ${instance.instance.padEnd(width)}  ${line}`);
  }
  return lines;
}

/** Steps of the pipeline proper; download is pre-staged and reported on its own. */
function pipelineSteps(instance: InstanceProgress): StepRecord[] {
  return instance.steps.filter((s) => s.step !== 'download');
}

function instanceLine(instance: InstanceProgress): string | undefined {
  const steps = pipelineSteps(instance);
  const last = instance.steps[instance.steps.length - 1];
  switch (instance.status) {
    case 'released': {
      const span = spanOf(steps);
      return `${chain(steps) || 'done'} ${OK} ${instance.edition}${span !== undefined ? ` (${formatDuration(span)})` : ''}`;
    }
    case 'failed': {
      const failed = [...instance.steps].reverse().find((s) => s.status === 'failed') ?? last;
      return `${chain(steps.length ? steps : instance.steps)} ${FAILED} ${stepError(failed?.step ?? '', instance.error || failed?.error || '')}`;
    }
    case 'unreachable':
      return `unreachable${instance.step ? ` during ${instance.step}` : ''}${instance.error ? `: ${instance.error}` : ''}`;
    case 'rolled back':
      return `rolled back to ${instance.edition || 'the previous edition'}`;
    default:
      break;
  }
  if (!last) return undefined;
  if (last.step === 'download') {
    // Every instance downloads at the start; report only the outcome.
    if (last.status === 'running') return undefined;
    if (last.status === 'failed') return `download ${FAILED} ${last.error || 'failed'}`;
    return `download ${OK}${last.startedUnixMs && last.finishedUnixMs ? ` (${formatDuration(last.finishedUnixMs - last.startedUnixMs)})` : ''}`;
  }
  return `${chain(steps)} ${markOf(last)}`;
}

/** Counts of instance statuses, e.g. {released: 4, failed: 1}. */
export function countInstances(detail: ReleaseDetail): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const i of detail.instances) counts[i.status] = (counts[i.status] ?? 0) + 1;
  return counts;
}

/** The closing lines once a release has ended (or the watch stopped). */
export function renderSummary(detail: ReleaseDetail): string[] {
  const r = detail.release;
  if (!r) return ['release: no data'];
  // A rollback's time is the rollback's own, from when it began.
  const since = rollbackStart(detail) || r.createdUnixMs;
  const took = r.finishedUnixMs && since ? ` in ${formatDuration(r.finishedUnixMs - since)}` : '';
  const counts = Object.entries(countInstances(detail))
    .map(([status, n]) => `${n} ${status}`)
    .join(', ');
  const lines = [`release ${r.id} ${r.status}${took}: ${counts || 'no instances'}${r.message ? ` (${r.message})` : ''}`];
  for (const i of detail.instances) {
    if (i.status === 'failed' || i.status === 'unreachable') {
      const step = [...i.steps].reverse().find((s) => s.status === 'failed');
      lines.push(`  ${i.instance}: ${i.status}${i.step ? ` at ${i.step}` : ''}: ${stepError(i.step || step?.step || '', i.error || step?.error || 'no detail')}`);
    }
  }
  const next = nextCommands(detail);
  if (next) lines.push(`next: ${next}`);
  return lines;
}

/** What the operator can do about a release that did not end well; rollback only when it would move something. */
function nextCommands(detail: ReleaseDetail): string | undefined {
  const r = detail.release!;
  const rollback = canRollBack(detail);
  if (r.status === 'Release failed') {
    return rollback
      ? `fleetwave release retry ${r.id}  or  fleetwave release rollback ${r.id}`
      : `fleetwave release retry ${r.id}  (nothing to roll back: no instance left its previous edition)`;
  }
  if (r.status === 'Rollback failed' && rollback) return `fleetwave release rollback ${r.id}  (tries the instances that did not go back again)`;
  return undefined;
}
