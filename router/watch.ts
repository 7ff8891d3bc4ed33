// The controller's routing watch: AdminService.WatchRouting streamed into the cache, AckRouting once a version is in
// haproxy. The stream is reopened with backoff when it breaks; meanwhile haproxy keeps what it has, and the full
// update that opens the next stream is diffed against haproxy itself.
//
//   connecting ──stream open──▶ watching ──error/end──▶ waiting (backoff) ──▶ connecting
//        └───────────── stop() from any state ──────────────▶ stopped
import { credentials, Metadata, status as grpcStatus, type ChannelCredentials, type ClientReadableStream, type ServiceError } from '@grpc/grpc-js';
import { backoffDelay } from '../common/backoff.js';
import type { Logger } from '../common/logger.js';
import { AdminServiceClient, type RoutingUpdate } from '../proto/gen/fleetwave/v1/admin.js';

/** Where the watch is. */
export type WatchState =
  /** Opening a stream. */
  | 'connecting'
  /** A stream is open and has delivered its full update. */
  | 'watching'
  /** The stream broke; the next try waits for its backoff. */
  | 'waiting'
  /** stop() was called. */
  | 'stopped';

export interface RoutingWatchOptions {
  /** HOST:PORT of the controller's gRPC listener. */
  controller: string;
  credentials?: ChannelCredentials;
  /** Bearer token (role router); '' for none (a controller running --insecure). */
  token: string;
  apps: readonly string[];
  routerId: string;
  logger: Logger;
  /** Takes an update into the cache and asks for a pass; the ack goes out through `ack()` once it is applied. */
  onUpdate: (update: RoutingUpdate) => void;
}

const CHANNEL_OPTIONS = {
  // A controller gone without a word (a dead host, a cut network) shows only as an unanswered ping.
  'grpc.keepalive_time_ms': 10_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 10_000,
  'grpc.max_receive_message_length': 64 * 1024 * 1024,
};
const ACK_TIMEOUT_MS = 5_000;

export class RoutingWatch {
  private readonly client: AdminServiceClient;
  private call: ClientReadableStream<RoutingUpdate> | undefined;
  private attempt = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private acking = false;
  private ackedVersion = 0;
  private wantAck = 0;
  private lastError = '';
  state: WatchState = 'connecting';

  constructor(private readonly o: RoutingWatchOptions) {
    this.client = new AdminServiceClient(o.controller, o.credentials ?? credentials.createInsecure(), CHANNEL_OPTIONS);
  }

  start(): void {
    this.open();
  }

  stop(): void {
    this.setState('stopped');
    clearTimeout(this.retryTimer);
    const call = this.call;
    this.call = undefined;
    if (call) {
      call.on('error', () => {});
      call.cancel();
    }
    this.client.close();
  }

  /** Tells the controller `version` is in haproxy (acks go out one at a time, the newest version wins). */
  ack(version: number): void {
    if (version <= this.ackedVersion) return;
    this.wantAck = Math.max(this.wantAck, version);
    if (this.acking || this.state === 'stopped') return;
    this.acking = true;
    const version0 = this.wantAck;
    this.client.ackRouting({ routerId: this.o.routerId, version: version0 }, this.metadata(), { deadline: Date.now() + ACK_TIMEOUT_MS }, (err) => {
      this.acking = false;
      if (err) {
        this.o.logger.warn({ version: version0, err: describe(err, this.o.controller) }, 'routing ack failed');
        return;
      }
      this.ackedVersion = Math.max(this.ackedVersion, version0);
      this.o.logger.debug({ version: version0 }, 'routing acked');
      if (this.wantAck > this.ackedVersion) this.ack(this.wantAck);
    });
  }

  private open(): void {
    if (this.state === 'stopped') return;
    this.setState('connecting');
    const call = this.client.watchRouting({ apps: [...this.o.apps], routerId: this.o.routerId }, this.metadata());
    this.call = call;
    call.on('data', (update: RoutingUpdate) => {
      if (this.state === 'stopped' || call !== this.call) return;
      if (update.full) {
        // Versions count per stream as far as the router knows (a restarted controller may count again from 1).
        this.ackedVersion = 0;
        this.wantAck = 0;
        this.attempt = 0;
        this.lastError = '';
        this.setState('watching');
      }
      this.o.onUpdate(update);
    });
    const broken = (why: string) => {
      if (call !== this.call || this.state === 'stopped') return;
      this.call = undefined;
      const delay = Math.max(200, backoffDelay(this.attempt++));
      // One line per distinct reason: a controller down for an hour does not fill the log.
      if (why !== this.lastError) this.o.logger.warn({ controller: this.o.controller, err: why, retryInMs: delay }, 'routing watch broken; haproxy keeps its state');
      this.lastError = why;
      this.setState('waiting');
      this.retryTimer = setTimeout(() => this.open(), delay);
    };
    call.on('error', (err: ServiceError) => broken(describe(err, this.o.controller)));
    call.on('end', () => broken('the controller ended the stream'));
  }

  private metadata(): Metadata {
    const md = new Metadata();
    md.set('x-fleetwave-actor', `router/${this.o.routerId}`);
    if (this.o.token) md.set('authorization', `Bearer ${this.o.token}`);
    return md;
  }

  private setState(to: WatchState): void {
    if (this.state === to) return;
    this.o.logger.debug({ from: this.state, to }, 'routing watch');
    this.state = to;
  }
}

/** A gRPC failure in one line (mapped here, at the boundary). */
export function describe(err: ServiceError, controller: string): string {
  const details = err.details || err.message;
  switch (err.code) {
    case grpcStatus.UNAVAILABLE:
      return `cannot reach the controller at ${controller} (${details})`;
    case grpcStatus.UNAUTHENTICATED:
    case grpcStatus.PERMISSION_DENIED:
      return `the controller refused the router's token: ${details}`;
    case grpcStatus.UNIMPLEMENTED:
      return `the controller at ${controller} does not implement the routing watch (version mismatch?): ${details}`;
    case grpcStatus.NOT_FOUND:
    case grpcStatus.INVALID_ARGUMENT:
      return `the controller refused the watch: ${details}`;
    default:
      return `${grpcStatus[err.code] ?? err.code}: ${details}`;
  }
}
