// The SecurityService: agent enrolment with a join token, token management and agent revocation (admin).
import * as grpc from '@grpc/grpc-js';
import { BadInputError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { SecurityServiceServer, TokenInfo } from '../proto/gen/fleetwave/v1/security.js';
import { toServiceError } from './admin-service.js';
import { ACTOR_KEY, toAuthStatus, UnauthenticatedError } from './auth.js';
import { JoinRefusedError } from './join-scopes.js';
import { newAgentNkey, type NatsUsersFile } from './nats-users.js';
import { AgentRevokedError, parseRole, REKEY_TTL_MS, type TokenRecord, type TokenStore } from './tokens.js';

export interface SecurityServiceOptions {
  tokens: TokenStore;
  logger: Logger;
  /** Closes the agent's open stream, if any; true when there was one. */
  disconnectAgent: (agentId: string, reason: string) => boolean;
  /** Writes a change record of an admin action on an agent (rekey, revoke). */
  recordChange?: (change: { actor: string; action: string; comment: string; result: string }) => void;
  /** --nats-agent-users: the users file, rewritten from the store after every enrolment, revoke and rekey. */
  natsUsers?: NatsUsersFile;
}

const JOIN_REFUSAL_CODES = { permission: grpc.status.PERMISSION_DENIED, exhausted: grpc.status.RESOURCE_EXHAUSTED, exists: grpc.status.ALREADY_EXISTS } as const;

function statusOf(err: unknown): Partial<grpc.StatusObject> {
  if (err instanceof AgentRevokedError) return { code: grpc.status.PERMISSION_DENIED, details: `${err.message}; an admin may re-key it with \`fleetwave agent rekey ${err.agentId}\`` };
  if (err instanceof JoinRefusedError) return { code: JOIN_REFUSAL_CODES[err.kind], details: err.message };
  return toAuthStatus(err) ?? toServiceError(err);
}

const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function tokenToProto(t: TokenRecord): TokenInfo {
  return {
    name: t.name, role: t.role, createdUnixMs: t.createdUnixMs, expiresUnixMs: t.expiresUnixMs, revokedUnixMs: t.revokedUnixMs, createdBy: t.createdBy,
    maxUses: t.maxUses, uses: t.uses, idPattern: t.idPattern, group: t.group,
  };
}

function unary<Req, Res>(log: Logger, name: string, fn: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    try {
      callback(null, fn(call.request, call));
    } catch (err) {
      const status = statusOf(err);
      if (status.code === grpc.status.INTERNAL) log.error({ err, rpc: name }, 'security call failed');
      callback(status as grpc.ServiceError);
    }
  };
}

function actor(call: grpc.ServerUnaryCall<unknown, unknown>): string {
  const value = call.metadata.get(ACTOR_KEY)[0];
  return typeof value === 'string' && value ? value : 'cli';
}

export function createSecurityService(o: SecurityServiceOptions): SecurityServiceServer {
  const { tokens, logger: log } = o;
  /** The database change stands even if the users file cannot be written; it is written again at the next change or start. */
  const syncNats = () => {
    try {
      o.natsUsers?.sync(tokens.natsAgentUsers());
    } catch (err) {
      log.error({ err: String(err) }, 'NATS agent users file not updated: NATS access of enrolled, revoked or re-keyed agents is stale until it is');
    }
  };
  return {
    enroll: unary(log, 'Enroll', (req, call) => {
      const peer = call.getPeer();
      const join = tokens.verifyToken(req.joinToken);
      if (!join || join.role !== 'agent') {
        log.warn({ agent: req.agentId, peer }, 'enrolment refused: wrong, revoked or expired join token');
        throw new UnauthenticatedError('join token is wrong, revoked or expired');
      }
      if (!AGENT_ID.test(req.agentId)) throw new BadInputError(`agent id '${req.agentId}' may hold only letters, digits, '.', '_' and '-'`);
      try {
        const nkey = o.natsUsers ? newAgentNkey() : undefined;
        const credential = tokens.enrollAgent(req.agentId, join, nkey?.publicKey);
        syncNats();
        log.info({ agent: req.agentId, joinToken: join.name, peer, natsNkey: nkey?.publicKey }, 'agent enrolled');
        return { credential, natsNkeySeed: nkey?.seed ?? '' };
      } catch (err) {
        if (err instanceof AgentRevokedError) log.warn({ agent: req.agentId, peer }, 'enrolment refused: agent is revoked');
        if (err instanceof JoinRefusedError) log.warn({ agent: req.agentId, joinToken: join.name, peer, reason: err.message }, `enrolment refused: ${err.kind}`);
        throw err;
      }
    }),
    createToken: unary(log, 'CreateToken', (req, call) => {
      const role = parseRole(req.role);
      const scopes = { maxUses: req.maxUses, idPattern: req.idPattern.trim(), group: req.group.trim() };
      const { secret, record } = tokens.createToken({ name: req.name.trim(), role, ttlMs: req.ttlMs, createdBy: actor(call), scopes });
      log.info({ token: record.name, role, by: record.createdBy }, 'token created');
      return { token: secret, info: tokenToProto(record) };
    }),
    listTokens: unary(log, 'ListTokens', () => ({ tokens: tokens.listTokens().map(tokenToProto) })),
    revokeToken: unary(log, 'RevokeToken', (req, call) => {
      const record = tokens.revokeToken(req.name.trim());
      log.warn({ token: record.name, by: actor(call) }, 'token revoked');
      return tokenToProto(record);
    }),
    revokeAgent: unary(log, 'RevokeAgent', (req, call) => {
      const agentId = req.agentId.trim();
      if (!AGENT_ID.test(agentId)) throw new BadInputError(`agent id '${agentId}' may hold only letters, digits, '.', '_' and '-'`);
      tokens.revokeAgent(agentId);
      syncNats();
      const disconnected = o.disconnectAgent(agentId, `revoked by ${actor(call)}`);
      log.warn({ agent: agentId, by: actor(call), disconnected }, 'agent revoked');
      o.recordChange?.({ actor: actor(call), action: 'agent revoke', comment: agentId, result: disconnected ? 'revoked and disconnected' : 'revoked' });
      return { agentId, disconnected };
    }),
    rekeyAgent: unary(log, 'RekeyAgent', (req, call) => {
      const agentId = req.agentId.trim();
      if (!AGENT_ID.test(agentId)) throw new BadInputError(`agent id '${agentId}' may hold only letters, digits, '.', '_' and '-'`);
      const { secret, record } = tokens.rekeyAgent(agentId, { ttlMs: req.ttlMs || REKEY_TTL_MS, createdBy: actor(call) });
      syncNats();
      const disconnected = o.disconnectAgent(agentId, `re-keyed by ${actor(call)}`);
      log.warn({ agent: agentId, by: actor(call), token: record.name, disconnected }, 'agent re-keyed: old credential void, single-use join token issued');
      o.recordChange?.({ actor: actor(call), action: 'agent rekey', comment: agentId, result: `credential voided; join token ${record.name} issued` });
      return { agentId, token: secret, info: tokenToProto(record), disconnected };
    }),
  };
}
