// The SecurityService: agent enrolment with a join token, token management and agent revocation (admin).
import * as grpc from '@grpc/grpc-js';
import { BadInputError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { SecurityServiceServer, TokenInfo } from '../proto/gen/fleetwave/v1/security.js';
import { toServiceError } from './admin-service.js';
import { ACTOR_KEY, toAuthStatus, UnauthenticatedError } from './auth.js';
import { AgentRevokedError, parseRole, type TokenRecord, type TokenStore } from './tokens.js';

export interface SecurityServiceOptions {
  tokens: TokenStore;
  logger: Logger;
  /** Closes the agent's open stream, if any; true when there was one. */
  disconnectAgent: (agentId: string, reason: string) => boolean;
}

const AGENT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function tokenToProto(t: TokenRecord): TokenInfo {
  return { name: t.name, role: t.role, createdUnixMs: t.createdUnixMs, expiresUnixMs: t.expiresUnixMs, revokedUnixMs: t.revokedUnixMs, createdBy: t.createdBy };
}

function unary<Req, Res>(log: Logger, name: string, fn: (request: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    try {
      callback(null, fn(call.request, call));
    } catch (err) {
      const status = toAuthStatus(err) ?? (err instanceof AgentRevokedError ? { code: grpc.status.PERMISSION_DENIED, details: err.message } : toServiceError(err));
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
        const credential = tokens.issueAgentCredential(req.agentId, join.name);
        log.info({ agent: req.agentId, joinToken: join.name, peer }, 'agent enrolled');
        return { credential };
      } catch (err) {
        if (err instanceof AgentRevokedError) log.warn({ agent: req.agentId, peer }, 'enrolment refused: agent is revoked');
        throw err;
      }
    }),
    createToken: unary(log, 'CreateToken', (req, call) => {
      const role = parseRole(req.role);
      const { secret, record } = tokens.createToken({ name: req.name.trim(), role, ttlMs: req.ttlMs, createdBy: actor(call) });
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
      const disconnected = o.disconnectAgent(agentId, `revoked by ${actor(call)}`);
      log.warn({ agent: agentId, by: actor(call), disconnected }, 'agent revoked');
      return { agentId, disconnected };
    }),
  };
}
