// The CLI's client of the SecurityService (tokens, agent revocation); errors mapped like the admin client's.
import type { Metadata, ServiceError } from '@grpc/grpc-js';
import {
  SecurityServiceClient,
  type CreateTokenRequest,
  type CreateTokenResponse,
  type ListTokensResponse,
  type RekeyAgentResponse,
  type RevokeAgentResponse,
  type TokenInfo,
} from '../proto/gen/fleetwave/v1/security.js';
import { callMetadata, explainCallError, UNARY_TIMEOUT_MS } from './client.js';
import type { Connection } from './connection.js';

export class SecurityClient {
  private readonly raw: SecurityServiceClient;

  constructor(
    private readonly address: string,
    private readonly actor: string,
    private readonly connection: Connection,
  ) {
    this.raw = new SecurityServiceClient(address, connection.credentials);
  }

  createToken(request: CreateTokenRequest): Promise<CreateTokenResponse> {
    return this.unary('CreateToken', (md, d, cb) => this.raw.createToken(request, md, d, cb));
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
  rekeyAgent(agentId: string, ttlMs: number): Promise<RekeyAgentResponse> {
    return this.unary('RekeyAgent', (md, d, cb) => this.raw.rekeyAgent({ agentId, ttlMs }, md, d, cb));
  }

  close(): void {
    this.raw.close();
  }

  private unary<Res>(method: string, invoke: (md: Metadata, o: { deadline: number }, cb: (e: ServiceError | null, r: Res) => void) => unknown): Promise<Res> {
    const md = callMetadata(this.actor, this.connection);
    return new Promise<Res>((resolve, reject) => {
      invoke(md, { deadline: Date.now() + UNARY_TIMEOUT_MS }, (err, res) =>
        err ? explainCallError(this.address, this.raw.getChannel(), method, err, this.connection.credentials._isSecure()).then(reject) : resolve(res),
      );
    });
  }
}
