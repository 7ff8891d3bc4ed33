// Runs reconcile passes against haproxy, one at a time: read what haproxy holds, compute what it should hold from the
// cache, send the difference. A pass is asked for on every routing update and instance event (asks while one runs
// make one more), retried with backoff while haproxy cannot be reached, and run every `resyncMs` anyway so a change
// made behind the router's back is repaired.
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { backoffDelay } from '../common/backoff.js';
import type { Logger } from '../common/logger.js';
import type { RoutingCache } from './cache.js';
import { computeDesired, type AppView } from './desired.js';
import { readActual } from './haproxy-state.js';
import { appBackends } from './names.js';
import { planApp, slotsNow } from './reconcile.js';
import { commandFailure, formatCommand, type RuntimeCommand } from './runtime-commands.js';
import type { RuntimeCommands } from './runtime.js';

export interface ReconcilerOptions {
  api: RuntimeCommands;
  cache: RoutingCache;
  apps: readonly string[];
  slots: number;
  logger: Logger;
  /** A full pass this often even when nothing was asked (0: never). */
  resyncMs: number;
  /** A pass applied every command it sent; `version` is the cache's routing version the pass started from. */
  onApplied?: (version: number) => void;
  /** Host names (an agent's --advertise) become addresses: dynamic servers do no DNS of their own. */
  resolve?: (host: string) => Promise<string>;
}

export interface PassResult {
  version: number;
  commands: number;
  failures: number;
}

export class Reconciler {
  private dirty = false;
  private running: Promise<void> | null = null;
  private waiters: Array<{ resolve: (r: PassResult) => void; reject: (e: unknown) => void }> = [];
  private failedPasses = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly log: Logger;
  /** Last address each host name resolved to: a passing DNS failure does not take a serving instance out. */
  private readonly resolvedHosts = new Map<string, string>();

  constructor(private readonly o: ReconcilerOptions) {
    this.log = o.logger;
  }

  start(): void {
    if (this.o.resyncMs > 0) this.resyncTimer = setInterval(() => this.kick(), this.o.resyncMs).unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.resyncTimer);
    clearTimeout(this.retryTimer);
  }

  /** Resolves with the result of a pass that started after this call; rejects when that pass could not run. */
  sync(): Promise<PassResult> {
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.kick();
    });
  }

  /** Asks for a pass without waiting for it. */
  kick(): void {
    if (this.stopped) return;
    this.dirty = true;
    this.running ??= this.loop().finally(() => {
      this.running = null;
    });
  }

  /** Resolves once no pass runs or is asked for. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async loop(): Promise<void> {
    while (this.dirty && !this.stopped) {
      this.dirty = false;
      const waiters = this.waiters.splice(0);
      try {
        const result = await this.pass();
        for (const w of waiters) w.resolve(result);
        if (result.failures === 0) this.failedPasses = 0;
        else this.retryLater();
      } catch (err) {
        for (const w of waiters) w.reject(err);
        const delay = this.retryLater();
        this.log.warn({ err: (err as Error).message, retryInMs: delay }, 'reconcile pass failed; haproxy is left as it is');
      }
    }
  }

  private retryLater(): number {
    const delay = Math.max(100, backoffDelay(this.failedPasses++));
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.kick(), delay).unref();
    return delay;
  }

  private async pass(): Promise<PassResult> {
    const { cache, api, slots } = this.o;
    const version = cache.version;
    const views = (await Promise.all(this.o.apps.map((app) => this.resolved(cache.view(app))))).filter((v): v is AppView => v !== undefined);
    if (views.length === 0) return { version, commands: 0, failures: 0 };
    const actual = await readActual(api, views.map((v) => v.app), slots);
    const commands: Array<{ app: string; command: RuntimeCommand }> = [];
    let again = false;
    for (const view of views) {
      const now = actual.get(view.app)!;
      const desired = computeDesired(view, slots, slotsNow(view.app, slots, now));
      again ||= desired.again;
      if (desired.unslotted.length) this.log.warn({ app: view.app, editions: desired.unslotted, slots }, 'editions without an edition slot: their requests take the default way');
      for (const s of desired.skippedRules) this.log.warn({ app: view.app, route: s.id, why: s.why }, 'routing rule left out');
      for (const command of planApp(desired, now, appBackends(view.app, slots))) commands.push({ app: view.app, command });
    }
    const failures = await this.send(commands);
    if (again) this.dirty = true;
    if (failures === 0) this.o.onApplied?.(version);
    return { version, commands: commands.length, failures };
  }

  /** Sends the commands as one batch; returns how many failed (a refused server deletion does not count). */
  private async send(commands: ReadonlyArray<{ app: string; command: RuntimeCommand }>): Promise<number> {
    if (commands.length === 0) return 0;
    const answers = await this.o.api.run(commands.map((c) => formatCommand(c.command)));
    let failures = 0;
    commands.forEach(({ app, command }, i) => {
      const failure = commandFailure(command, answers[i]!);
      const line = formatCommand(command);
      if (failure === null) {
        const important = command.op !== 'add-server' && command.op !== 'enable-health' && command.op !== 'set-state';
        this.log[important ? 'info' : 'debug']({ app, command: line }, 'haproxy changed');
      } else if (command.op === 'del-server') {
        this.log.debug({ app, command: line, answer: failure }, 'server not deleted yet');
      } else {
        failures++;
        this.log.warn({ app, command: line, answer: failure }, 'haproxy refused a change');
      }
    });
    const states = commands.filter((c) => c.command.op === 'set-state').length;
    if (states > 0) this.log.info({ changes: commands.length, serverStates: states, failures }, 'reconciled');
    return failures;
  }

  /** The view with host names resolved; an instance whose name does not resolve (or has no address) is left out. */
  private async resolved(view: AppView | undefined): Promise<AppView | undefined> {
    if (!view) return undefined;
    const resolve = this.o.resolve ?? (async (host: string) => (await lookup(host)).address);
    const instances = [];
    for (const instance of view.instances) {
      if (!instance.address || !instance.port) {
        this.log.warn({ app: view.app, instance: instance.instance }, 'instance has no address or port; not routed');
        continue;
      }
      if (isIP(instance.address)) {
        instances.push(instance);
        continue;
      }
      try {
        const address = await resolve(instance.address);
        this.resolvedHosts.set(instance.address, address);
        instances.push({ ...instance, address });
      } catch (err) {
        const known = this.resolvedHosts.get(instance.address);
        if (known) {
          instances.push({ ...instance, address: known });
          continue;
        }
        this.log.warn({ app: view.app, instance: instance.instance, address: instance.address, err: (err as Error).message }, 'instance address does not resolve; not routed');
      }
    }
    return { ...view, instances };
  }
}
