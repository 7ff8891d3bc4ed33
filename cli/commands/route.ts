// `fleetwave route add|list|remove`: routing rules, which requests the routers send to which edition (docs/routing.md).
import type { Command } from 'commander';
import type { Route } from '../../proto/gen/fleetwave/v1/admin.js';
import { describeMatch, type RouteKind } from '../../controller/domain/routing.js';
import { formatDateTime, orDash, table, toJson } from '../format.js';
import type { Io } from '../io.js';
import { buildRouteRequest, type RouteFlags } from '../options.js';
import { outputOf, withClient, withController, withListing } from './shared.js';

export function registerRouteCommands(program: Command, io: Io): void {
  const route = program
    .command('route')
    .description('routing rules: requests that match go to a chosen edition, the rest to the default edition (evaluated by ascending priority)');

  withController(route.command('add'))
    .description('add a rule sending matching requests to an edition that runs somewhere; prints the rule id')
    .argument('<app>', 'application name')
    .requiredOption('--edition <name>', 'edition the matching requests go to (active on at least one instance)')
    .option('--header <NAME=VALUE>', 'requests with this header (name without case, exact value)')
    .option('--cookie <NAME=VALUE>', 'requests with this cookie (exact name and value)')
    .option('--path-prefix <path>', 'requests whose path starts with this, e.g. /beta')
    .option('--source <cidr>', 'requests from this network, e.g. 10.1.0.0/16 or 2001:db8::/32')
    .option('--percent <n>', 'this share of clients (1-100), sticky per client through a cookie')
    .option('--priority <n>', 'rules run by ascending priority, then in the order they were added (default 0)')
    .option('--comment <text>', 'why, for the history')
    .action(async (app: string, flags: RouteFlags, cmd: Command) => {
      const request = buildRouteRequest(app, flags);
      const added = await withClient(cmd, io, (client) => client.addRoute(request));
      io.out(added.id);
      io.err(`route ${added.id} added: ${match(added)} → edition ${added.edition} (priority ${added.priority})`);
    });

  withListing(route.command('list'))
    .description("an app's routing rules in evaluation order")
    .argument('<app>', 'application name')
    .action(async (app: string, _flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { routes } = await withClient(cmd, io, (client) => client.listRoutes(app));
      io.out(output === 'json' ? toJson(routes) : routeTable(routes));
    });

  withController(route.command('remove'))
    .description('remove a rule (its requests go to the default edition again)')
    .argument('<app>', 'application name')
    .argument('<id>', 'rule id (route list shows them)')
    .option('--comment <text>', 'why, for the history')
    .action(async (app: string, id: string, flags: { comment?: string }, cmd: Command) => {
      const removed = await withClient(cmd, io, (client) => client.removeRoute({ app, id, comment: flags.comment ?? '' }));
      io.out(`route ${removed.id} removed: ${match(removed)} → edition ${removed.edition}`);
    });
}

function match(r: Route): string {
  return describeMatch({ ...r, kind: r.kind as RouteKind });
}

function routeTable(routes: Route[]): string {
  return table(
    ['id', 'priority', 'match', 'edition', 'created', 'by'],
    routes.map((r) => [r.id, r.priority, match(r), r.edition, formatDateTime(r.createdUnixMs), orDash(r.createdBy)]),
  );
}
