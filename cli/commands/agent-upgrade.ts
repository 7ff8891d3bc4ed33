// `fleetwave agent publish|upgrade|upgrade-status|upgrade-cancel`: the agent program released through fleetwave (docs/agent-upgrade.md).
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { BadInputError, FleetwaveError } from '../../common/errors.js';
import { parseDuration } from '../../common/durations.js';
import type { AgentUpgrade } from '../../proto/gen/fleetwave/v1/admin.js';
import type { AdminClient } from '../client.js';
import { formatBytes, orDash, table, toJson } from '../format.js';
import type { Io } from '../io.js';
import { collect, parseCount } from '../options.js';
import { outputOf, withClient, withController, withListing } from './shared.js';

/** The reserved app whose editions are agent packages (controller/domain/agent-upgrade.ts). */
const AGENT_APP = 'fleetwave-agent';
/** How often a watch asks for the upgrade's state. */
const WATCH_POLL_MS = 500;

interface UpgradeFlags {
  to?: string;
  batches?: string;
  batchSize?: string;
  group?: string[];
  timeout?: string;
  watch?: boolean;
}

/** A watched upgrade that ended failed: exit 1 with its reason, the rule every watch follows. */
export class UpgradeFailedError extends FleetwaveError {}

export function registerAgentUpgradeCommands(program: Command, io: Io): void {
  const agent = program.commands.find((c) => c.name() === 'agent') ?? program.command('agent').description('agents');

  withController(agent.command('publish'))
    .description(`install an agent package as an edition of ${AGENT_APP} (a .tar.gz holding fleetwave-agent.cjs or an executable fleetwave-agent)`)
    .argument('<file>', 'the package')
    .requiredOption('--version <version>', 'the version the package reports (its Hello says it), e.g. 0.3.0')
    .option('--description <text>', 'what this version is')
    .action(async (file: string, flags: { version: string; description?: string }, cmd: Command) => {
      if (!/\.(tar\.gz|tgz)$/.test(file)) throw new BadInputError(`agent publish: ${file}: expected a .tar.gz package holding fleetwave-agent.cjs or fleetwave-agent`);
      const content = await readFile(file).catch((err: NodeJS.ErrnoException) => {
        throw new BadInputError(`agent publish: cannot read '${file}': ${err.code ?? err.message}`, { cause: err });
      });
      const request = { app: AGENT_APP, name: flags.version, description: flags.description ?? '', content, url: '', sha256: '', size: 0, format: 'tar.gz', fileName: '' };
      const edition = await withClient(cmd, io, (client) => client.installEdition(request));
      io.out(`agent package ${edition.name} published (${formatBytes(edition.size)}, sha256 ${edition.sha256.slice(0, 12)}); roll it out with: fleetwave agent upgrade --to ${edition.name}`);
    });

  withListing(agent.command('upgrade'))
    .description('replace the agent program on the hosts, in batches: each agent stages the package, re-execs through its keeper and comes back with the new version')
    .requiredOption('--to <version>', `the agent package (an edition of ${AGENT_APP}, see agent publish)`)
    .option('--batches <n>', 'split the agents into this many batches (default 1)')
    .option('--batch-size <n>', 'agents per batch, instead of --batches')
    .option('--group <name>', 'only the agents of this group (repeatable; default every agent)', collect)
    .option('--timeout <duration>', 'how long one agent has to come back with the new version (default 5m)')
    .option('--watch', 'follow it until it ends; exit 0 only if every agent upgraded (1 if it failed or was cancelled)')
    .addHelpText('after', '\nStop it with: fleetwave agent upgrade-cancel [u-ID] [--comment TEXT]')
    .action(async (flags: UpgradeFlags, cmd: Command) => {
      const request = {
        version: flags.to ?? '',
        batches: flags.batches === undefined ? 0 : parseCount(flags.batches, '--batches'),
        batchSize: flags.batchSize === undefined ? 0 : parseCount(flags.batchSize, '--batch-size'),
        groups: flags.group ?? [],
        timeoutMs: flags.timeout === undefined ? 0 : parseDuration(flags.timeout, '--timeout'),
      };
      if (request.batches > 0 && request.batchSize > 0) throw new BadInputError('agent upgrade: give --batches or --batch-size, not both');
      await withClient(cmd, io, async (client) => {
        const upgrade = await client.startAgentUpgrade(request);
        if (flags.watch) return watchUpgrade(client, upgrade, io);
        io.out(outputOf(cmd) === 'json' ? toJson(upgrade) : `${summaryLine(upgrade)}\nfollow it with: fleetwave agent upgrade-status ${upgrade.id} --watch`);
      });
    });

  withListing(agent.command('upgrade-status'))
    .description('an agent upgrade (default: the newest) and where each agent is')
    .argument('[id]', 'upgrade id (u-…)')
    .option('--watch', 'follow it until it ends; exit 0 only if every agent upgraded (1 if it failed or was cancelled)')
    .action(async (id: string | undefined, flags: { watch?: boolean }, cmd: Command) => {
      await withClient(cmd, io, async (client) => {
        const upgrade = await client.getAgentUpgrade(id ?? '');
        if (flags.watch) return watchUpgrade(client, upgrade, io);
        io.out(outputOf(cmd) === 'json' ? toJson(upgrade) : `${summaryLine(upgrade)}\n${targetTable(upgrade)}`);
      });
    });

  // A verb beside upgrade-status rather than `upgrade --cancel`: `upgrade` requires --to, and the id is an argument here.
  withListing(agent.command('upgrade-cancel'))
    .description('stop an agent upgrade (default: the newest): agents not yet sent the package are skipped, no further batch is sent; agents already sent it finish on their own')
    .argument('[id]', 'upgrade id (u-…)')
    .option('--comment <text>', 'why (kept in the change records)')
    .action(async (id: string | undefined, flags: { comment?: string }, cmd: Command) => {
      await withClient(cmd, io, async (client) => {
        const upgrade = await client.cancelAgentUpgrade({ id: id ?? '', comment: flags.comment ?? '' });
        if (outputOf(cmd) === 'json') return io.out(toJson(upgrade));
        const inFlight = upgrade.targets.filter((t) => t.status === 'sent' || t.status === 'restarting').length;
        const after = inFlight ? `\n${inFlight} agent(s) already sent the package finish on their own; see them with: fleetwave agent upgrade-status ${upgrade.id}` : '';
        io.out(`${summaryLine(upgrade)}${after}`);
      });
    });
}

/** Prints a line per change until the upgrade ends; throws (exit 1) unless it ended upgraded. */
async function watchUpgrade(client: AdminClient, first: AgentUpgrade, io: Io): Promise<void> {
  let upgrade = first;
  let last = '';
  for (;;) {
    const line = summaryLine(upgrade);
    if (line !== last) io.out(line);
    last = line;
    if (upgrade.status !== 'upgrading') break;
    await new Promise((resolve) => setTimeout(resolve, WATCH_POLL_MS));
    upgrade = await client.getAgentUpgrade(upgrade.id);
  }
  io.out(targetTable(upgrade));
  if (upgrade.status !== 'upgraded') throw new UpgradeFailedError(`agent upgrade ${upgrade.id} ended ${upgrade.status}: ${upgrade.message}`);
}

/** `u-1a2b3c4d to 0.3.0: upgrading, batch 2/5; 3 upgraded, 2 restarting, 5 pending` */
export function summaryLine(u: AgentUpgrade): string {
  const counts = new Map<string, number>();
  for (const t of u.targets) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  const order = ['upgraded', 'restarting', 'sent', 'pending', 'failed', 'skipped'];
  const parts = order.filter((s) => counts.has(s)).map((s) => `${counts.get(s)} ${s}`);
  const why = u.message ? ` (${u.message})` : '';
  return `${u.id} to ${u.version}: ${u.status}${why}, batch ${u.currentBatch}/${u.batches}; ${parts.join(', ')}`;
}

function targetTable(u: AgentUpgrade): string {
  return table(
    ['agent', 'group', 'batch', 'status', 'from', 'error'],
    u.targets.map((t) => [t.agentId, t.group, String(t.batch), t.status, orDash(t.fromVersion), orDash(t.error)]),
  );
}
