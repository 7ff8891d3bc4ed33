// `fleetwave app create|apply|list` and `fleetwave edition install|list|show`.
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { App, Edition, Validation } from '../../proto/gen/fleetwave/v1/admin.js';
import { describeMatch, type RouteKind } from '../../controller/domain/routing.js';
import { BadInputError, NotFoundError } from '../../common/errors.js';
import { formatBytes, formatDateTime, formatDuration, orDash, table, toJson } from '../format.js';
import type { Io } from '../io.js';
import { allInstances } from '../listing.js';
import { buildApp, buildInstallRequest, buildValidateRequest, collect, type AppFlags, type EditionFlags, type ValidateFlags } from '../options.js';
import type { AdminClient } from '../client.js';
import { addSpecOptions, explainSpecError, mergeSpec, readSpecFile } from '../spec-file.js';
import { outputOf, withClient, withController, withListing } from './shared.js';

export function registerAppCommands(program: Command, io: Io): void {
  const app = program.command('app').description('define applications');

  addSpecOptions(withController(app.command('create')), 'app')
    .description('define an application: how to start it, its env, port variable and health path')
    .argument('<name>', 'application name')
    .action(async (name: string, flags: AppFlags, cmd: Command) => {
      const spec = buildApp(name, flags);
      const created = await withClient(cmd, io, (client) => client.createApp(spec));
      io.out(`app ${created.name} created: ${created.startCommand.join(' ')}`);
    });

  addSpecOptions(withController(app.command('apply')), 'app')
    .description('define an application from a file: created if absent, updated if different (not while a release of it is active), else unchanged')
    .argument('[name]', 'application name (or name: in the --file)')
    .option('-f, --file <path>', 'app file, YAML or JSON, keys = the long flag names (docs/release-files.md); flags given beside it win')
    .action(async (nameArg: string | undefined, flags: { file?: string }, cmd: Command) => {
      const file = flags.file === undefined ? undefined : readSpecFile(flags.file, 'app');
      const { subject, flags: values } = mergeSpec(cmd, file, nameArg, 'app');
      let spec: App;
      try {
        spec = buildApp(subject, values as AppFlags);
      } catch (err) {
        throw explainSpecError(err, file, cmd);
      }
      io.out(await withClient(cmd, io, (client) => applyApp(client, spec)));
    });

  withListing(app.command('list'))
    .description('list applications')
    .action(async (_flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { apps } = await withClient(cmd, io, (client) => client.listApps());
      io.out(output === 'json' ? toJson(apps) : appTable(apps));
    });

  const edition = program.command('edition').description('install and list editions of an application');

  withController(edition.command('install'))
    .description('install an edition (additive: editions are kept side by side)')
    .argument('<app>', 'application name')
    .argument('<edition>', 'edition name, e.g. 2.0')
    .option('--file <path>', 'package to upload to the controller (.tar.gz/.tgz is unpacked, anything else kept as a file)')
    .option('--url <url>', 'package URL the agents download from, instead of --file')
    .option('--sha256 <hex>', 'sha256 of the package at --url')
    .option('--size <bytes>', 'size of the package at --url')
    .option('--description <text>', 'what this edition is')
    .option('--format <format>', 'tar.gz or file (default: from the file name)')
    .option('--as <name>', 'file name a single-file package gets on the hosts, e.g. hello.jar (default: its own name)')
    .action(async (appName: string, editionName: string, flags: EditionFlags, cmd: Command) => {
      const request = buildInstallRequest(appName, editionName, flags);
      if (flags.file !== undefined) request.content = await readPackage(flags.file);
      const installed = await withClient(cmd, io, (client) => client.installEdition(request));
      io.out(`edition ${installed.app} ${installed.name} installed (${installed.format}, ${formatBytes(installed.size)}, sha256 ${installed.sha256.slice(0, 12)})`);
    });

  withListing(edition.command('list'))
    .description('list the editions of an application')
    .argument('<app>', 'application name')
    .action(async (appName: string, _flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { editions, validation } = await withClient(cmd, io, (client) => client.listEditions(appName));
      if (output === 'json') io.out(toJson(validation ? { editions, validation } : editions));
      else io.out(editionTable(editions) + (validation ? `\n\n${validationLine(validation)}` : ''));
    });

  withController(edition.command('validate'))
    .description('validation mode: activate an edition on a clone of its target and route only the selected users there (--cancel removes the clone)')
    .argument('<app>', 'application name')
    .argument('[edition]', 'edition to validate')
    .option('--target <group>', 'the group the edition is validated for (release create --from-validation rolls out to it)')
    .option('--group <name>', "the clone: the app's instances of this group (not the target)")
    .option('--on <instance...>', 'the clone: these instances (none of them in the target)')
    .option('--route <KIND:MATCH>', 'who reaches the clone: header:NAME=VALUE, cookie:NAME=VALUE, path-prefix:/P, source:CIDR or percent:N')
    .option('--env <K=V>', "environment override for the clone's instances (repeatable)", collect)
    .option('--cancel', 'remove the validation clone without a rollout (its rule removed, its app stopped)')
    .option('--comment <text>', 'why, for the history')
    .action(async (appName: string, editionName: string | undefined, flags: ValidateFlags & { cancel?: boolean }, cmd: Command) => {
      if (flags.cancel) {
        if (editionName !== undefined || flags.target || flags.group || flags.on || flags.route || flags.env) {
          throw new BadInputError('--cancel takes the app alone (and --comment)');
        }
        const v = await withClient(cmd, io, (client) => client.cancelValidation({ app: appName, comment: flags.comment ?? '' }));
        io.out(validationLine(v));
        return;
      }
      if (editionName === undefined) throw new BadInputError("missing required argument 'edition'");
      const request = buildValidateRequest(appName, editionName, flags);
      const v = await withClient(cmd, io, (client) => client.validateEdition(request));
      io.out(v.id);
      io.err(validationLine(v));
    });

  withListing(edition.command('show'))
    .description('an edition: its package, and which instances run it or keep it on disk')
    .argument('<app>', 'application name')
    .argument('<edition>', 'edition name')
    .action(async (appName: string, editionName: string, _flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { found, hosts, validation } = await withClient(cmd, io, async (client) => {
        const { editions, validation } = await client.listEditions(appName);
        const found = editions.find((e) => e.name === editionName);
        if (!found) throw new NotFoundError(`edition '${editionName}' of app '${appName}' does not exist`);
        const instances = await allInstances(client, appName);
        const hosts = instances.map((i) => ({
          instance: i.instance,
          group: i.group,
          active: i.edition === editionName,
          kept: i.keptEditions.includes(editionName),
        }));
        return { found, hosts, validation: validation?.edition === editionName ? validation : undefined };
      });
      if (output === 'json') io.out(toJson({ edition: found, instances: hosts, ...(validation ? { validation } : {}) }));
      else io.out(editionDetail(found, hosts) + (validation ? `\n\n${validationLine(validation)}` : ''));
    });
}

/** Creates the app, or updates it when it differs; the line says which of created, updated, unchanged. */
async function applyApp(client: AdminClient, spec: App): Promise<string> {
  const { apps } = await client.listApps();
  if (!apps.some((a) => a.name === spec.name)) {
    const created = await client.createApp(spec);
    return `app ${created.name} created: ${created.startCommand.join(' ')}`;
  }
  const { changed } = await client.updateApp(spec);
  return `app ${spec.name} ${changed ? 'updated (running instances take it at their next release)' : 'unchanged'}`;
}

function editionDetail(e: Edition, hosts: Array<{ instance: string; group: string; active: boolean; kept: boolean }>): string {
  const lines = [
    `Edition   ${e.app} ${e.name}`,
    `About     ${orDash(e.description)}`,
    `Package   ${e.format}${e.fileName ? ` (${e.fileName})` : ''}, ${formatBytes(e.size)}, sha256 ${e.sha256}`,
    `Source    ${e.url}`,
    `Installed ${formatDateTime(e.createdUnixMs)}`,
    `Groups    ${e.activeGroups.join(' ') || '-'}`,
    `Default   ${e.isDefault ? 'yes (requests no routing rule matches go to it)' : 'no'}`,
    `Active on ${hosts.filter((h) => h.active).map((h) => h.instance).join(' ') || '-'}`,
    '',
    table(['instance', 'group', 'active', 'on disk'], hosts.map((h) => [h.instance, h.group, h.active ? 'yes' : 'no', h.kept ? 'yes' : 'no'])),
  ];
  return lines.join('\n');
}

async function readPackage(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new BadInputError(`--file: cannot read '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

function appTable(apps: App[]): string {
  return table(
    ['name', 'start', 'port env', 'health', 'stop timeout', 'env', 'created'],
    apps.map((a) => [
      a.name,
      a.startCommand.join(' '),
      orDash(a.portEnv),
      orDash(a.healthPath),
      a.stopTimeoutMs ? formatDuration(a.stopTimeoutMs) : '-',
      Object.entries(a.env).map(([k, v]) => `${k}=${v}`).join(' ') || '-',
      formatDateTime(a.createdUnixMs),
    ]),
  );
}

function editionTable(editions: Edition[]): string {
  return table(
    ['edition', 'active on', 'default', 'on disk', 'description', 'format', 'size', 'sha256', 'created'],
    editions.map((e) => [
      e.name,
      e.activeGroups.join(' ') || '-',
      e.isDefault ? 'yes' : '-',
      e.keptInstances ? `${e.keptInstances} instance${e.keptInstances === 1 ? '' : 's'}` : '-',
      orDash(e.description),
      e.format,
      formatBytes(e.size),
      e.sha256.slice(0, 12),
      formatDateTime(e.createdUnixMs),
    ]),
  );
}

/** One line on a validation: what, where, who reaches it, where it is. */
export function validationLine(v: Validation): string {
  const clone = v.cloneGroup ? `group ${v.cloneGroup} (${v.cloneInstances.join(' ')})` : v.cloneInstances.join(' ');
  const match = v.route ? describeMatch({ ...v.route, kind: v.route.kind as RouteKind }) : '-';
  const rule = v.route?.id ? `rule ${v.route.id}: ${match}` : `rule ${match}`;
  const rollout = v.rolloutReleaseId ? `, rollout ${v.rolloutReleaseId}` : '';
  return `Validation ${v.id} of ${v.app} ${v.edition}: ${v.status}; clone of ${v.targetGroup} on ${clone}; ${rule}; release ${v.releaseId}${rollout}${v.message ? `; ${v.message}` : ''}`;
}
