// A load generator for the demo: a fixed number of workers per target URL send
// GET requests back to back over keep-alive connections, and count what answered.
// A request that is not a 2xx, or that fails on the network, counts as failed:
// the demo's promise is that a release loses none.
import http from 'node:http';

export interface LoadOptions {
  /** URLs to load, e.g. every instance's service port. */
  urls: string[];
  /** Workers per target, each with at most one request in flight. */
  concurrency?: number;
  /** A request slower than this fails (the gate holds requests up to 30 s by default). */
  requestTimeoutMs?: number;
  /** Headers every request carries (e.g. one a routing rule matches). */
  headers?: Record<string, string>;
  /** Keep every request's start, end and edition (`requests()`): the atomic release's consistency check reads them. */
  record?: boolean;
}

/** One request as `record` keeps it: times from performance.now() (ms), edition '' when it failed. */
export interface RecordedRequest {
  startMs: number;
  endMs: number;
  ok: boolean;
  edition: string;
}

export interface LoadCounts {
  total: number;
  ok: number;
  failed: number;
  /** How many 2xx answers each edition gave (from the JSON body's `edition`). */
  byEdition: Record<string, number>;
}

export interface LoadSummary extends LoadCounts {
  /** Failed requests by reason: `status 503`, `ECONNRESET`, `timeout`, ... */
  failures: Record<string, number>;
  /** Failed requests per target. */
  failedByTarget: Record<string, number>;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  durationMs: number;
  requestsPerSecond: number;
}

interface Outcome {
  ok: boolean;
  edition?: string;
  reason?: string;
  latencyMs: number;
}

export class LoadGenerator {
  private readonly agent: http.Agent;
  private readonly concurrency: number;
  private readonly requestTimeoutMs: number;
  private running = false;
  private workers: Promise<void>[] = [];
  private startedAt = 0;
  private ok = 0;
  private failed = 0;
  private readonly byEdition: Record<string, number> = {};
  private readonly failures: Record<string, number> = {};
  private readonly failedByTarget: Record<string, number> = {};
  private latencies: number[] = [];
  private readonly recorded: RecordedRequest[] = [];

  constructor(private readonly options: LoadOptions) {
    this.concurrency = options.concurrency ?? 8;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 35_000;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: this.concurrency });
  }

  /** Every request so far, in the order they ended (empty unless `record`). */
  requests(): readonly RecordedRequest[] {
    return this.recorded;
  }

  /** Counts so far, cheap enough to poll while the load runs. */
  snapshot(): LoadCounts {
    return { total: this.ok + this.failed, ok: this.ok, failed: this.failed, byEdition: { ...this.byEdition } };
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = performance.now();
    for (const target of this.options.urls) {
      for (let i = 0; i < this.concurrency; i++) this.workers.push(this.work(target));
    }
  }

  /** Stops sending; waits for the requests in flight (they count), then summarizes. */
  async stop(): Promise<LoadSummary> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
    this.agent.destroy();
    return this.summary(performance.now() - this.startedAt);
  }

  private async work(target: string): Promise<void> {
    while (this.running) {
      const startMs = performance.now();
      const outcome = await this.request(target);
      this.latencies.push(outcome.latencyMs);
      if (this.options.record) {
        this.recorded.push({ startMs, endMs: startMs + outcome.latencyMs, ok: outcome.ok, edition: outcome.ok ? (outcome.edition ?? 'unknown') : '' });
      }
      if (outcome.ok) {
        this.ok++;
        const edition = outcome.edition ?? 'unknown';
        this.byEdition[edition] = (this.byEdition[edition] ?? 0) + 1;
      } else {
        this.failed++;
        const reason = outcome.reason ?? 'unknown';
        this.failures[reason] = (this.failures[reason] ?? 0) + 1;
        this.failedByTarget[target] = (this.failedByTarget[target] ?? 0) + 1;
        // A target that refuses at once must not spin this worker.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  private request(target: string): Promise<Outcome> {
    const started = performance.now();
    return new Promise<Outcome>((resolve) => {
      let settled = false;
      const finish = (o: Omit<Outcome, 'latencyMs'>) => {
        if (settled) return;
        settled = true;
        resolve({ ...o, latencyMs: performance.now() - started });
      };
      const req = http.get(target, { agent: this.agent, timeout: this.requestTimeoutMs, headers: this.options.headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => finish({ ok: false, reason: errorReason(err) }));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status >= 300) return finish({ ok: false, reason: `status ${status}` });
          finish({ ok: true, edition: editionOf(Buffer.concat(chunks).toString('utf8')) });
        });
      });
      req.on('timeout', () => {
        finish({ ok: false, reason: 'timeout' });
        req.destroy();
      });
      req.on('error', (err) => finish({ ok: false, reason: errorReason(err) }));
    });
  }

  private summary(durationMs: number): LoadSummary {
    const sorted = [...this.latencies].sort((a, b) => a - b);
    const total = this.ok + this.failed;
    return {
      total,
      ok: this.ok,
      failed: this.failed,
      byEdition: { ...this.byEdition },
      failures: { ...this.failures },
      failedByTarget: { ...this.failedByTarget },
      latencyMs: {
        p50: percentile(sorted, 0.5),
        p90: percentile(sorted, 0.9),
        p99: percentile(sorted, 0.99),
        max: sorted.length ? round(sorted[sorted.length - 1]!) : 0,
      },
      durationMs: round(durationMs),
      requestsPerSecond: durationMs > 0 ? Math.round((total / durationMs) * 1000) : 0,
    };
  }
}

function editionOf(body: string): string {
  try {
    const edition = (JSON.parse(body) as { edition?: unknown }).edition;
    return typeof edition === 'string' ? edition : 'unknown';
  } catch {
    return 'unknown';
  }
}

function errorReason(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}

/**
 * Requests that started after the first answer of `edition` ended, yet were answered by another edition: an atomic
 * switch has none; a rolling release mixes editions on purpose.
 */
export function oldAfterFirstNew(requests: readonly RecordedRequest[], edition: string): RecordedRequest[] {
  const firstNew = Math.min(...requests.filter((r) => r.ok && r.edition === edition).map((r) => r.endMs));
  return requests.filter((r) => r.ok && r.startMs > firstNew && r.edition !== edition);
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return round(sorted[rank]!);
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}
