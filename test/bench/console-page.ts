// The browser side of the console benchmark: fresh page loads timed in the page itself, and a page watched while a
// release runs (its API requests, the events it receives, its JS heap, its long tasks, how late it answers).
//
// playwright-core: drives the system's Chromium (/usr/bin/chromium) without a browser download of its own, as
// test/browser/console.test.ts does; the heap and the event-stream messages come from the DevTools protocol (CDP).
import { readdirSync, readFileSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from 'playwright-core';
import { parseCpuSeconds } from './scale-figures.js';
import { median, round1 } from './stats.js';

export const CHROMIUM = '/usr/bin/chromium';
const RPC_PATH = '/api/v1/rpc/';

/** --enable-precise-memory-info: performance.memory exact instead of bucketed (it changes nothing else). */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-background-networking', '--enable-precise-memory-info'] });
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
  /** The window, on the page's clock. */
  seconds: number;
  /** Calls to /api/v1/rpc/ per second, all methods. */
  rpcPerSec: number | null;
  /** Refetches of the view per second: calls of its main method (one per refetch). */
  refetchPerSec: number | null;
  /** Median time of those API calls (fetch called to answer read, in the page). */
  rpcMedianMs: number | null;
  /** Server-sent events the page's listeners got per second. */
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
  /** A 100 ms interval timer in the page: how late it fired at worst (what a click would wait for). */
  timerLagMaxMs: number | null;
}

/** What the init script keeps in the page (window.__bench): counted there, so the figures need no CDP traffic. */
interface Probe {
  began: number;
  rpc: number;
  main: number;
  rpcMs: number[];
  events: number;
  heap: number[];
  long: { n: number; total: number; max: number };
  lagMax: number;
}

const mb = (bytes: number | undefined) => (bytes === undefined ? null : round1(bytes / (1024 * 1024)));

/**
 * Installed before the console's own script: wraps fetch (API calls, their times), EventSource listeners (events),
 * observes long tasks, and samples the heap (performance.memory, precise with --enable-precise-memory-info) and a
 * timer's lateness. Everything stays in the page until read once, so a busy DevTools pipe cannot skew the window.
 */
function installProbe(mainPath: string): void {
  const probe: Probe = { began: performance.now(), rpc: 0, main: 0, rpcMs: [], events: 0, heap: [], long: { n: 0, total: 0, max: 0 }, lagMax: 0 };
  (window as unknown as { __bench: Probe }).__bench = probe;
  const memory = () => (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;
  const fetch0 = window.fetch.bind(window);
  window.fetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const path = new URL(String(input instanceof Request ? input.url : input), location.href).pathname;
    if (!path.startsWith('/api/v1/rpc/')) return fetch0(input, init);
    probe.rpc++;
    if (path === mainPath) probe.main++;
    const t0 = performance.now();
    const res = await fetch0(input, init);
    // The body is read by the caller; clone() lets the probe wait for it without taking it.
    void res.clone().arrayBuffer().then(() => probe.rpcMs.push(performance.now() - t0), () => {});
    return res;
  };
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (this: EventSource, type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions) {
    const inner = listener;
    const counted = typeof inner === 'function' ? (e: Event) => (probe.events++, inner.call(this, e)) : inner;
    return add.call(this, type, counted as EventListenerOrEventListenerObject, options);
  } as typeof EventSource.prototype.addEventListener;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      probe.long.n++;
      probe.long.total += e.duration;
      probe.long.max = Math.max(probe.long.max, e.duration);
    }
  }).observe({ type: 'longtask', buffered: true });
  let last = performance.now();
  let ticks = 0;
  setInterval(() => {
    const now = performance.now();
    probe.lagMax = Math.max(probe.lagMax, now - last - 100);
    last = now;
    if (++ticks % 10 === 0) probe.heap.push(memory());
  }, 100);
}

/** A page left open on one view while the release runs: start() zeroes its probe, figures() reads it. */
export class LiveView {
  private constructor(private readonly context: BrowserContext, private readonly page: Page, private readonly cdp: CDPSession) {}

  /** Opens `url` in a fresh context with the probe, waits for `selector`; `mainMethod` is the view's refetch call. */
  static async open(browser: Browser, url: string, selector: string, mainMethod: string, timeoutMs: number): Promise<LiveView> {
    const context = await freshContext(browser);
    await context.addInitScript(installProbe, RPC_PATH + mainMethod);
    const page = await context.newPage();
    const cdp = await context.newCDPSession(page);
    await page.goto(url, { waitUntil: 'commit', timeout: timeoutMs });
    await page.waitForSelector(selector, { timeout: timeoutMs });
    return new LiveView(context, page, cdp);
  }

  async start(): Promise<void> {
    await this.page.evaluate(() => {
      const p = (window as unknown as { __bench: Probe }).__bench;
      Object.assign(p, { began: performance.now(), rpc: 0, main: 0, rpcMs: [], events: 0, long: { n: 0, total: 0, max: 0 }, lagMax: 0 });
      p.heap = [(performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0];
    });
  }

  async figures(timeoutMs: number): Promise<LiveFigures> {
    const p = await withTimeout(
      this.page.evaluate(() => {
        const probe = (window as unknown as { __bench: Probe }).__bench;
        return { ...probe, ended: performance.now() };
      }),
      timeoutMs,
      'reading the page probe',
    );
    await this.cdp.send('HeapProfiler.collectGarbage');
    const { usedSize } = (await this.cdp.send('Runtime.getHeapUsage')) as { usedSize: number };
    const seconds = (p.ended - p.began) / 1000;
    const per = (n: number) => (seconds > 0 ? round1(n / seconds) : null);
    return {
      seconds: round1(seconds)!,
      rpcPerSec: per(p.rpc),
      refetchPerSec: per(p.main),
      rpcMedianMs: round1(median(p.rpcMs)),
      eventsPerSec: per(p.events),
      heapStartMb: mb(p.heap[0]),
      heapMaxMb: mb(p.heap.length ? Math.max(...p.heap) : undefined),
      heapEndMb: mb(p.heap.at(-1)),
      heapAfterGcMb: mb(usedSize),
      longTasks: p.long.n,
      longTaskPct: seconds > 0 ? round1((p.long.total / (seconds * 1000)) * 100) : null,
      longestTaskMs: round1(p.long.max),
      timerLagMaxMs: round1(p.lagMax),
    };
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => {});
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** CPU seconds so far of every Chromium process under this one (browser, renderers, GPU and network services). */
export function browserCpuSeconds(): number {
  const parents = new Map<number, { ppid: number; comm: string; cpu: number }>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      // After the parenthesised name: state, ppid, …
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      parents.set(Number(entry), { ppid, comm: stat.slice(stat.indexOf('(') + 1, close), cpu: parseCpuSeconds(stat) });
    } catch {
      // Gone meanwhile.
    }
  }
  const under = (pid: number): boolean => {
    for (let p = parents.get(pid)?.ppid; p; p = parents.get(p)?.ppid) if (p === process.pid) return true;
    return false;
  };
  let sum = 0;
  for (const [pid, info] of parents) if (info.comm.includes('chrom') && under(pid)) sum += info.cpu;
  return sum;
}
