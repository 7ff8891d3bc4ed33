// `fleetwave token create|list|revoke` and `fleetwave agent revoke|rekey` (admin role).
import type { Command } from 'commander';
import { BadInputError } from '../../common/errors.js';
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
    .requiredOption('--role <role>', 'viewer (read), operator (create/start/pause/approve, routing rules), admin (tokens, agents, everything), agent (join token), router (fleetwave router: routing watch and acks only) or metrics (a Prometheus scraper: /metrics only)')
    .option('--ttl <duration>', 'expires after this long (default: never)')
    .option('--uses <n>', 'join tokens: how many agents may enrol with it (default: unlimited; 1: single use)')
    .option('--id-pattern <glob>', "join tokens: agent ids it may enrol, * and ? as wildcards (e.g. 'web-*')")
    .option('--group <name>', 'join tokens: the group its agents must declare (--group of fleetwave agent)')
    .action(async (name: string, flags: { role: string; ttl?: string; uses?: string; idPattern?: string; group?: string }, cmd: Command) => {
      const ttlMs = flags.ttl ? parseDuration(flags.ttl, '--ttl') : 0;
      const maxUses = flags.uses === undefined ? 0 : parseUses(flags.uses);
      const request = { name, role: flags.role, ttlMs, maxUses, idPattern: flags.idPattern ?? '', group: flags.group ?? '' };
      const created = await withSecurity(cmd, io, (c) => c.createToken(request));
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

  withController(agent.command('rekey'))
    .description("void an agent's credential (closing its stream) and print a single-use join token for that id only; the real host enrols again with it")
    .argument('<id>', 'agent id')
    .option('--ttl <duration>', 'the join token expires after this long', '24h')
    .action(async (id: string, flags: { ttl: string }, cmd: Command) => {
      const ttlMs = parseDuration(flags.ttl, '--ttl');
      const res = await withSecurity(cmd, io, (c) => c.rekeyAgent(id, ttlMs));
      // The token alone on stdout, as token create prints it.
      io.out(res.token);
      io.err(`agent ${res.agentId} re-keyed${res.disconnected ? ' and disconnected' : ''}: its old credential is void; enrol the host with this join token (single use, id ${res.agentId} only, shown only now)`);
    });
}

function parseUses(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 1_000_000) throw new BadInputError(`--uses: '${text}' is not a whole number from 1 to 1000000`);
  return Number(text);
}

function scopesOf(t: TokenInfo): string {
  if (t.role !== 'agent') return '-';
  const parts = [t.idPattern ? `ids ${t.idPattern}` : '', t.group ? `group ${t.group}` : ''].filter(Boolean);
  return parts.join(', ') || 'any agent';
}

function usesLeft(t: TokenInfo): string {
  if (t.role !== 'agent') return '-';
  return t.maxUses ? `${Math.max(0, t.maxUses - t.uses)} of ${t.maxUses}` : `unlimited (${t.uses} used)`;
}

function tokenTable(tokens: TokenInfo[]): string {
  return table(
    ['name', 'role', 'scopes', 'uses left', 'created', 'expires', 'revoked', 'created by'],
    tokens.map((t) => [
      t.name,
      t.role,
      scopesOf(t),
      usesLeft(t),
      formatDateTime(t.createdUnixMs),
      t.expiresUnixMs ? formatDateTime(t.expiresUnixMs) : 'never',
      t.revokedUnixMs ? formatDateTime(t.revokedUnixMs) : '-',
      t.createdBy || '-',
    ]),
  );
}
