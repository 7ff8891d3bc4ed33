// A request to the sample app (examples/app) that stays in flight until the test lets it go, so a test that needs
// an instance mid-drain holds the drain open itself instead of racing a timer.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { waitFor } from './wait.js';

let count = 0;

export interface HeldAnswer {
  status: number;
  body: { edition: string; sleptMs: number };
}

export class HeldRequest {
  /** The app's answer (rejects if the request failed); settles only after `release()` or `maxMs`. */
  readonly answer: Promise<HeldAnswer>;
  private readonly name = `release-held-${process.pid}-${++count}`;

  /**
   * Sends `GET /slow` to the app on `port`. `appDir` is the edition directory the app runs from (the file that
   * lets the request go is written there); `maxMs` only bounds a test that never releases it.
   */
  constructor(readonly port: number, private readonly appDir: string, maxMs = 120_000) {
    this.answer = fetch(`http://127.0.0.1:${port}/slow?ms=${maxMs}&until=${this.name}`).then(async (res) => ({
      status: res.status,
      body: (await res.json()) as HeldAnswer['body'],
    }));
    // Awaited later by the test; a test that failed before that must not leave an unhandled rejection behind.
    this.answer.catch(() => undefined);
  }

  /** Resolves once the app counts at least `atLeast` requests in flight (this one among them). */
  async inFlight(atLeast = 1): Promise<void> {
    await waitFor(`a held request in flight on port ${this.port}`, async () => {
      const res = await fetch(`http://127.0.0.1:${this.port}/inflight`);
      return ((await res.json()) as { inFlight: number }).inFlight >= atLeast;
    });
  }

  /** Lets the request finish: the app answers it at once. */
  release(): void {
    writeFileSync(join(this.appDir, this.name), 'go\n');
  }
}
