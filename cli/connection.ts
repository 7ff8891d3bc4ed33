// How the CLI reaches the controller securely: TLS trusting --ca (or the system's roots with --tls), and the bearer token.
import { credentials, type ChannelCredentials } from '@grpc/grpc-js';
import { BadInputError } from '../common/errors.js';
import { channelCredentials } from '../common/tls.js';

export interface Connection {
  credentials: ChannelCredentials;
  /** '' when none: the controller then answers UNAUTHENTICATED unless it runs --insecure. */
  token: string;
}

export interface ConnectionFlags {
  ca?: string;
  tls?: boolean;
  token?: string;
}

/** Flags win over FLEETWAVE_CA / FLEETWAVE_TOKEN; without a CA or --tls the connection is plaintext (an --insecure controller). */
export function resolveConnection(flags: ConnectionFlags, env: NodeJS.ProcessEnv): Connection {
  const ca = flags.ca ?? env.FLEETWAVE_CA ?? '';
  const token = (flags.token ?? env.FLEETWAVE_TOKEN ?? '').trim();
  if (token && /\s/.test(token)) throw new BadInputError('--token: a token has no spaces');
  const tls = Boolean(ca) || flags.tls === true || env.FLEETWAVE_TLS === '1';
  return { credentials: tls ? channelCredentials(ca || null, '--ca') : credentials.createInsecure(), token };
}

/** Adds the connection flags to a verb (the program has them too, before the verb). */
export function withConnectionFlags<C extends { option(flags: string, description: string): C }>(cmd: C): C {
  return cmd
    .option('--ca <file>', 'CA certificate (PEM) of the controller (env FLEETWAVE_CA); turns TLS on')
    .option('--tls', 'TLS with the system roots (env FLEETWAVE_TLS=1)')
    .option('--token <token>', 'bearer token (env FLEETWAVE_TOKEN)');
}
