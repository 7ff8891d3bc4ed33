// How the agent proves itself to the controller: TLS trusting the fleetwave CA, and a per-agent credential that it
// gets once by enrolling with a join token and keeps in its data directory (credential.json, mode 0600).
//
//   no credential.json ──Enroll(join token, agent id)──▶ credential.json ──▶ every Session: authorization: Bearer <credential>
//        ▲                                                                        │ UNAUTHENTICATED (revoked, controller lost it)
//        └────────────────────── enrol again, if a join token was given ◀─────────┘
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { nkeyAuthenticator } from 'nats';
import { credentials as grpcCredentials, Metadata, status, type ChannelCredentials, type ServiceError } from '@grpc/grpc-js';
import { FleetwaveError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { channelCredentials } from '../common/tls.js';
import { mismatchFromDetails } from '../common/tls-mismatch.js';
import { SecurityServiceClient, type EnrollResponse } from '../proto/gen/fleetwave/v1/security.js';
import type { NatsAuth } from '../common/nats-auth.js';
import { writeAtomically } from './json-file.js';
import type { DownloadAccess } from './package/fetch.js';

export const CREDENTIAL_FILE = 'credential.json';
/** The NATS user nkey seed the controller issued at enrolment (--nats-agent-users), mode 0600. */
export const NATS_SEED_FILE = 'nats.seed';
const ENROLL_TIMEOUT_MS = 10_000;
/** Enrolment answers that only an admin can change (new token, `agent rekey`), unlike an unreachable controller. */
const REFUSALS: number[] = [status.UNAUTHENTICATED, status.PERMISSION_DENIED, status.ALREADY_EXISTS, status.RESOURCE_EXHAUSTED];

/** The controller refused the join token or this agent id; retrying the same way will not help until an admin acts. */
export class EnrolmentRefusedError extends FleetwaveError {}

export interface LinkOptions {
  controller: string;
  id: string;
  dataDir: string;
  insecure: boolean;
  /** PEM file of the CA that signed the controller's certificate; null: the system's roots. */
  caFile: string | null;
  /** '' when none was given. */
  joinToken: string;
}

/** What the session needs to dial: channel credentials, and call metadata built fresh for every stream. */
export interface ControllerLink {
  credentials: ChannelCredentials;
  /** The Session metadata; enrols first when there is no (usable) credential. Throws when enrolment is refused. */
  metadata(): Promise<Metadata>;
  /** The controller answered UNAUTHENTICATED: the credential is no good any more. */
  refused(details: string): void;
  /** The credential in use; '' before enrolment or without TLS. */
  bearer(): string;
}

/** Whether the agent can authenticate at all: it has a stored credential or a join token. */
export function canAuthenticate(o: LinkOptions): boolean {
  return o.insecure || o.joinToken !== '' || existsSync(join(o.dataDir, CREDENTIAL_FILE));
}

export function controllerLink(o: LinkOptions, log: Logger): ControllerLink {
  if (o.insecure) return { credentials: grpcCredentials.createInsecure(), metadata: async () => new Metadata(), refused: () => {}, bearer: () => '' };
  const credentials = channelCredentials(o.caFile, '--ca');
  const file = join(o.dataDir, CREDENTIAL_FILE);
  let credential: string | undefined;
  let stale = false;
  return {
    credentials,
    async metadata() {
      if (credential === undefined && !stale) credential = await readCredential(file);
      if (credential === undefined || (stale && o.joinToken)) {
        if (!o.joinToken) throw new EnrolmentRefusedError(`no credential in ${file} and no join token to enrol with (--join-token-file or FLEETWAVE_JOIN_TOKEN)`);
        const enrolled = await enroll(o, credentials);
        credential = enrolled.credential;
        // The seed first: once credential.json exists a restarted agent would not enrol again to get it.
        if (enrolled.natsNkeySeed) await writeAtomically(join(o.dataDir, NATS_SEED_FILE), enrolled.natsNkeySeed + '\n');
        await saveCredential(file, { agentId: o.id, credential });
        stale = false;
        log.info({ controller: o.controller }, 'enrolled with the join token; credential stored');
      }
      const md = new Metadata();
      md.set('authorization', `Bearer ${credential}`);
      return md;
    },
    refused(details) {
      log.warn({ controller: o.controller, details }, 'controller refused this agent (revoked, re-keyed, or it no longer knows the credential)');
      stale = true;
    },
    bearer: () => credential ?? '',
  };
}

/**
 * What artifact downloads carry: URLs under the controller's artifact base (sent in Welcome) get the credential and
 * are checked against --ca; any other package host gets neither, so the credential never leaves for a third party.
 */
export function artifactAccess(o: LinkOptions, link: ControllerLink, artifactBase: () => string): DownloadAccess {
  const ca = !o.insecure && o.caFile ? readFileSync(o.caFile) : null;
  return (url) => {
    const base = artifactBase();
    if (o.insecure || !base || !isUnder(url, base)) return { authorization: '', ca: null };
    const credential = link.bearer();
    return { authorization: credential ? `Bearer ${credential}` : '', ca };
  };
}

function isUnder(url: string, base: string): boolean {
  try {
    const u = new URL(url);
    const b = new URL(base);
    return u.origin === b.origin && u.pathname.startsWith(b.pathname.replace(/\/*$/, '/'));
  } catch {
    return false;
  }
}

async function readCredential(file: string): Promise<string | undefined> {
  try {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as { credential?: unknown };
    return typeof parsed.credential === 'string' && parsed.credential ? parsed.credential : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new FleetwaveError(`${file} is unreadable: ${(err as Error).message}`, { cause: err });
  }
}

async function saveCredential(file: string, content: { agentId: string; credential: string }): Promise<void> {
  await writeAtomically(file, JSON.stringify(content) + '\n');
}

/**
 * NATS auth with the seed the controller issued, read at every (re)connect so a re-enrolment's new seed is used;
 * null when there is none (a controller without --nats-agent-users).
 */
export function issuedNatsAuth(dataDir: string): NatsAuth | null {
  const file = join(dataDir, NATS_SEED_FILE);
  if (!existsSync(file)) return null;
  let seed = readFileSync(file, 'utf8').trim();
  return {
    authenticator: nkeyAuthenticator(() => {
      if (existsSync(file)) seed = readFileSync(file, 'utf8').trim();
      return new TextEncoder().encode(seed);
    }),
  };
}

function enroll(o: LinkOptions, credentials: ChannelCredentials): Promise<EnrollResponse> {
  const client = new SecurityServiceClient(o.controller, credentials);
  return new Promise<EnrollResponse>((resolve, reject) => {
    client.enroll({ joinToken: o.joinToken, agentId: o.id }, new Metadata(), { deadline: Date.now() + ENROLL_TIMEOUT_MS }, (err: ServiceError | null, res) => {
      client.close();
      if (!err) return resolve(res);
      const refused = REFUSALS.includes(err.code);
      const plaintext = mismatchFromDetails(true, err.details ?? '') === 'speaks-plaintext';
      const why = plaintext ? 'the controller does not speak TLS (it runs --insecure); start the agent with --insecure, or give the controller TLS' : err.details || err.message;
      const message = `enrolment at ${o.controller} failed: ${why}`;
      reject(refused ? new EnrolmentRefusedError(message, { cause: err }) : new FleetwaveError(message, { cause: err, recoverable: true }));
    });
  });
}
