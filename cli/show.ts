// `release show`: a release's summary and timeline (batches with their instances' counts per status, per-instance
// steps, checkpoints, change records) as text. Pure: detail in, lines out. A paged show prints the head (everything
// up to the instances) from the first page, the instance lines page by page, and the changes last.
import type { Batch, ChangeRecord, InstanceProgress, ListSummary, ReleaseDetail, ReleaseSpec } from '../proto/gen/fleetwave/v1/admin.js';
import { formatDuration } from '../common/durations.js';
import { INSTANCE_STATUSES } from '../controller/domain/transitions.js';
import { formatDateTime, formatSpan, formatTime, orDash, table } from './format.js';
import { orderStatuses, summarize } from './listing.js';
import { rollbackStart } from './progress-steps.js';

/** A batch's instance ids are listed up to this many; a bigger batch shows its count (its rows follow anyway). */
const BATCH_IDS_SHOWN = 10;

export function describeSpec(spec: ReleaseSpec | undefined): string {
  if (!spec) return '-';
  const parts = [
    spec.strategy || 'rolling',
    spec.batches ? `${spec.batches} batch(es) per group` : '',
    spec.groupSize ? `group size ${spec.groupSize}` : '',
    `${spec.batchMode || 'auto'} batches${spec.waitMs ? ` (wait ${formatDuration(spec.waitMs)})` : ''}`,
    `${spec.reset || 'soft'} reset`,
    spec.updateOrder ? spec.updateOrder : '',
    spec.drainMs ? `drain ${formatDuration(spec.drainMs)}${spec.fullDrain ? ' (full)' : ''}` : spec.fullDrain ? 'full drain' : '',
    `best-effort ${spec.bestEffort ? 'on' : 'off'}`,
    spec.autoRollback ? 'auto-rollback' : '',
    spec.maxUnavailable ? `max unavailable ${spec.maxUnavailable}` : '',
    spec.approvalBefore.length ? `approval before ${spec.approvalBefore.join(',')}` : '',
    spec.triggerBefore.length ? `trigger before ${spec.triggerBefore.join(',')}` : '',
  ];
  return parts.filter(Boolean).join(', ');
}

/** The whole show of a release whose instances are all in `detail`. */
export function renderReleaseDetail(detail: ReleaseDetail): string {
  if (!detail.release) return 'release: no data';
  const out = [renderReleaseHead(detail), '', 'Instances', ...renderInstanceLines(detail.instances)];
  const changes = renderChangeSection(detail.changes);
  return [...out, ...(changes ? ['', changes] : [])].join('\n');
}

/**
 * Everything before the instance lines: the release's fields, its instances' counts per status (`filtered`: of the
 * instances the filters match) and the batches with their counts. Counts come from the server's summary, else
 * from the instances at hand.
 */
export function renderReleaseHead(detail: ReleaseDetail, filtered = false): string {
  const r = detail.release;
  if (!r) return 'release: no data';
  const summary = detail.summary ?? summarize(detail.instances);
  const out: string[] = [];
  const field = (name: string, value: string) => out.push(`${name.padEnd(10)}${value}`);
  field('Release', r.id);
  field('App', `${r.app}  edition ${r.edition}  group ${r.group || 'all'}`);
  field('Status', `${r.status}${r.batchCount ? `  (batch ${r.currentBatch}/${r.batchCount})` : ''}`);
  if (r.rollbackBatchCount) field('Rollback', rollbackField(detail));
  if (r.waitingFor) field('Waiting', r.waitingFor);
  if (r.message) field('Message', r.message);
  field('Created', `${formatDateTime(r.createdUnixMs)}${r.createdBy ? ` by ${r.createdBy}` : ''}`);
  if (r.finishedUnixMs) field('Finished', `${formatDateTime(r.finishedUnixMs)} (took ${formatSpan(r.createdUnixMs, r.finishedUnixMs)})`);
  field('Plan', describeSpec(r.spec));
  field('Instances', `${summary.total}${filtered ? ' matching' : ''}${countsText(summary, () => true)}`);

  out.push('', 'Batches');
  out.push(
    indent(
      table(
        ['#', 'group', 'status', 'started', 'finished', 'took', 'checkpoint', 'progress', 'instances'],
        detail.batches.map((b) => [
          b.number,
          b.group,
          b.status,
          formatTime(b.startedUnixMs),
          formatTime(b.finishedUnixMs),
          formatSpan(b.startedUnixMs, b.finishedUnixMs),
          b.checkpoint ? `${b.checkpoint}${b.checkpointBy ? ` by ${b.checkpointBy}` : ''}${b.checkpointComment ? `: ${b.checkpointComment}` : ''}` : '-',
          countsText(summary, (c) => c.batch === b.number).replace(/^: /, '') || '-',
          batchMembers(b),
        ]),
      ),
    ),
  );
  return out.join('\n');
}

/** A batch's instance ids, or how many it has when it is big (or the controller sent its count without the ids). */
function batchMembers(b: Batch): string {
  const count = Math.max(b.instanceCount, b.instances.length);
  return count > BATCH_IDS_SHOWN || b.instances.length < count ? `${count} instances` : b.instances.join(' ');
}

/** One line per instance, then one per step of its timeline. */
export function renderInstanceLines(instances: InstanceProgress[]): string[] {
  const out: string[] = [];
  for (const i of instances) {
    out.push(`  ${i.instance} (${i.group}, batch ${i.batch}${i.rollbackBatch ? `, rollback batch ${i.rollbackBatch}` : ''}): ${i.status}${i.step ? `, step ${i.step}` : ''}${i.edition ? `, edition ${i.edition}` : ''}${i.updateOrder ? `, ${i.updateOrder}` : ''}${i.error ? `: ${i.error}` : ''}`);
    for (const s of i.steps) {
      out.push(
        `    ${s.step.padEnd(10)} ${s.status.padEnd(8)} ${formatTime(s.startedUnixMs)} → ${formatTime(s.finishedUnixMs)}  ${formatSpan(s.startedUnixMs, s.finishedUnixMs).padStart(6)}${s.error ? `  ${s.error}` : ''}`,
      );
    }
  }
  return out;
}

/** The change records as a table under a heading; '' when there are none. */
export function renderChangeSection(changes: ChangeRecord[]): string {
  if (!changes.length) return '';
  const rows = changes.map((c) => [formatDateTime(c.atUnixMs), orDash(c.actor), c.action, orDash(c.comment), orDash(c.result)]);
  return ['Changes', indent(table(['at', 'actor', 'action', 'comment', 'result'], rows))].join('\n');
}

/** ': 3 released, 1 failed' over the counts `which` keeps, in lifecycle order; '' when none. */
function countsText(summary: ListSummary, which: (c: ListSummary['counts'][number]) => boolean): string {
  const byStatus = new Map<string, number>();
  for (const c of summary.counts.filter(which)) byStatus.set(c.status, (byStatus.get(c.status) ?? 0) + c.count);
  const statuses = orderStatuses([...byStatus.keys()], INSTANCE_STATUSES);
  return statuses.length ? `: ${statuses.map((s) => `${byStatus.get(s)} ${s}`).join(', ')}` : '';
}

/** The rollback's batch, and when it began and how long it took (its own time, not the release's). */
function rollbackField(detail: ReleaseDetail): string {
  const r = detail.release!;
  const since = rollbackStart(detail);
  const timing = since ? `, began ${formatTime(since)}${r.finishedUnixMs ? ` (took ${formatSpan(since, r.finishedUnixMs)})` : ''}` : '';
  return `batch ${r.rollbackCurrentBatch}/${r.rollbackBatchCount} (newest release batch first)${timing}`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
