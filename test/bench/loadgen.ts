// A load generator whose clients give up after 2 s, as many HTTP clients do by default: it counts what a user of the
// service would see during a release, and how much longer requests took than before it (the time the gate held them).
//
//   client loop: GET ──answer 2xx──────────────▶ ok            (latency kept)
//                    ├─answer 503 + Retry-After─▶ retryAfter503 (latency kept: the gate held it, then said so)
//                    ├─no answer within 2 s─────▶ clientTimeout (request aborted, connection dropped)
//                    ├─ECONNREFUSED─────────────▶ refused       (nothing listened on the service port)
//                    └─anything else────────────▶ other         (by reason: `status 502`, `ECONNRESET`, ...)
//
// A client that failed waits 10 ms before its next request (a retrying client would honour Retry-After; this one
// counts the answer and goes on, so the figures show every 503).
import http from 'node:http';
import { percentile } from '../../examples/demo/load.js';

export const CLIENT_TIMEOUT_MS = 2000;

export interface ClientLoadOptions {
  /** URLs to load, e.g. every instance's service port. */
  urls: string[];
  /** Clients per URL, each with one request in flight. */
  concurrency: number;
  timeoutMs?: number;
}

export interface ClientCounts {
  ok: number;
  retryAfter503: number;
  clientTimeouts: number;
  refused: number;
  /** Other failures by reason. */
  other: Record<string, number>;
}

export interface ClientSummary extends ClientCounts {
  total: number;
  /** Latency of the answered requests (ok and 503), in ms. */
  latencyMs: { p50: number; p99: number; max: number };
  durationMs: number;
}

/** Held time from the client side: how much longer than `baselineMs` (the p50 before the release) answers took. */
export interface HeldFigures {
  /** Answers that took more than `thresholdMs` longer than the baseline, and client timeouts. */
  held: number;
  heldP50Ms: number;
  heldP99Ms: number;
  heldMaxMs: number;
}

export class ClientLoad {
  private readonly agent: http.Agent;
  private readonly timeoutMs: number;
  private running = false;
  private workers: Promise<void>[] = [];
  private startedAt = 0;
  private readonly counts: ClientCounts = { ok: 0, retryAfter503: 0, clientTimeouts: 0, refused: 0, other: {} };
  private readonly latencies: number[] = [];

  constructor(private readonly options: ClientLoadOptions) {
    this.timeoutMs = options.timeoutMs ?? CLIENT_TIMEOUT_MS;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.concurrency * options.urls.length });
  }

  /** Requests answered or failed so far. */
  get total(): number {
    const c = this.counts;
    return c.ok + c.retryAfter503 + c.clientTimeouts + c.refused + Object.values(c.other).reduce((a, b) => a + b, 0);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.startedAt = performance.now();
    for (const url of this.options.urls) for (let i = 0; i < this.options.concurrency; i++) this.workers.push(this.client(url));
  }

  /** Stops sending; requests in flight finish (or time out) and count. */
  async stop(): Promise<ClientSummary> {
    this.running = false;
    await Promise.all(this.workers);
    this.workers = [];
    this.agent.destroy();
    const sorted = [...this.latencies].sort((a, b) => a - b);
    return {
      ...this.counts,
      other: { ...this.counts.other },
      total: this.total,
      latencyMs: { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: percentile(sorted, 1) },
      durationMs: Math.round(performance.now() - this.startedAt),
    };
  }

  /**
   * Held figures against `baselineMs`; an answer counts as held when it took more than `thresholdMs` longer. A request
   * the client gave up on counts as held for the whole client timeout (a lower bound of how long it would have waited).
   */
  held(baselineMs: number, thresholdMs = 20): HeldFigures {
    const extra = this.latencies.map((l) => l - baselineMs).filter((e) => e > thresholdMs);
    for (let i = 0; i < this.counts.clientTimeouts; i++) extra.push(this.timeoutMs);
    extra.sort((a, b) => a - b);
    return { held: extra.length, heldP50Ms: percentile(extra, 0.5), heldP99Ms: percentile(extra, 0.99), heldMaxMs: percentile(extra, 1) };
  }

  private async client(url: string): Promise<void> {
    while (this.running) {
      const outcome = await this.request(url);
      if (outcome !== 'ok') await new Promise((r) => setTimeout(r, 10));
    }
  }

  private request(url: string): Promise<string> {
    const started = performance.now();
    return new Promise((resolve) => {
      let settled = false;
      const settle = (outcome: keyof Omit<ClientCounts, 'other'> | { other: string }, answered: boolean): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (answered) this.latencies.push(performance.now() - started);
        if (typeof outcome === 'string') this.counts[outcome]++;
        else this.counts.other[outcome.other] = (this.counts.other[outcome.other] ?? 0) + 1;
        resolve(typeof outcome === 'string' ? outcome : outcome.other);
      };
      const req = http.get(url, { agent: this.agent }, (res) => {
        res.resume();
        res.on('error', (err) => settle({ other: reason(err) }, false));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) settle('ok', true);
          else if (status === 503 && res.headers['retry-after'] !== undefined) settle('retryAfter503', true);
          else settle({ other: `status ${status}` }, true);
        });
      });
      // The whole request, not the socket's idle time: a held request sends nothing back until it is let go.
      const timer = setTimeout(() => {
        settle('clientTimeouts', false);
        req.destroy();
      }, this.timeoutMs);
      req.on('error', (err) => settle(reason(err) === 'ECONNREFUSED' ? 'refused' : { other: reason(err) }, false));
    });
  }
}

function reason(err: Error): string {
  return (err as NodeJS.ErrnoException).code ?? err.message;
}
