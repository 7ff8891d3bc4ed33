// The admin gRPC calls the scale benchmark makes and times, each with its own deadline: a controller too busy to
// answer is a figure (null and the error), not a hung benchmark.
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { buildReleaseSpec, type ReleaseFlags } from '../../cli/options.js';
import { AdminServiceClient, ListQuery, type ListAgentsResponse, type ReleaseDetail } from '../../proto/gen/fleetwave/v1/admin.js';

export interface Timed<T> {
  /** Wall time of the call, ms (also when it failed). */
  ms: number;
  value?: T;
  error?: string;
}

/** `agent list --limit 100` and `release show --limit 100`: the first page the server cuts. */
const FIRST_PAGE = ListQuery.fromPartial({ limit: 100 });
/** The server's largest page, for reads that need every row. */
const WHOLE_PAGE = 1000;

export class ScaleAdmin {
  private readonly client: AdminServiceClient;

  constructor(address: string) {
    this.client = new AdminServiceClient(address, credentials.createInsecure(), { 'grpc.max_receive_message_length': 512 * 1024 * 1024 });
  }

  /** The first page of `agent list` (see FIRST_PAGE). */
  listAgentsPage(timeoutMs = 30_000): Promise<Timed<ListAgentsResponse>> {
    return this.timed(timeoutMs, (md, o, cb) => this.client.listAgents({ query: FIRST_PAGE }, md, o, cb));
  }

  /** How many agents are connected. */
  connectedAgents(timeoutMs = 30_000): Promise<Timed<number>> {
    return this.agentsWithStatus('connected', timeoutMs);
  }

  /** How many agents have this status ('connected', 'unreachable'): the summary's total of a one-row filtered page. */
  agentsWithStatus(status: string, timeoutMs = 30_000): Promise<Timed<number>> {
    const query = ListQuery.fromPartial({ status, limit: 1 });
    return this.timed<ListAgentsResponse>(timeoutMs, (md, o, cb) => this.client.listAgents({ query }, md, o, cb)).then((t) => ({
      ms: t.ms,
      error: t.error,
      value: t.value ? (t.value.summary?.total ?? 0) : undefined,
    }));
  }

  /** `release show --limit 100`: the release and the first page of its instances. */
  getReleasePage(id: string, timeoutMs = 30_000): Promise<Timed<ReleaseDetail>> {
    return this.timed(timeoutMs, (md, o, cb) => this.client.getRelease({ id, query: FIRST_PAGE }, md, o, cb));
  }

  /** The release with every instance, read page by page; the time and error cover all the pages. */
  async getRelease(id: string, timeoutMs = 60_000): Promise<Timed<ReleaseDetail>> {
    const began = performance.now();
    let first: ReleaseDetail | undefined;
    const instances: ReleaseDetail['instances'] = [];
    let after = '';
    do {
      const query = ListQuery.fromPartial({ limit: WHOLE_PAGE, after });
      const left = Math.max(1000, timeoutMs - (performance.now() - began));
      const page = await this.timed<ReleaseDetail>(left, (md, o, cb) => this.client.getRelease({ id, query }, md, o, cb));
      if (!page.value) return { ms: Math.round((performance.now() - began) * 10) / 10, error: page.error };
      first ??= page.value;
      instances.push(...page.value.instances);
      after = page.value.nextAfter;
    } while (after);
    return { ms: Math.round((performance.now() - began) * 10) / 10, value: { ...first, instances, nextAfter: '' } };
  }

  /** `release create APP …` with the CLI's own flag compilation; resolves to the release id. */
  async createRelease(app: string, flags: ReleaseFlags, timeoutMs = 60_000): Promise<string> {
    const spec = buildReleaseSpec(app, flags);
    const created = await this.timed<ReleaseDetail>(timeoutMs, (md, o, cb) => this.client.createRelease({ spec, dryRun: false }, md, o, cb));
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
