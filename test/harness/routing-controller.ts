// A stand-in for the controller's routing side: an AdminService gRPC server implementing only WatchRouting and
// AckRouting (every other call answers UNIMPLEMENTED), so router suites need no controller. Updates the test pushes
// go to every open watch; the acks and the watch requests are kept for assertions.
import * as grpc from '@grpc/grpc-js';
import { AdminServiceService, type AckRoutingRequest, type RoutingUpdate, type WatchRoutingRequest } from '../../proto/gen/fleetwave/v1/admin.js';

export class RoutingController {
  readonly acks: AckRoutingRequest[] = [];
  readonly watches: WatchRoutingRequest[] = [];
  /** The authorization header of each watch, as it came. */
  readonly tokens: string[] = [];
  private readonly streams = new Set<grpc.ServerWritableStream<WatchRoutingRequest, RoutingUpdate>>();
  private server: grpc.Server | undefined;
  private version = 0;
  port = 0;

  constructor(
    /** What a new watch gets first (its version is set on sending). */
    private full: Omit<RoutingUpdate, 'version' | 'full'>,
    /** A watch without `Bearer <token>` is refused UNAUTHENTICATED ('' accepts any). */
    private readonly token = '',
  ) {}

  async start(port = 0): Promise<number> {
    const server = new grpc.Server();
    const implementation = {
      watchRouting: (call: grpc.ServerWritableStream<WatchRoutingRequest, RoutingUpdate>) => {
        const auth = String(call.metadata.get('authorization')[0] ?? '');
        this.tokens.push(auth);
        if (this.token && auth !== `Bearer ${this.token}`) {
          call.destroy(Object.assign(new Error('bad token'), { code: grpc.status.UNAUTHENTICATED, details: 'bad token' }));
          return;
        }
        this.watches.push(call.request);
        this.streams.add(call);
        call.on('cancelled', () => this.streams.delete(call));
        call.on('close', () => this.streams.delete(call));
        call.write({ ...this.full, version: ++this.version, full: true });
      },
      ackRouting: (call: grpc.ServerUnaryCall<AckRoutingRequest, object>, callback: grpc.sendUnaryData<object>) => {
        this.acks.push(call.request);
        callback(null, {});
      },
    };
    server.addService(AdminServiceService, implementation as unknown as grpc.UntypedServiceImplementation);
    this.port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );
    this.server = server;
    return this.port;
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Sends a delta to every open watch (and makes `full` what later watches get first); resolves to its version. */
  push(update: Omit<RoutingUpdate, 'version' | 'full'>, nextFull?: Omit<RoutingUpdate, 'version' | 'full'>): number {
    if (nextFull) this.full = nextFull;
    const version = ++this.version;
    for (const stream of this.streams) stream.write({ ...update, version, full: false });
    return version;
  }

  /** Whether `routerId` acked `version` or later. */
  acked(routerId: string, version: number): boolean {
    return this.acks.some((a) => a.routerId === routerId && a.version >= version);
  }

  get openWatches(): number {
    return this.streams.size;
  }

  /** Gone at once, streams cut: a controller that died. */
  kill(): void {
    this.server?.forceShutdown();
    this.streams.clear();
    this.server = undefined;
  }
}
