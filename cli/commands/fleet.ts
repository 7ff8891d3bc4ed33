// `fleetwave agent list`, `instance list` and `history`: what the fleet looks like.
import type { Command } from 'commander';
import { describeSkew } from '../../common/clock.js';
import { AGENT_STATUSES, INSTANCE_LIST_STATUSES } from '../../common/listing.js';
import type { AgentInfo, ChangeRecord, Instance } from '../../proto/gen/fleetwave/v1/admin.js';
import { formatDateTime, formatTime, orDash, table, toJson } from '../format.js';
import type { Io } from '../io.js';
import { JsonArrayWriter, forEachPage, nextPageLine, parsePageFlags, renderListSummary, summarize, withPaging, type PageAnswer, type PageFlags } from '../listing.js';
import type { OutputFormat } from '../options.js';
import { outputOf, withClient, withListing } from './shared.js';

/**
 * `agent` is also the daemon (`fleetwave agent --controller ...`), so `agent list`
 * hangs off the same command when it exists.
 */
export function registerFleetCommands(program: Command, io: Io): void {
  const agent = program.commands.find((c) => c.name() === 'agent') ?? program.command('agent').description('agents');
  withPaging(withListing(agent.command('list')), AGENT_STATUSES, 'only agents with an instance running this edition')
    .description('list the agents (hosts) the controller knows: a summary per group and status, then the agents by id')
    .action(async (flags: PageFlags, cmd: Command) => {
      const output = outputOf(cmd);
      const request = parsePageFlags(flags, AGENT_STATUSES);
      await withClient(cmd, io, (client) =>
        printPaged(io, output, request, 'agent', AGENT_STATUSES, agentTable, async (after, limit) => {
          const page = await client.listAgents({ ...request.filter, after, limit });
          return { rows: page.agents, summary: page.summary, nextAfter: page.nextAfter };
        }, (a) => a),
      );
    });

  const instance = program.command('instance').description('application instances');
  withPaging(withListing(instance.command('list')), INSTANCE_LIST_STATUSES, 'only instances running this edition')
    .description('list instances: which edition each runs, and its status (a summary per group and status first)')
    .argument('[app]', 'only this application')
    .action(async (app: string | undefined, flags: PageFlags, cmd: Command) => {
      const output = outputOf(cmd);
      const request = parsePageFlags(flags, INSTANCE_LIST_STATUSES);
      await withClient(cmd, io, (client) =>
        printPaged(io, output, request, 'instance', INSTANCE_LIST_STATUSES, instanceTable, async (after, limit) => {
          const page = await client.listInstances(app ?? '', { ...request.filter, after, limit });
          return { rows: page.instances, summary: page.summary, nextAfter: page.nextAfter };
        }, (i) => i),
      );
    });

  withListing(program.command('history'))
    .description('change records of an application (without one: all, with agent rekey and revoke): who did what, when, with which comment')
    .argument('[app]', 'application name')
    .action(async (app: string | undefined, _flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { changes } = await withClient(cmd, io, (client) => client.history(app ?? ''));
      io.out(output === 'json' ? toJson(changes) : historyTable(changes));
    });
}

/**
 * A paged listing, printed: JSON element by element as pages arrive; a table as the summary (from the first page)
 * and then one table of every row (one table, so its columns line up). A --limit that stops early tells the cursor.
 */
async function printPaged<T>(
  io: Io,
  output: OutputFormat,
  request: ReturnType<typeof parsePageFlags>,
  noun: string,
  statuses: readonly string[],
  render: (rows: T[]) => string,
  fetch: (after: string, limit: number) => Promise<PageAnswer<T>>,
  keyOf: (row: T) => { group: string; status: string },
): Promise<void> {
  if (output === 'json') {
    const json = new JsonArrayWriter(io);
    const next = await forEachPage(request, fetch, (page) => page.rows.forEach((row) => json.push(row)));
    json.end();
    if (next) io.err(nextPageLine(next));
    return;
  }
  const rows: T[] = [];
  const next = await forEachPage(request, fetch, (page, first) => {
    // A controller from before paging sends no summary, and every row at once: count them here.
    if (first) io.out(`${renderListSummary(noun, page.summary ?? summarize(page.rows.map(keyOf)), statuses)}\n`);
    rows.push(...page.rows);
  });
  io.out(render(rows));
  if (next) io.out(`\n${rows.length} shown; ${nextPageLine(next)}`);
}

function agentTable(agents: AgentInfo[]): string {
  return table(
    ['id', 'group', 'status', 'host', 'last seen', 'connected', 'version', 'labels'],
    agents.map((a) => [
      a.id,
      a.group,
      describeSkew(a.clockSkewMs) ? `${a.status} (clock ${describeSkew(a.clockSkewMs)})` : a.status,
      orDash(a.host),
      formatTime(a.lastSeenUnixMs),
      formatDateTime(a.connectedUnixMs),
      orDash(a.version),
      Object.entries(a.labels).map(([k, v]) => `${k}=${v}`).join(' ') || '-',
    ]),
  );
}

function instanceTable(instances: Instance[]): string {
  return table(
    ['app', 'instance', 'group', 'edition', 'status', 'port', 'quiesced', 'kept editions'],
    instances.map((i) => [
      i.app,
      i.instance,
      i.group,
      orDash(i.edition),
      i.status,
      orDash(i.servicePort),
      i.quiesced ? 'yes' : 'no',
      i.keptEditions.join(' ') || '-',
    ]),
  );
}

function historyTable(changes: ChangeRecord[]): string {
  return table(
    ['at', 'actor', 'action', 'release', 'comment', 'result'],
    changes.map((c) => [formatDateTime(c.atUnixMs), orDash(c.actor), c.action, orDash(c.releaseId), orDash(c.comment), orDash(c.result)]),
  );
}
