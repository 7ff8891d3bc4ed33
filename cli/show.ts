// `release show`: a release's summary and timeline (batches, per-instance steps,
// checkpoints, change records) as text. Pure: detail in, lines out.
import type { ReleaseDetail, ReleaseSpec } from '../proto/gen/fleetwave/v1/admin.js';
import { formatDuration } from '../common/durations.js';
import { formatDateTime, formatSpan, formatTime, orDash, table } from './format.js';
import { rollbackStart } from './progress-steps.js';

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

export function renderReleaseDetail(detail: ReleaseDetail): string {
  const r = detail.release;
  if (!r) return 'release: no data';
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

  out.push('', 'Batches');
  out.push(
    indent(
      table(
        ['#', 'group', 'status', 'started', 'finished', 'took', 'checkpoint', 'instances'],
        detail.batches.map((b) => [
          b.number,
          b.group,
          b.status,
          formatTime(b.startedUnixMs),
          formatTime(b.finishedUnixMs),
          formatSpan(b.startedUnixMs, b.finishedUnixMs),
          b.checkpoint ? `${b.checkpoint}${b.checkpointBy ? ` by ${b.checkpointBy}` : ''}${b.checkpointComment ? `: ${b.checkpointComment}` : ''}` : '-',
          b.instances.join(' '),
        ]),
      ),
    ),
  );

  out.push('', 'Instances');
  for (const i of detail.instances) {
    out.push(`  ${i.instance} (${i.group}, batch ${i.batch}${i.rollbackBatch ? `, rollback batch ${i.rollbackBatch}` : ''}): ${i.status}${i.step ? `, step ${i.step}` : ''}${i.edition ? `, edition ${i.edition}` : ''}${i.updateOrder ? `, ${i.updateOrder}` : ''}${i.error ? `: ${i.error}` : ''}`);
    for (const s of i.steps) {
      out.push(
        `    ${s.step.padEnd(10)} ${s.status.padEnd(8)} ${formatTime(s.startedUnixMs)} → ${formatTime(s.finishedUnixMs)}  ${formatSpan(s.startedUnixMs, s.finishedUnixMs).padStart(6)}${s.error ? `  ${s.error}` : ''}`,
      );
    }
  }

  if (detail.changes.length) {
    out.push('', 'Changes');
    out.push(
      indent(
        table(
          ['at', 'actor', 'action', 'comment', 'result'],
          detail.changes.map((c) => [formatDateTime(c.atUnixMs), orDash(c.actor), c.action, orDash(c.comment), orDash(c.result)]),
        ),
      ),
    );
  }
  return out.join('\n');
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
