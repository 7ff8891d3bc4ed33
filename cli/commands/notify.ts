// `fleetwave notify add|list|remove`: webhook notifiers (admin role), docs/notifications.md.
import type { Command } from 'commander';
import { BadInputError } from '../../common/errors.js';
import { readFlagFile } from '../../common/flag-file.js';
import { NOTIFY_KINDS, parseKinds } from '../../common/notify-kinds.js';
import type { Notifier } from '../../proto/gen/fleetwave/v1/admin.js';
import { formatDateTime, orDash, table, toJson } from '../format.js';
import type { Io } from '../io.js';
import { outputOf, withClient, withController, withListing } from './shared.js';

export function registerNotifyCommands(program: Command, io: Io): void {
  const notify = program.command('notify').description('webhook notifications: POST the CloudEvents of chosen kinds to a URL (admin role)');

  withController(notify.command('add'))
    .description('add a notifier: every event of the kinds it names is POSTed to the URL, retried until a 2xx')
    .argument('<name>', 'notifier name (letters, digits, . _ -)')
    .requiredOption('--on <kinds>', `comma-separated event kinds, e.g. release.failed,checkpoint.waiting (known: ${NOTIFY_KINDS.join(', ')})`)
    .requiredOption('--webhook <url>', 'http:// or https:// URL the events are POSTed to (application/cloudevents+json)')
    .option('--secret-file <file>', 'sign each delivery with HMAC-SHA256 under the secret in this file (header fleetwave-signature-256)')
    .action(async (name: string, flags: { on: string; webhook: string; secretFile?: string }, cmd: Command) => {
      // Checked here too, so a typo fails at once with the list, even without a controller.
      const kinds = parseKinds([flags.on]);
      const secret = flags.secretFile ? readSecret(flags.secretFile) : '';
      const added = await withClient(cmd, io, (client) => client.addNotifier({ name, kinds, url: flags.webhook, secret }));
      io.out(`notifier ${added.name} added: ${added.kinds.join(',')} → ${added.url}${added.signed ? ' (signed)' : ''}`);
    });

  withListing(notify.command('list'))
    .description('list notifiers with their deliveries: pending, delivered, dead')
    .action(async (_flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { notifiers } = await withClient(cmd, io, (client) => client.listNotifiers());
      io.out(output === 'json' ? toJson(notifiers) : notifierTable(notifiers));
    });

  withController(notify.command('remove'))
    .description('remove a notifier and its deliveries (pending ones are not sent)')
    .argument('<name>', 'notifier name')
    .action(async (name: string, _flags: unknown, cmd: Command) => {
      const removed = await withClient(cmd, io, (client) => client.removeNotifier(name));
      io.out(`notifier ${removed.name} removed`);
    });
}

function readSecret(file: string): string {
  // A trailing newline from `echo` or an editor is not part of the secret.
  const secret = readFlagFile(file, '--secret-file').toString('utf8').trim();
  if (!secret) throw new BadInputError(`--secret-file: '${file}' is empty`);
  return secret;
}

function notifierTable(notifiers: Notifier[]): string {
  return table(
    ['name', 'on', 'webhook', 'signed', 'pending', 'delivered', 'dead', 'last error', 'created', 'by'],
    notifiers.map((n) => [n.name, n.kinds.join(','), n.url, n.signed ? 'yes' : 'no', n.pending, n.delivered, n.dead, orDash(n.lastError), formatDateTime(n.createdUnixMs), orDash(n.createdBy)]),
  );
}
