// Who may call what: bearer tokens checked per RPC against a role table, wrapped around a service's handlers,
// and agent credentials checked when a Session stream opens.
import * as grpc from '@grpc/grpc-js';
import { FleetwaveError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import { bearerOf, roleAllows, type AgentIdentity, type Identity, type Role, type TokenStore } from './tokens.js';

/** No or an unknown, revoked or expired token: gRPC UNAUTHENTICATED. */
export class UnauthenticatedError extends FleetwaveError {}
/** A valid token whose role is too low for the call: gRPC PERMISSION_DENIED. */
export class PermissionDeniedError extends FleetwaveError {}

/** 'public' calls need no token (Enroll carries its own join token). */
export type Requirement = Role | 'public';

/** The role each RPC needs, by handler name (admin and security services). */
export const RPC_ROLES: Record<string, Requirement> = {
  listApps: 'viewer',
  listEditions: 'viewer',
  getRelease: 'viewer',
  listReleases: 'viewer',
  watchRelease: 'viewer',
  listAgents: 'viewer',
  listInstances: 'viewer',
  history: 'viewer',
  createApp: 'operator',
  updateApp: 'operator',
  installEdition: 'operator',
  createRelease: 'operator',
  releaseAction: 'operator',
  backOut: 'operator',
  listRoutes: 'viewer',
  addRoute: 'operator',
  removeRoute: 'operator',
  validateEdition: 'operator',
  cancelValidation: 'operator',
  // The new agent program runs as root on every host: an admin's call, like revoking an agent.
  startAgentUpgrade: 'admin',
  cancelAgentUpgrade: 'admin',
  getAgentUpgrade: 'viewer',
  // A viewer may not: an ack of a version the router never applied would let an atomic release switch too early.
  watchRouting: 'router',
  ackRouting: 'router',
  // A webhook receives every event it names (instance names, errors): who gets them is an admin's decision.
  addNotifier: 'admin',
  listNotifiers: 'admin',
  removeNotifier: 'admin',
  createToken: 'admin',
  listTokens: 'admin',
  revokeToken: 'admin',
  revokeAgent: 'admin',
  rekeyAgent: 'admin',
  enroll: 'public',
};

/** An RPC missing from the table: reads (list/get/watch) need viewer, anything else admin, so a new write is closed by default. */
export function requirementOf(method: string): Requirement {
  return RPC_ROLES[method] ?? (/^(list|get|watch)[A-Z]/.test(method) ? 'viewer' : 'admin');
}

/** The metadata key change records read the actor from; overwritten with the token's name once it is checked. */
export const ACTOR_KEY = 'x-fleetwave-actor';

export class Authenticator {
  constructor(
    private readonly tokens: TokenStore,
    private readonly log: Logger,
  ) {}

  /** The identity behind the call's bearer token, if its role allows `needed`; throws otherwise (and logs why). */
  check(metadata: grpc.Metadata, needed: Role, rpc: string, peer: string): Identity {
    return this.checkBearer(metadata.get('authorization')[0], needed, rpc, peer);
  }

  /** The same check on an `Authorization` header value. */
  checkBearer(header: unknown, needed: Role, rpc: string, peer: string): Identity {
    return this.checkToken(bearerOf(header), needed, rpc, peer);
  }

  /** The same check on the token itself (the HTTP endpoint takes it from the header or the session cookie). */
  checkToken(secret: string, needed: Role, rpc: string, peer: string): Identity {
    const token = this.tokens.verifyToken(secret);
    if (!token) {
      this.log.warn({ rpc, peer }, 'admin call refused: missing, unknown, revoked or expired token');
      throw new UnauthenticatedError('a valid bearer token is required (--token or FLEETWAVE_TOKEN)');
    }
    if (!roleAllows(token.role, needed)) {
      this.log.warn({ rpc, peer, token: token.name, role: token.role, needed }, 'admin call refused: role too low');
      // /metrics takes a metrics token or any reader's: name the reader's role too.
      const roles = needed === 'metrics' ? 'viewer or metrics' : needed;
      throw new PermissionDeniedError(`${rpc} needs the ${roles} role; token '${token.name}' is ${token.role}`);
    }
    return { name: token.name, role: token.role };
  }

  /** The agent id an agent's Session credential belongs to; throws (and logs) when it is missing or revoked. */
  agentOf(metadata: grpc.Metadata, peer: string): AgentIdentity {
    return this.agentOfBearer(metadata.get('authorization')[0], peer);
  }

  /** The same check on an `Authorization` header value (artifact downloads). */
  agentOfBearer(header: unknown, peer: string): AgentIdentity {
    const agentId = this.tokens.verifyAgentCredential(bearerOf(header));
    if (!agentId) {
      this.log.warn({ peer }, 'agent stream refused: missing, unknown or revoked agent credential');
      throw new UnauthenticatedError('agent credential missing, unknown or revoked (enrol with --join-token)');
    }
    return agentId;
  }
}

export function toAuthStatus(err: unknown): Partial<grpc.StatusObject> | null {
  if (err instanceof UnauthenticatedError) return { code: grpc.status.UNAUTHENTICATED, details: err.message };
  if (err instanceof PermissionDeniedError) return { code: grpc.status.PERMISSION_DENIED, details: err.message };
  return null;
}

type AnyHandler = (call: grpc.ServerUnaryCall<unknown, unknown> & grpc.ServerWritableStream<unknown, unknown>, callback?: grpc.sendUnaryData<unknown>) => void;

/**
 * Wraps every handler of a service so it first checks the caller's token against `requirementOf(name)`,
 * then replaces the actor metadata with the token's name, so change records carry the authenticated identity.
 */
export function guardService<S extends object>(service: S, auth: Authenticator): S {
  const guarded: Record<string, AnyHandler> = {};
  for (const [name, handler] of Object.entries(service as Record<string, AnyHandler>)) {
    const needed = requirementOf(name);
    if (needed === 'public') {
      guarded[name] = handler;
      continue;
    }
    guarded[name] = (call, callback) => {
      let identity: Identity;
      try {
        identity = auth.check(call.metadata, needed, name, call.getPeer());
      } catch (err) {
        const status = toAuthStatus(err) as grpc.ServiceError;
        if (callback) callback(status);
        else call.emit('error', status);
        return;
      }
      call.metadata.set(ACTOR_KEY, identity.name);
      handler(call, callback);
    };
  }
  return guarded as S;
}
