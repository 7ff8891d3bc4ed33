// A secured deployment as the docs describe it (a `fleetwave ca init` CA, a TLS controller with a bootstrap admin
// token, real nats-server), for the suites that attack it. Not a test file itself.
import { existsSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { channelCredentials, initCaDir } from '../../common/tls.js';
import { SecurityServiceClient } from '../../proto/gen/fleetwave/v1/security.js';
import { runCli, startAgent, startController, startNats, type AgentProc, type ControllerProc, type Nats } from '../harness/fleet.js';

export interface SecureFleet {
  dir: string;
  caFile: string;
  nats: Nats;
  controller: ControllerProc;
  /** The bootstrap admin token. */
  admin: string;
  agents: AgentProc[];
  /** The CLI over TLS with this token. */
  cli(token: string, args: string[]): ReturnType<typeof runCli>;
  /** `token create NAME --role ROLE ...extra`; the secret. */
  newToken(name: string, role: string, extra?: string[]): Promise<string>;
  /** A raw Enroll call, as an attacker with a join token would make it: the credential, or the gRPC error. */
  enroll(agentId: string, joinToken: string): Promise<{ credential?: string; error?: grpc.ServiceError }>;
  /** A secure agent (--ca) with its own data dir under `dir`. */
  launchAgent(id: string, o: { group?: string; instances?: Record<string, number>; args: string[] }): Promise<AgentProc>;
  controllerLog(): string;
  /** The credential agent `id` keeps in its data dir (from launchAgent). */
  credentialOf(id: string): string;
  stop(): Promise<void>;
}

export async function startSecureFleet(dir: string, controllerArgs: string[] = []): Promise<SecureFleet> {
  const caDir = join(dir, 'ca');
  const caFile = join(caDir, 'ca.crt');
  const logFile = join(dir, 'controller.log');
  initCaDir(caDir);
  const nats = await startNats(join(dir, 'nats'));
  const controller = await startController({
    dataDir: join(dir, 'controller'), natsUrl: nats.url, insecure: false, logFile,
    // These suites attack enrolment and the HTTP side; the NATS side has its own (forged-events), so an open NATS is allowed here.
    args: ['--tls-dir', caDir, '--bootstrap-token-file', join(dir, 'admin.token'), '--heartbeat-timeout', '5s', '--nats-insecure', ...controllerArgs],
  });
  const admin = readFileSync(join(dir, 'admin.token'), 'utf8').trim();
  const fleet: SecureFleet = {
    dir, caFile, nats, controller, admin, agents: [],
    cli: (token, args) => runCli(['--ca', caFile, '--token', token, ...args], controller.grpcAddress),
    async newToken(name, role, extra = []) {
      const res = await fleet.cli(admin, ['token', 'create', name, '--role', role, ...extra]);
      if (res.code !== 0) throw new Error(`token create ${name}: ${res.stderr}`);
      return res.stdout.trim();
    },
    enroll(agentId, joinToken) {
      const client = new SecurityServiceClient(controller.grpcAddress, channelCredentials(caFile));
      return new Promise((resolve) =>
        client.enroll({ joinToken, agentId }, (error, res) => {
          client.close();
          resolve(error ? { error } : { credential: res.credential });
        }),
      );
    },
    async launchAgent(id, o) {
      const agent = await startAgent({
        id, group: o.group ?? 'blue', controller: controller.grpcAddress, natsUrl: nats.url, dataDir: join(dir, 'agents', id),
        instances: o.instances ?? {}, insecure: false, args: ['--ca', caFile, ...o.args], logFile: join(dir, `agent-${id}.log`),
      });
      fleet.agents.push(agent);
      return agent;
    },
    controllerLog: () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : ''),
    credentialOf: (id) => JSON.parse(readFileSync(join(dir, 'agents', id, 'credential.json'), 'utf8')).credential as string,
    async stop() {
      await Promise.all(fleet.agents.map((a) => a.stop()));
      await controller.stop();
      await nats.stop();
    },
  };
  return fleet;
}

/** One HTTPS GET trusting `ca`; for an event stream, the body read until `until` matches (then the stream is closed). */
export function httpsGet(url: string, o: { ca: Buffer; token?: string; until?: RegExp }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca: o.ca, headers: o.token ? { authorization: `Bearer ${o.token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (chunk) => {
        body += chunk;
        if (o.until?.test(body)) {
          resolve({ status: res.statusCode ?? 0, body });
          req.destroy();
        }
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}
