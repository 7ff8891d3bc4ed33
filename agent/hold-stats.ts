// Held-time figures of one traffic gate: how long held requests waited (p50/p99/max) and how many got a 503 instead.

/** What a gate reports about holding; times in milliseconds. */
export interface HoldFigures {
  /** Requests that waited in the hold queue and were then forwarded. */
  held: number;
  /** Requests answered 503 (Retry-After) because they would have waited past the hold limit. */
  gaveUp: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Everything a HoldStats knows, as plain values: a gate host taking over goes on from it. */
export interface HoldHistory {
  samples: number[];
  next: number;
  held: number;
  gaveUp: number;
  max: number;
}

/** The most recent samples kept for the percentiles; the counts and max cover every request. */
const SAMPLES_KEPT = 10_000;

export class HoldStats {
  private samples: number[] = [];
  private next = 0;
  private heldCount = 0;
  private gaveUpCount = 0;
  private max = 0;

  /** A held request went on to the app after waiting `ms`. */
  forwarded(ms: number): void {
    this.heldCount++;
    this.sample(ms);
  }

  /** A held request was answered 503 after waiting `ms`. */
  gaveUp(ms: number): void {
    this.gaveUpCount++;
    this.sample(ms);
  }

  figures(): HoldFigures {
    const sorted = [...this.samples].sort((a, b) => a - b);
    const at = (q: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : 0);
    return { held: this.heldCount, gaveUp: this.gaveUpCount, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: this.max };
  }

  reset(): void {
    this.samples = [];
    this.next = 0;
    this.heldCount = 0;
    this.gaveUpCount = 0;
    this.max = 0;
  }

  history(): HoldHistory {
    return { samples: [...this.samples], next: this.next, held: this.heldCount, gaveUp: this.gaveUpCount, max: this.max };
  }

  resume(history: HoldHistory): void {
    this.samples = history.samples.slice(0, SAMPLES_KEPT);
    this.next = history.next;
    this.heldCount = history.held;
    this.gaveUpCount = history.gaveUp;
    this.max = history.max;
  }

  private sample(ms: number): void {
    this.max = Math.max(this.max, ms);
    if (this.samples.length < SAMPLES_KEPT) this.samples.push(ms);
    else this.samples[this.next++ % SAMPLES_KEPT] = ms;
  }
}
