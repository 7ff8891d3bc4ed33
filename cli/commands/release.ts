// `fleetwave release create|show|list|watch` and the operator actions.
import type { Command } from 'commander';
import { INSTANCE_STATUSES } from '../../controller/domain/transitions.js';
import type { Release, ReleaseDetail, ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { BadInputError } from '../../common/errors.js';
import type { AdminClient } from '../client.js';
import { formatDateTime, table, toJson } from '../format.js';
import type { Io } from '../io.js';
import { JsonArrayWriter, forEachPage, nextPageLine, parsePageFlags, withPaging, type PageFlags, type PageRequest } from '../listing.js';
import { buildReleaseSpec, parseCount, type OutputFormat, type ReleaseFlags } from '../options.js';
import { addSpecOptions, explainSpecError, mergeSpec, readSpecFile } from '../spec-file.js';
import { renderChangeSection, renderInstanceLines, renderReleaseHead } from '../show.js';
import { watchUntil, type WatchAim } from '../watch.js';
import { outputOf, withClient, withController, withListing } from './shared.js';

/** Operator actions, each a ReleaseAction call (see admin.proto). */
const ACTIONS: Record<string, string> = {
  start: 'start a release created with --no-start',
  pause: 'pause after the steps in flight (Suspending → Suspended)',
  resume: 'resume a suspended release',
  continue: 'start the next batch of a manual-batch release',
  approve: 'approve the checkpoint the release waits at',
  reject: 'reject the checkpoint the release waits at (the release fails)',
  trigger: 'fire the manual trigger the release waits for',
  retry: 'retry the failed instances of a failed release',
  rollback: 'roll the release back to the previous edition (from the kept editions, no download)',
  cancel: 'stop a release that has not finished',
};

/** Where `release ACTION --watch` counts as success (exit 0); see cli/watch.ts. */
const ACTION_AIMS: Record<string, WatchAim> = { rollback: 'Rolled back', cancel: 'Release failed', reject: 'Release failed' };

export function registerReleaseCommands(program: Command, io: Io): void {
  const release = program.command('release').description('phased releases of an edition');

  addSpecOptions(withController(release.command('create')), 'release')
    .description('release an edition to an app\'s instances in phases; prints the release id')
    .argument('[app]', 'application name (or app: in the --file)')
    .option('-f, --file <path>', 'release file, YAML or JSON, keys = the long flag names (docs/release-files.md); flags given beside it win')
    .option('--dry-run', 'plan the batches (the controller\'s planner, the instances now) and print them; nothing is created')
    .option('--watch', 'follow the release until it ends (exit 0 only if Released)')
    .action(async (appArg: string | undefined, flags: { file?: string; dryRun?: boolean; watch?: boolean }, cmd: Command) => {
      if (flags.dryRun && flags.watch) throw new BadInputError('--dry-run creates nothing to --watch');
      const file = flags.file === undefined ? undefined : readSpecFile(flags.file, 'release');
      const { subject, flags: values } = mergeSpec(cmd, file, appArg, 'release');
      let spec: ReleaseSpec;
      try {
        spec = buildReleaseSpec(subject, values as ReleaseFlags);
      } catch (err) {
        throw explainSpecError(err, file, cmd);
      }
      await withClient(cmd, io, async (client) => {
        const detail = await client.createRelease(spec, flags.dryRun ?? false);
        if (flags.dryRun) {
          io.out(renderPlan(detail, spec));
          return;
        }
        const id = detail.release?.id ?? '';
        io.out(id);
        if (flags.watch) await watchUntil(client, id, io, 'Released');
      });
    });

  withPaging(withListing(release.command('show')), INSTANCE_STATUSES, 'only instances running this edition now')
    .description('a release: summary and timeline (batches with counts per status, then each instance\'s steps, checkpoints, changes)')
    .argument('<id>', 'release id')
    .action(async (id: string, flags: PageFlags, cmd: Command) => {
      const output = outputOf(cmd);
      const request = parsePageFlags(flags, INSTANCE_STATUSES);
      await withClient(cmd, io, (client) => showRelease(client, id, request, output, io));
    });

  withListing(release.command('list'))
    .description('list releases, newest first')
    .argument('[app]', 'only this application')
    .action(async (app: string | undefined, _flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { releases } = await withClient(cmd, io, (client) => client.listReleases(app ?? ''));
      io.out(output === 'json' ? toJson(releases) : releaseTable(releases));
    });

  withController(release.command('watch'))
    .description('follow a release until it ends; exit 0 if it ends Released (Rolled back for a release already rolling back), 1 otherwise')
    .argument('<id>', 'release id')
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      await withClient(cmd, io, (client) => watchUntil(client, id, io, 'auto'));
    });

  for (const [action, description] of Object.entries(ACTIONS)) {
    const verb = withController(release.command(action))
      .description(description)
      .argument('<id>', 'release id')
      .option('--comment <text>', 'why (kept in the change records)')
      .option('--watch', `follow the release until it ends (exit 0 only if ${ACTION_AIMS[action] ?? 'Released'})`);
    if (action === 'rollback') verb.option('--batches <n>', 'batches for the rollback (default: as the release)');
    verb.action(async (id: string, flags: { comment?: string; watch?: boolean; batches?: string }, cmd: Command) => {
      const batches = flags.batches === undefined ? 0 : parseCount(flags.batches, '--batches');
      await withClient(cmd, io, async (client) => {
        const detail = await client.releaseAction({ id, action, comment: flags.comment ?? '', batches });
        io.out(statusLine(detail));
        if (flags.watch) await watchUntil(client, id, io, ACTION_AIMS[action] ?? 'Released');
      });
    });
  }

  withController(program.command('rollback'))
    .description('back-out: release the edition that was active before the newest Released release, with its policy, from the kept editions')
    .argument('<app>', 'application name')
    .option('--group <name>', 'back out the newest release of this group (default: the newest release of any group)')
    .option('--comment <text>', 'why (kept in the change records)')
    .option('--watch', 'follow the back-out release until it ends (exit 0 only if Released)')
    .action(async (app: string, flags: { group?: string; comment?: string; watch?: boolean }, cmd: Command) => {
      await withClient(cmd, io, async (client) => {
        const detail = await client.backOut({ app, group: flags.group ?? '', comment: flags.comment ?? '' });
        const id = detail.release?.id ?? '';
        io.out(id);
        // The back-out is a forward release of the older edition: it succeeds when it ends Released.
        if (flags.watch) await watchUntil(client, id, io, 'Released');
      });
    });
}

/**
 * `release show`, page after page of instances: the head (or, in JSON, the release object up to its instances) from
 * the first page, the instances as they arrive, the change records last.
 */
async function showRelease(client: AdminClient, id: string, request: PageRequest, output: OutputFormat, io: Io): Promise<void> {
  let first: ReleaseDetail | undefined;
  let json: JsonArrayWriter | undefined;
  const filtered = Boolean(request.filter.group || request.filter.status || request.filter.edition);
  const fetch = async (after: string, limit: number) => {
    const detail = await client.getRelease(id, { ...request.filter, after, limit });
    first ??= detail;
    return { rows: detail.instances, summary: detail.summary, nextAfter: detail.nextAfter };
  };
  const next = await forEachPage(request, fetch, (page, isFirst) => {
    if (isFirst && output === 'json') {
      // The object as toJson prints it, its instances last: they are written as they arrive.
      const { instances: _rows, nextAfter: _cursor, ...head } = first!;
      json = new JsonArrayWriter(io, `${toJson(head).slice(0, -2)},\n  "instances": [`, '  ]\n}', '    ');
    } else if (isFirst) {
      io.out(`${renderReleaseHead(first!, filtered)}\n\nInstances`);
    }
    if (json) page.rows.forEach((row) => json!.push(row));
    else for (const line of renderInstanceLines(page.rows)) io.out(line);
  });
  if (json) json.end();
  else if (first?.changes.length) io.out(`\n${renderChangeSection(first.changes)}`);
  if (next) (json ? io.err : io.out)(nextPageLine(next));
}

/** Most instance ids a dry run prints per batch; the rest are counted. */
const PLAN_IDS = 8;

/** A dry run's answer: the batches as they would run, each with its group, instances and checkpoint. */
export function renderPlan(detail: ReleaseDetail, spec: ReleaseSpec): string {
  const r = detail.release;
  const total = detail.batches.reduce((n, b) => n + (b.instanceCount || b.instances.length), 0);
  const checkpoint = (n: number) =>
    [spec.approvalBefore.includes(n) ? 'approval' : '', spec.triggerBefore.includes(n) ? 'trigger' : ''].filter(Boolean).join(' + ') || '-';
  const ids = (b: ReleaseDetail['batches'][number]) => {
    const count = b.instanceCount || b.instances.length;
    const shown = b.instances.slice(0, PLAN_IDS).join(' ');
    return count > PLAN_IDS ? `${shown} … and ${count - PLAN_IDS} more` : shown;
  };
  const head = `dry run: ${r?.app ?? spec.app} ${r?.edition ?? spec.edition} to group ${r?.group || 'all'} (${r?.spec?.strategy || spec.strategy || 'rolling'}) in ${detail.batches.length} batch(es), ${total} instance(s); nothing was created`;
  const rows = detail.batches.map((b) => [String(b.number), b.group, String(b.instanceCount || b.instances.length), checkpoint(b.number), ids(b)]);
  return `${head}\n${table(['batch', 'group', 'count', 'checkpoint', 'instances'], rows)}`;
}

function statusLine(detail: ReleaseDetail): string {
  const r = detail.release;
  if (!r) return 'done';
  return `release ${r.id}: ${r.status}${r.waitingFor ? ` (waiting for ${r.waitingFor})` : ''}${r.message ? `: ${r.message}` : ''}`;
}

function releaseTable(releases: Release[]): string {
  return table(
    ['id', 'app', 'edition', 'group', 'status', 'batch', 'created', 'by'],
    releases.map((r) => [
      r.id,
      r.app,
      r.edition,
      r.group || 'all',
      r.status + (r.waitingFor ? ` (waiting for ${r.waitingFor})` : ''),
      r.batchCount ? `${r.currentBatch}/${r.batchCount}` : '-',
      formatDateTime(r.createdUnixMs),
      r.createdBy || '-',
    ]),
  );
}
