// Test support for the engine's unit tests: a hand-written fleet that plays the agents' results, and a seeded store.
import type { ReleaseSpec } from '../../proto/gen/fleetwave/v1/admin.js';
import { Command } from '../../proto/gen/fleetwave/v1/agent.js';
import type { PendingCommand, RouterGate } from '../domain/ports.js';
import type { AppRecord } from '../domain/records.js';
import type { Store } from '../store/store.js';
import { commandKind } from './commands.js';
import type { CommandSink, ReleaseEngine } from './engine.js';

export interface Sent {
  agentId: string;
  command: Command;
  kind: string;
}

/** A result to play; `updateOrder` stands for the order an agent reports (default: the one the RestartApp asked for). */
export type Answer = { ok: boolean; error?: string; updateOrder?: string } | 'hold';

export const HOSTS = [
  ...['a1', 'a2', 'a3', 'a4'].map((id) => ({ id, group: 'east' })),
  ...['b1', 'b2', 'b3', 'b4'].map((id) => ({ id, group: 'west' })),
];

/** Plays the agents: answers every delivered command when pumped, as `answer` says, and reports editions on disk. */
export class FakeFleet implements CommandSink {
  sent: Sent[] = [];
  queue: Sent[] = [];
  held: Sent[] = [];
  log: string[] = [];
  drainedOnQuiesce = true;
  answer: (s: Sent) => Answer = () => ({ ok: true });
  /** Per agent: active edition and editions on disk, as an agent would report them. */
  readonly disk = new Map<string, { active: string; kept: string[] }>();

  deliver(commands: PendingCommand[]): void {
    for (const c of commands) {
      const command = Command.decode(c.payload);
      const sent = { agentId: c.agentId, command, kind: commandKind(command) };
      this.sent.push(sent);
      this.queue.push(sent);
      this.log.push(`send ${sent.kind} ${c.agentId}`);
    }
  }

  /** Answers queued commands until none is left. */
  pump(engine: ReleaseEngine): void {
    while (this.queue.length) {
      const s = this.queue.shift()!;
      const answer = this.answer(s);
      if (answer === 'hold') {
        this.held.push(s);
        continue;
      }
      this.reply(engine, s, answer);
    }
  }

  reply(engine: Pick<ReleaseEngine, 'commandResult' | 'drained'>, s: Sent, answer: { ok: boolean; error?: string; updateOrder?: string }): void {
    this.log.push(`result ${s.kind} ${s.agentId}`);
    const edition = s.command.restartApp?.edition ?? s.command.startApp?.edition ?? s.command.hardResetServer?.edition ?? '';
    const disk = this.disk.get(s.agentId);
    if (disk && answer.ok) {
      if (s.command.downloadPackage) disk.kept = [...new Set([s.command.downloadPackage.edition, ...disk.kept])];
      if (edition) disk.active = edition;
      if (s.command.stopApp) disk.active = '';
    }
    engine.commandResult(s.agentId, {
      commandId: s.command.commandId,
      ok: answer.ok,
      error: answer.error ?? '',
      replayed: false,
      startedUnixMs: Date.now(),
      finishedUnixMs: Date.now(),
      activeEdition: answer.ok ? edition : '',
      updateOrder: s.command.restartApp ? answer.updateOrder ?? (s.command.restartApp.updateOrder || 'stop-first') : '',
      instance: disk && {
        app: s.command.app,
        servicePort: 8080,
        activeEdition: disk.active,
        keptEditions: disk.kept,
        processState: disk.active ? 'running' : 'stopped',
        quiesced: false,
      },
    });
    if (s.kind === 'Quiesce' && this.drainedOnQuiesce) engine.drained(s.command.app, s.agentId);
  }

  kinds(agentId: string): string[] {
    return this.sent.filter((s) => s.agentId === agentId).map((s) => s.kind);
  }
}

/** App `shop` with editions 1.0 and 2.0 (and more when asked), and the HOSTS running `activeEdition`. */
export function seed(s: Store, activeEdition = '1.0', fleet?: FakeFleet, editions = ['1.0', '2.0'], app: Partial<AppRecord> = {}): void {
  s.createApp({ name: 'shop', startCommand: ['node', 'server.js'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 10_000, createdUnixMs: 1, ...app });
  for (const name of editions) {
    s.installEdition({ app: 'shop', name, description: '', url: `http://x/${name}`, sha256: name.repeat(4), size: 10, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
  }
  for (const h of HOSTS) {
    const kept = activeEdition ? [activeEdition] : [];
    fleet?.disk.set(h.id, { active: activeEdition, kept: [...kept] });
    s.markAgentConnected(
      {
        agentId: h.id,
        host: h.id,
        group: h.group,
        labels: {},
        bootId: 'boot',
        version: 'test',
        instances: [{ app: 'shop', servicePort: 8080, activeEdition, keptEditions: kept, processState: activeEdition ? 'running' : 'stopped', quiesced: false }],
      },
      Date.now(),
    );
  }
}

export const baseSpec = (spec: Partial<ReleaseSpec> = {}): Partial<ReleaseSpec> => ({ app: 'shop', edition: '2.0', group: 'all', batches: 2, start: true, ...spec });

/**
 * Plays the routing hub for the engine (RouterGate): `count` routers front every app; each sync is logged (with the
 * route phase the store holds for the app's newest release at that moment) and answered only when the test says so.
 */
export class FakeRouters implements RouterGate {
  count = 1;
  /** Syncs not answered yet, oldest first. */
  pending: Array<{ app: string; phase: string; applied: () => void }> = [];
  /** Every sync asked, as "<app> <phase>". */
  syncs: string[] = [];

  /** `log`: a shared timeline (the fake fleet's), so a test can order syncs and acks among commands. */
  constructor(
    private readonly store: Store,
    private readonly log: string[] = [],
  ) {}

  routersFor(): number {
    return this.count;
  }

  sync(app: string, onApplied: () => void): void {
    const phase = this.store.listReleases(app)[0]?.routePhase ?? '';
    this.syncs.push(`${app} ${phase}`);
    this.log.push(`sync ${phase || "''"}`);
    this.pending.push({ app, phase, applied: onApplied });
  }

  /** Every router acks what it was asked so far. */
  ack(): void {
    for (const sync of this.pending.splice(0)) {
      this.log.push(`applied ${sync.phase || "''"}`);
      sync.applied();
    }
  }
}
