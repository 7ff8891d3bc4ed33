// The CLI's client of the SecurityService (tokens, agent revocation); errors mapped like the admin client's.
import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { SecurityServiceClient, type CreateTokenResponse, type ListTokensResponse, type RevokeAgentResponse, type TokenInfo } from '../proto/gen/fleetwave/v1/security.js';
import { AdminClient, UNARY_TIMEOUT_MS } from './client.js';
import type { Connection } from './connection.js';

export class SecurityClient {
  private readonly raw: SecurityServiceClient;
  /** Shares the admin client's error mapping (one place where gRPC codes become fleetwave errors). */
  private readonly errors: AdminClient;

  constructor(address: string, actor: string, private readonly connection: Connection) {
    this.raw = new SecurityServiceClient(address, connection.credentials);
    this.errors = new AdminClient(address, actor, connection);
  }

  createToken(name: string, role: string, ttlMs: number): Promise<CreateTokenResponse> {
    return this.unary('CreateToken', (md, d, cb) => this.raw.createToken({ name, role, ttlMs }, md, d, cb));
  }
  listTokens(): Promise<ListTokensResponse> {
    return this.unary('ListTokens', (md, d, cb) => this.raw.listTokens({}, md, d, cb));
  }
  revokeToken(name: string): Promise<TokenInfo> {
    return this.unary('RevokeToken', (md, d, cb) => this.raw.revokeToken({ name }, md, d, cb));
  }
  revokeAgent(agentId: string): Promise<RevokeAgentResponse> {
    return this.unary('RevokeAgent', (md, d, cb) => this.raw.revokeAgent({ agentId }, md, d, cb));
  }

  close(): void {
    this.raw.close();
    this.errors.close();
  }

  private unary<Res>(method: string, invoke: (md: Metadata, o: { deadline: number }, cb: (e: ServiceError | null, r: Res) => void) => unknown): Promise<Res> {
    const md = new Metadata();
    md.set('x-fleetwave-actor', this.errors.actor);
    if (this.connection.token) md.set('authorization', `Bearer ${this.connection.token}`);
    return new Promise<Res>((resolve, reject) => {
      invoke(md, { deadline: Date.now() + UNARY_TIMEOUT_MS }, (err, res) => (err ? reject(this.errors.mapError(method, err)) : resolve(res)));
    });
  }
}
