// The admin gRPC calls the scale benchmark makes and times, each with its own deadline: a controller too busy to
// answer is a figure (null and the error), not a hung benchmark.
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { buildReleaseSpec, type ReleaseFlags } from '../../cli/options.js';
import { AdminServiceClient, type ListAgentsRequest, type ListAgentsResponse, type ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';

export interface Timed<T> {
  /** Wall time of the call, ms (also when it failed). */
  ms: number;
  value?: T;
  error?: string;
}

/**
 * `agent list --limit 100`: the paging field of issue 10, sent as `limit`. A controller (and generated code) without it
 * drops the unknown field and answers the whole list, which is what `agent list` costs there.
 */
const FIRST_PAGE = { limit: 100 } as unknown as ListAgentsRequest;

export class ScaleAdmin {
  private readonly client: AdminServiceClient;

  constructor(address: string) {
    this.client = new AdminServiceClient(address, credentials.createInsecure(), { 'grpc.max_receive_message_length': 512 * 1024 * 1024 });
  }

  /** The first page of `agent list` (see FIRST_PAGE). */
  listAgentsPage(timeoutMs = 30_000): Promise<Timed<ListAgentsResponse>> {
    return this.timed(timeoutMs, (md, o, cb) => this.client.listAgents(FIRST_PAGE, md, o, cb));
  }

  /** Every agent (how many are connected). */
  listAgents(timeoutMs = 30_000): Promise<Timed<ListAgentsResponse>> {
    return this.timed(timeoutMs, (md, o, cb) => this.client.listAgents({} as ListAgentsRequest, md, o, cb));
  }

  getRelease(id: string, timeoutMs = 60_000): Promise<Timed<ReleaseDetail>> {
    return this.timed(timeoutMs, (md, o, cb) => this.client.getRelease({ id }, md, o, cb));
  }

  /** `release create APP …` with the CLI's own flag compilation; resolves to the release id. */
  async createRelease(app: string, flags: ReleaseFlags, timeoutMs = 60_000): Promise<string> {
    const spec = buildReleaseSpec(app, flags);
    const created = await this.timed<ReleaseDetail>(timeoutMs, (md, o, cb) => this.client.createRelease({ spec }, md, o, cb));
    if (!created.value?.release) throw new Error(`release create failed: ${created.error ?? 'no release in the answer'}`);
    return created.value.release.id;
  }

  close(): void {
    this.client.close();
  }

  private timed<T>(timeoutMs: number, call: (md: Metadata, o: { deadline: number }, cb: (err: ServiceError | null, value?: T) => void) => unknown): Promise<Timed<T>> {
    const began = performance.now();
    return new Promise((resolve) => {
      call(new Metadata(), { deadline: Date.now() + timeoutMs }, (err, value) => {
        const ms = Math.round((performance.now() - began) * 10) / 10;
        resolve(err ? { ms, error: err.details || err.message } : { ms, value });
      });
    });
  }
}
