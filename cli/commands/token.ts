// `fleetwave token create|list|revoke` and `fleetwave agent revoke` (admin role).
import type { Command } from 'commander';
import { parseDuration } from '../../common/durations.js';
import type { TokenInfo } from '../../proto/gen/fleetwave/v1/security.js';
import { actorName, DEFAULT_CONTROLLER } from '../client.js';
import { formatDateTime, table, toJson } from '../format.js';
import type { Io } from '../io.js';
import { resolveController } from '../options.js';
import { SecurityClient } from '../security-client.js';
import { connectionOf, outputOf, withController, withListing } from './shared.js';

async function withSecurity<T>(cmd: Command, io: Io, body: (client: SecurityClient) => Promise<T>): Promise<T> {
  let root = cmd;
  while (root.parent) root = root.parent;
  const flag = (cmd.opts().controller ?? root.opts().controller) as string | undefined;
  const client = new SecurityClient(resolveController(flag, io.env, DEFAULT_CONTROLLER), actorName(io.env), connectionOf(cmd, io));
  try {
    return await body(client);
  } finally {
    client.close();
  }
}

export function registerTokenCommands(program: Command, io: Io): void {
  const token = program.command('token').description('bearer tokens for the admin API and join tokens for agents (admin role)');

  withController(token.command('create'))
    .description('create a token and print it once (the controller keeps only its hash)')
    .argument('<name>', 'token name; change records show it as the actor')
    .requiredOption('--role <role>', 'viewer (read), operator (create/start/pause/approve), admin (tokens, agents) or agent (join token)')
    .option('--ttl <duration>', 'expires after this long (default: never)')
    .action(async (name: string, flags: { role: string; ttl?: string }, cmd: Command) => {
      const ttlMs = flags.ttl ? parseDuration(flags.ttl, '--ttl') : 0;
      const created = await withSecurity(cmd, io, (c) => c.createToken(name, flags.role, ttlMs));
      // The secret alone on stdout, so `T=$(fleetwave token create ...)` works; the note goes to stderr.
      io.out(created.token);
      io.err(`token ${created.info?.name} (${created.info?.role}) created; it is shown only now`);
    });

  withListing(token.command('list'))
    .description('list tokens (names and roles, never the secrets)')
    .action(async (_flags: unknown, cmd: Command) => {
      const output = outputOf(cmd);
      const { tokens } = await withSecurity(cmd, io, (c) => c.listTokens());
      io.out(output === 'json' ? toJson(tokens) : tokenTable(tokens));
    });

  withController(token.command('revoke'))
    .description('revoke a token at once (join tokens: agents already enrolled keep their credentials)')
    .argument('<name>', 'token name')
    .action(async (name: string, _flags: unknown, cmd: Command) => {
      const info = await withSecurity(cmd, io, (c) => c.revokeToken(name));
      io.out(`token ${info.name} revoked`);
    });

  const agent = program.commands.find((c) => c.name() === 'agent') ?? program.command('agent').description('agents');
  withController(agent.command('revoke'))
    .description("revoke an agent's credential and close its stream; that agent id cannot enrol again")
    .argument('<id>', 'agent id')
    .action(async (id: string, _flags: unknown, cmd: Command) => {
      const res = await withSecurity(cmd, io, (c) => c.revokeAgent(id));
      io.out(`agent ${res.agentId} revoked${res.disconnected ? ' and disconnected' : ''}`);
    });
}

function tokenTable(tokens: TokenInfo[]): string {
  return table(
    ['name', 'role', 'created', 'expires', 'revoked', 'created by'],
    tokens.map((t) => [
      t.name,
      t.role,
      formatDateTime(t.createdUnixMs),
      t.expiresUnixMs ? formatDateTime(t.expiresUnixMs) : 'never',
      t.revokedUnixMs ? formatDateTime(t.revokedUnixMs) : '-',
      t.createdBy || '-',
    ]),
  );
}
