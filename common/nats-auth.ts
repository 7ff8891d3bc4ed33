// NATS credentials for the controller and agents: user/password, token, a .creds file (JWT + nkey) or an nkey seed file.
import { Option, type Command } from 'commander';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from 'nats';
import { BadInputError } from './errors.js';
import { readFlagFile } from './flag-file.js';

/** The flags, as given; passwords and tokens may come from the environment instead of the command line. */
export interface RawNatsAuth {
  natsUser?: string;
  natsPass?: string;
  natsToken?: string;
  natsCreds?: string;
  natsNkey?: string;
}

/** What `nats.connect` gets on top of the server URL. */
export type NatsAuth = Pick<ConnectionOptions, 'user' | 'pass' | 'token' | 'authenticator'>;

/** Env fallbacks, so secrets need not show in `ps`. */
export const NATS_ENV = { pass: 'FLEETWAVE_NATS_PASS', token: 'FLEETWAVE_NATS_TOKEN' } as const;

/** Validates the NATS credential flags (at most one kind) and reads any file they name; {} when none. */
export function compileNatsAuth(raw: RawNatsAuth, env: NodeJS.ProcessEnv = process.env): NatsAuth {
  const pass = raw.natsPass ?? env[NATS_ENV.pass];
  const token = raw.natsToken ?? env[NATS_ENV.token];
  const kinds = [raw.natsUser !== undefined && 'user', token !== undefined && 'token', raw.natsCreds && 'creds', raw.natsNkey && 'nkey'].filter(Boolean);
  if (kinds.length > 1) throw new BadInputError(`NATS credentials: give only one of --nats-user, --nats-token, --nats-creds, --nats-nkey (got ${kinds.join(', ')})`);
  if (raw.natsPass !== undefined && raw.natsUser === undefined) throw new BadInputError('--nats-pass needs --nats-user');
  if (raw.natsUser !== undefined) {
    if (!raw.natsUser) throw new BadInputError('--nats-user must not be empty');
    return { user: raw.natsUser, pass: pass ?? '' };
  }
  if (token !== undefined) {
    if (!token) throw new BadInputError('--nats-token must not be empty');
    return { token };
  }
  if (raw.natsCreds) return { authenticator: credsAuthenticator(readFlagFile(raw.natsCreds, '--nats-creds')) };
  if (raw.natsNkey) return { authenticator: nkeyAuthenticator(new TextEncoder().encode(readFlagFile(raw.natsNkey, '--nats-nkey').toString().trim())) };
  return {};
}

/** Registers the NATS credential flags on a daemon command; commander reads the secrets' env fallbacks (help shows them). */
export function natsAuthFlags(cmd: Command): Command {
  return cmd
    .option('--nats-user <user>', `NATS user (password from --nats-pass or env ${NATS_ENV.pass})`)
    .addOption(new Option('--nats-pass <password>', 'NATS password (prefer the environment: a flag shows in ps)').env(NATS_ENV.pass))
    .addOption(new Option('--nats-token <token>', 'NATS token').env(NATS_ENV.token))
    .option('--nats-creds <file>', 'NATS .creds file (JWT and nkey seed)')
    .option('--nats-nkey <file>', 'file holding a NATS nkey seed');
}
