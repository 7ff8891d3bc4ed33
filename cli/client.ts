// The admin gRPC client: promisified calls with deadlines, and gRPC status codes
// turned into fleetwave's error classes at this boundary (the CLI maps those to
// one line and an exit code).
import os from 'node:os';
import {
  credentials,
  connectivityState,
  Metadata,
  status as grpcStatus,
  type CallOptions,
  type ClientUnaryCall,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  AdminServiceClient,
  ListQuery,
  type App,
  type BackOutRequest,
  type Edition,
  type InstallEditionRequest,
  type ListAgentsResponse,
  type ListAppsResponse,
  type UpdateAppResponse,
  type ListEditionsResponse,
  type ListInstancesResponse,
  type ListReleasesResponse,
  type HistoryResponse,
  type ReleaseActionRequest,
  type ReleaseDetail,
  type ReleaseSpec,
  type AddRouteRequest,
  type ListRoutesResponse,
  type RemoveRouteRequest,
  type Route,
  type ValidateEditionRequest,
  type CancelValidationRequest,
  type Validation,
  type AgentUpgrade,
  type StartAgentUpgradeRequest,
  type CancelAgentUpgradeRequest,
  type AddNotifierRequest,
  type ListNotifiersResponse,
  type Notifier,
} from '../proto/gen/fleetwave/v1/admin.js';
import { BadInputError, ConflictError, FleetwaveError, NotFoundError, UnavailableError } from '../common/errors.js';
import { detectTlsMismatch, type TlsMismatch } from '../common/tls-mismatch.js';
import type { Connection } from './connection.js';

export const DEFAULT_CONTROLLER = '127.0.0.1:7400';
/** Deadline of a unary call. */
export const UNARY_TIMEOUT_MS = 10_000;
/** Installing an edition uploads the package, or has the controller fetch a --url package to check it (10 min at most there). */
export const UPLOAD_TIMEOUT_MS = 11 * 60_000;
/** Largest package the CLI sends in one message (the controller's limit must match). */
const MAX_MESSAGE_BYTES = 512 * 1024 * 1024;

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
type Invoke<Res> = (metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => ClientUnaryCall;

/** `$USER@hostname`, sent as `x-fleetwave-actor` so change records say who acted. */
export function actorName(env: NodeJS.ProcessEnv): string {
  let user = env.USER ?? env.LOGNAME;
  if (!user) {
    try {
      user = os.userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  return `${user}@${os.hostname()}`;
}

export class AdminClient {
  private readonly raw: AdminServiceClient;

  constructor(
    /** HOST:PORT of the controller's gRPC listener. */
    readonly address: string,
    /** Who is acting, for the controller's change records (a secure controller uses the token's name instead). */
    readonly actor: string,
    /** TLS and bearer token; plaintext without a token when absent. */
    readonly connection: Connection = { credentials: credentials.createInsecure(), token: '' },
  ) {
    this.raw = new AdminServiceClient(address, connection.credentials, {
      'grpc.max_send_message_length': MAX_MESSAGE_BYTES,
      'grpc.max_receive_message_length': MAX_MESSAGE_BYTES,
    });
  }

  createApp(app: App): Promise<App> {
    return this.unary('CreateApp', (md, o, cb) => this.raw.createApp({ app }, md, o, cb));
  }
  updateApp(app: App): Promise<UpdateAppResponse> {
    return this.unary('UpdateApp', (md, o, cb) => this.raw.updateApp({ app }, md, o, cb));
  }
  listApps(): Promise<ListAppsResponse> {
    return this.unary('ListApps', (md, o, cb) => this.raw.listApps({}, md, o, cb));
  }
  installEdition(request: InstallEditionRequest): Promise<Edition> {
    return this.unary('InstallEdition', (md, o, cb) => this.raw.installEdition(request, md, o, cb), UPLOAD_TIMEOUT_MS);
  }
  listEditions(app: string): Promise<ListEditionsResponse> {
    return this.unary('ListEditions', (md, o, cb) => this.raw.listEditions({ app }, md, o, cb));
  }
  /** dryRun: the release as it would be created, with an empty id; nothing is created. */
  createRelease(spec: ReleaseSpec, dryRun = false): Promise<ReleaseDetail> {
    return this.unary('CreateRelease', (md, o, cb) => this.raw.createRelease({ spec, dryRun }, md, o, cb));
  }
  /** The release and one page of its instances (the first, unless `query` says otherwise). */
  getRelease(id: string, query?: Partial<ListQuery>): Promise<ReleaseDetail> {
    return this.unary('GetRelease', (md, o, cb) => this.raw.getRelease({ id, query: queryOf(query) }, md, o, cb));
  }
  listReleases(app: string): Promise<ListReleasesResponse> {
    return this.unary('ListReleases', (md, o, cb) => this.raw.listReleases({ app }, md, o, cb));
  }
  releaseAction(request: ReleaseActionRequest): Promise<ReleaseDetail> {
    return this.unary('ReleaseAction', (md, o, cb) => this.raw.releaseAction(request, md, o, cb));
  }
  /** One page of agents (the first, unless `query` says otherwise). */
  listAgents(query?: Partial<ListQuery>): Promise<ListAgentsResponse> {
    return this.unary('ListAgents', (md, o, cb) => this.raw.listAgents({ query: queryOf(query) }, md, o, cb));
  }
  /** One page of an app's instances (all apps: ''). */
  listInstances(app: string, query?: Partial<ListQuery>): Promise<ListInstancesResponse> {
    return this.unary('ListInstances', (md, o, cb) => this.raw.listInstances({ app, query: queryOf(query) }, md, o, cb));
  }
  history(app: string): Promise<HistoryResponse> {
    return this.unary('History', (md, o, cb) => this.raw.history({ app }, md, o, cb));
  }
  backOut(request: BackOutRequest): Promise<ReleaseDetail> {
    return this.unary('BackOut', (md, o, cb) => this.raw.backOut(request, md, o, cb));
  }
  addRoute(request: AddRouteRequest): Promise<Route> {
    return this.unary('AddRoute', (md, o, cb) => this.raw.addRoute(request, md, o, cb));
  }
  listRoutes(app: string): Promise<ListRoutesResponse> {
    return this.unary('ListRoutes', (md, o, cb) => this.raw.listRoutes({ app }, md, o, cb));
  }
  removeRoute(request: RemoveRouteRequest): Promise<Route> {
    return this.unary('RemoveRoute', (md, o, cb) => this.raw.removeRoute(request, md, o, cb));
  }
  validateEdition(request: ValidateEditionRequest): Promise<Validation> {
    return this.unary('ValidateEdition', (md, o, cb) => this.raw.validateEdition(request, md, o, cb));
  }
  startAgentUpgrade(request: StartAgentUpgradeRequest): Promise<AgentUpgrade> {
    return this.unary('StartAgentUpgrade', (md, o, cb) => this.raw.startAgentUpgrade(request, md, o, cb));
  }
  /** An empty id: the newest upgrade. */
  getAgentUpgrade(id: string): Promise<AgentUpgrade> {
    return this.unary('GetAgentUpgrade', (md, o, cb) => this.raw.getAgentUpgrade({ id }, md, o, cb));
  }
  /** An empty id: the newest upgrade. */
  cancelAgentUpgrade(request: CancelAgentUpgradeRequest): Promise<AgentUpgrade> {
    return this.unary('CancelAgentUpgrade', (md, o, cb) => this.raw.cancelAgentUpgrade(request, md, o, cb));
  }
  addNotifier(request: AddNotifierRequest): Promise<Notifier> {
    return this.unary('AddNotifier', (md, o, cb) => this.raw.addNotifier(request, md, o, cb));
  }
  listNotifiers(): Promise<ListNotifiersResponse> {
    return this.unary('ListNotifiers', (md, o, cb) => this.raw.listNotifiers({}, md, o, cb));
  }
  removeNotifier(name: string): Promise<Notifier> {
    return this.unary('RemoveNotifier', (md, o, cb) => this.raw.removeNotifier({ name }, md, o, cb));
  }
  cancelValidation(request: CancelValidationRequest): Promise<Validation> {
    return this.unary('CancelValidation', (md, o, cb) => this.raw.cancelValidation(request, md, o, cb));
  }

  /**
   * Snapshots of a release, now and on every change, until it ends. No deadline:
   * a release may wait hours for an approval. Errors come out already mapped.
   */
  async *watchRelease(id: string): AsyncGenerator<ReleaseDetail> {
    const call = this.raw.watchRelease({ id, query: undefined }, this.metadata());
    try {
      for await (const detail of call as AsyncIterable<ReleaseDetail>) yield detail;
    } catch (err) {
      throw this.mapError('WatchRelease', err as ServiceError);
    } finally {
      // Cancelling ends the call with CANCELLED, which nobody needs to hear about.
      call.on('error', () => {});
      call.cancel();
    }
  }

  close(): void {
    this.raw.close();
  }

  private metadata(): Metadata {
    return callMetadata(this.actor, this.connection);
  }

  private unary<Res>(method: string, invoke: Invoke<Res>, timeoutMs = UNARY_TIMEOUT_MS): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      invoke(this.metadata(), { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) explainCallError(this.address, this.raw.getChannel(), method, error, this.connection.credentials._isSecure()).then(reject);
        else resolve(response);
      });
    });
  }

  mapError(method: string, error: ServiceError): Error {
    return mapCallError(this.address, this.raw.getChannel(), method, error);
  }
}

/** A listing's query with every field present; none at all when nothing is asked (everything, the default page). */
function queryOf(query: Partial<ListQuery> | undefined): ListQuery | undefined {
  return query ? ListQuery.fromPartial(query) : undefined;
}

/** The metadata every CLI call carries: who acts, and the bearer token when there is one. */
export function callMetadata(actor: string, connection: Connection): Metadata {
  const md = new Metadata();
  md.set('x-fleetwave-actor', actor);
  if (connection.token) md.set('authorization', `Bearer ${connection.token}`);
  return md;
}

/**
 * mapCallError, except that an UNAVAILABLE which is really a TLS mismatch (plaintext client at a TLS port, or the
 * reverse) says so in one line. Costs one TLS probe, and only when a plaintext call has already failed.
 */
export async function explainCallError(
  address: string,
  channel: { getConnectivityState(tryToConnect: boolean): connectivityState },
  method: string,
  error: ServiceError,
  secure: boolean,
): Promise<Error> {
  if (error.code === grpcStatus.UNAVAILABLE) {
    const mismatch = await detectTlsMismatch(address, secure, error.details ?? '');
    if (mismatch) return new UnavailableError(tlsMismatchMessage(address, mismatch), { cause: error });
  }
  return mapCallError(address, channel, method, error);
}

export function tlsMismatchMessage(address: string, mismatch: TlsMismatch): string {
  return mismatch === 'speaks-tls'
    ? `the controller at ${address} speaks TLS; pass --ca FILE (its CA certificate, env FLEETWAVE_CA) or --tls`
    : `the controller at ${address} does not speak TLS (it runs --insecure); drop --ca, --tls and FLEETWAVE_CA`;
}

function unreachable(address: string, cause: unknown): UnavailableError {
  return new UnavailableError(`cannot reach the controller at ${address} (is it running?)`, { cause });
}

/**
 * One place where gRPC status codes become fleetwave errors, with the original as cause; the error class
 * decides the exit code (cli/program.ts): NOT_FOUND, INVALID_ARGUMENT, OUT_OF_RANGE → 2;
 * FAILED_PRECONDITION, ALREADY_EXISTS, ABORTED → 1; UNAVAILABLE, DEADLINE_EXCEEDED → 3.
 */
export function mapCallError(
  address: string,
  channel: { getConnectivityState(tryToConnect: boolean): connectivityState },
  method: string,
  error: ServiceError,
): Error {
  const message = error.details || error.message;
  const cause = error;
  switch (error.code) {
    case grpcStatus.UNAVAILABLE:
      return unreachable(address, cause);
    case grpcStatus.DEADLINE_EXCEEDED:
      // Never connected: the controller is not there. Connected: it is too slow.
      if (channel.getConnectivityState(false) !== connectivityState.READY) return unreachable(address, cause);
      return new UnavailableError(`the controller at ${address} did not answer ${method} in time`, { cause });
    case grpcStatus.INVALID_ARGUMENT:
    case grpcStatus.OUT_OF_RANGE:
      return new BadInputError(message, { cause });
    case grpcStatus.NOT_FOUND:
      return new NotFoundError(message, { cause });
    case grpcStatus.ALREADY_EXISTS:
    case grpcStatus.FAILED_PRECONDITION:
    case grpcStatus.ABORTED:
      return new ConflictError(message, { cause });
    case grpcStatus.UNIMPLEMENTED:
      return new FleetwaveError(`the controller at ${address} does not implement ${method} (version mismatch?)`, { cause });
    case grpcStatus.PERMISSION_DENIED:
    case grpcStatus.UNAUTHENTICATED:
      return new FleetwaveError(`not allowed: ${message}`, { cause });
    default:
      return new FleetwaveError(`${method} failed (${grpcStatus[error.code] ?? error.code}): ${message}`, { cause });
  }
}

