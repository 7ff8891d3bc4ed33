// `fleetwave agent list`, `instance list` and `history`: what the fleet looks like.
import type { Command } from 'commander';
import { describeSkew } from '../../common/clock.js';
import type { AgentInfo, ChangeRecord, Instance } from '../../proto/gen/fleetwave/v1/admin.js';
import { formatDateTime, formatTime, orDash, table, toJson } from '../format.js';
import type { Io } from '../io.js';
import { outputOf, withClient, withListing } from './shared.js';

/**
 * `agent` is also the daemon (`fleetwave agent --controller ...`), so `agent list`
 * hangs off the same command when it exists.
 */
export function registerFleetCommands(program: Command, io: Io): void {
  const agent = program.commands.find((c) => c.name() === 'agent') ?? program.command('agent').description('agents');
  withListing(agent.command('list'))
    .description('list the agents (hosts) the controller knows')
    .action(async (_flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { agents } = await withClient(cmd, io, (client) => client.listAgents());
      io.out(output === 'json' ? toJson(agents) : agentTable(agents));
    });

  const instance = program.command('instance').description('application instances');
  withListing(instance.command('list'))
    .description('list instances: which edition each runs, and its status')
    .argument('[app]', 'only this application')
    .action(async (app: string | undefined, _flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { instances } = await withClient(cmd, io, (client) => client.listInstances(app ?? ''));
      io.out(output === 'json' ? toJson(instances) : instanceTable(instances));
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
