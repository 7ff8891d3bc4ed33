// The browser side of the console benchmark: fresh page loads timed in the page itself, and a page watched while a
// release runs (its API requests, the events it receives, its JS heap, its long tasks, how late it answers).
//
// playwright-core: drives the system's Chromium (/usr/bin/chromium) without a browser download of its own, as
// test/browser/console.test.ts does; the heap and the event-stream messages come from the DevTools protocol (CDP).
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { median, round1 } from './stats.js';

export const CHROMIUM = '/usr/bin/chromium';
const RPC_PATH = '/api/v1/rpc/';

export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking'] });
}

/** A fresh context: no cache, no cookie, its own event stream (the insecure controller needs no sign-in). */
function freshContext(browser: Browser): Promise<BrowserContext> {
  return browser.newContext({ viewport: { width: 1200, height: 900 } });
}

export interface LoadFigures {
  /** `first-contentful-paint`, ms from the start of the navigation. */
  fcpMs: number | null;
  /** When `selector` first matched, ms from the start of the navigation (checked every animation frame). */
  readyMs: number;
  /** transferSize (headers + body as sent) of the document and of every resource finished by then (script, style, API fetches). */
  bytes: number;
  /** Those resources (the event stream, still open, is not among them). */
  requests: number;
  /** What `describe` read from the page once ready (a sanity check: the total shown, the batches shown). */
  shown: string;
}

/** One fresh load of `url`: until `selector` is in the page, then its paint and resource timings. */
export async function timedLoad(browser: Browser, url: string, selector: string, describe: () => string, timeoutMs: number): Promise<LoadFigures> {
  const context = await freshContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(url, { waitUntil: 'commit', timeout: timeoutMs });
    const ready = await page.waitForFunction((sel) => (document.querySelector(sel) ? performance.now() : 0), selector, { polling: 'raf', timeout: timeoutMs });
    const readyMs = (await ready.jsonValue()) as number;
    // The paint entry is queued after the frame that painted: wait for it a little, without failing the load.
    const fcp = await page
      .waitForFunction(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? 0, undefined, { timeout: 5_000 })
      .then((h) => h.jsonValue() as Promise<number>)
      .catch(() => null);
    const { bytes, requests } = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0] as PerformanceNavigationTiming | undefined;
      const resources = performance.getEntriesByType('resource') as PerformanceResourceTiming[];
      return { bytes: resources.reduce((n, r) => n + r.transferSize, nav?.transferSize ?? 0), requests: resources.length + 1 };
    });
    const shown = await page.evaluate(describe);
    return { fcpMs: fcp === null ? null : round1(fcp), readyMs: round1(readyMs)!, bytes, requests, shown };
  } finally {
    await context.close();
  }
}

/** Medians of several loads, and what the last one showed. */
export function loadMedians(loads: LoadFigures[]) {
  return {
    fcpMs: median(loads.flatMap((l) => (l.fcpMs === null ? [] : [l.fcpMs]))),
    readyMs: median(loads.map((l) => l.readyMs)),
    bytes: median(loads.map((l) => l.bytes)),
    requests: median(loads.map((l) => l.requests)),
    shown: loads.at(-1)?.shown ?? '',
    samplesMs: loads.map((l) => l.readyMs),
  };
}

export interface LiveFigures {
  seconds: number;
  /** POSTs to /api/v1/rpc/ per second, all methods. */
  rpcPerSec: number | null;
  /** Refetches of the view per second: requests of its main method (one per refetch). */
  refetchPerSec: number | null;
  /** Median time of those API requests (request sent to response end). */
  rpcMedianMs: number | null;
  /** Server-sent events the page received per second. */
  eventsPerSec: number | null;
  heapStartMb: number | null;
  heapMaxMb: number | null;
  heapEndMb: number | null;
  /** After a forced garbage collection at the end: what the page really keeps. */
  heapAfterGcMb: number | null;
  /** Main-thread tasks over 50 ms (PerformanceObserver 'longtask'): count, share of the window, longest. */
  longTasks: number;
  longTaskPct: number | null;
  longestTaskMs: number | null;
  /** How late the page answers a trivial evaluate (main thread busy): worst sample. */
  answerMaxMs: number | null;
}

const mb = (bytes: number) => round1(bytes / (1024 * 1024));

/** A page left open on one view while the release runs; sample() once a second, figures() at the end. */
export class LiveView {
  private rpc = 0;
  private refetches = 0;
  private events = 0;
  private rpcMs: number[] = [];
  private heap: number[] = [];
  private answers: number[] = [];
  private began = 0;
  private longAtStart = { n: 0, total: 0, max: 0 };

  private constructor(private readonly context: BrowserContext, private readonly page: Page, private readonly cdp: CDPSession, private readonly mainMethod: string) {}

  /** Opens `url` in a fresh context, waits for `selector`; counting starts with start(). */
  static async open(browser: Browser, url: string, selector: string, mainMethod: string, timeoutMs: number): Promise<LiveView> {
    const context = await freshContext(browser);
    await context.addInitScript(() => {
      const w = window as unknown as { __long: { n: number; total: number; max: number } };
      w.__long = { n: 0, total: 0, max: 0 };
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) {
          w.__long.n++;
          w.__long.total += e.duration;
          w.__long.max = Math.max(w.__long.max, e.duration);
        }
      }).observe({ type: 'longtask', buffered: true });
    });
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    const view = new LiveView(context, page, cdp, mainMethod);
    cdp.on('Network.eventSourceMessageReceived', () => void view.events++);
    page.on('request', (r) => {
      const path = new URL(r.url()).pathname;
      if (!path.startsWith(RPC_PATH)) return;
      view.rpc++;
      if (path === RPC_PATH + mainMethod) view.refetches++;
    });
    page.on('requestfinished', (r) => {
      if (!new URL(r.url()).pathname.startsWith(RPC_PATH)) return;
      const t = r.timing();
      if (t.responseEnd > 0) view.rpcMs.push(t.responseEnd);
    });
    await page.goto(url, { waitUntil: 'commit', timeout: timeoutMs });
    await page.waitForSelector(selector, { timeout: timeoutMs });
    return view;
  }

  async start(): Promise<void> {
    this.rpc = this.refetches = this.events = 0;
    this.rpcMs = [];
    // The longest task counts from here (the first render of the view is the page load's figure, not the live one's).
    this.longAtStart = await this.page.evaluate(() => {
      const long = (window as unknown as { __long: { n: number; total: number; max: number } }).__long;
      long.max = 0;
      return { ...long };
    });
    this.began = performance.now();
    await this.sample();
  }

  async sample(): Promise<void> {
    const asked = performance.now();
    await this.page.evaluate(() => 0);
    this.answers.push(performance.now() - asked);
    const { usedSize } = (await this.cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
    this.heap.push(usedSize);
  }

  async figures(): Promise<LiveFigures> {
    const seconds = (performance.now() - this.began) / 1000;
    await this.sample();
    const long = await this.long();
    await this.cdp.send('HeapProfiler.collectGarbage');
    const { usedSize } = (await this.cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
    const per = (n: number) => (seconds > 0 ? round1(n / seconds) : null);
    return {
      seconds: round1(seconds)!,
      rpcPerSec: per(this.rpc),
      refetchPerSec: per(this.refetches),
      rpcMedianMs: round1(median(this.rpcMs)),
      eventsPerSec: per(this.events),
      heapStartMb: mb(this.heap[0] ?? 0),
      heapMaxMb: mb(Math.max(...this.heap)),
      heapEndMb: mb(this.heap.at(-1) ?? 0),
      heapAfterGcMb: mb(usedSize),
      longTasks: long.n - this.longAtStart.n,
      longTaskPct: seconds > 0 ? round1(((long.total - this.longAtStart.total) / (seconds * 1000)) * 100) : null,
      longestTaskMs: round1(long.max),
      answerMaxMs: round1(Math.max(...this.answers)),
    };
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => {});
  }

  private long(): Promise<{ n: number; total: number; max: number }> {
    return this.page.evaluate(() => (window as unknown as { __long: { n: number; total: number; max: number } }).__long);
  }
}
