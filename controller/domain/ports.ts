// The storage contract the release engine depends on, in domain words; controller/store/ implements it on SQLite.
import type { PlannedBatch } from './planner.js';
import type {
  AgentStatus,
  AppRecord,
  ChangeRecordRow,
  CommandOutcome,
  EditionRecord,
  InstanceRecord,
  ReconcileOutput,
  ReleaseDetailRecord,
  ReleaseRecord,
  ReleaseSnapshot,
} from './records.js';
import type { CompiledSpec } from './spec.js';

/** A committed command (outbox row) without a result yet, as it goes to its agent. */
export interface PendingCommand {
  commandId: string;
  agentId: string;
  payload: Uint8Array;
}

export interface NewReleaseInput {
  id: string;
  spec: CompiledSpec;
  actor: string;
  now: number;
  /** Runs inside the transaction; throws BadInputError / NotFoundError when the spec does not fit. */
  plan: (ctx: { app: AppRecord; edition: EditionRecord; instances: InstanceRecord[] }) => PlannedBatch[];
}

/** Exactly the store operations the release engine (controller/engine/) calls; each is atomic. */
export interface ReleaseStore {
  getApp(name: string): AppRecord;
  hasApp(name: string): boolean;
  /** Instances of an app (all apps when empty), with their agent's status. */
  listInstances(app: string): Array<InstanceRecord & { agentStatus: AgentStatus }>;

  /** Validates, plans and inserts a release in one transaction (the one-active-release check included). */
  createRelease(input: NewReleaseInput): ReleaseRecord;
  getRelease(id: string): ReleaseRecord;
  listReleases(app: string): ReleaseRecord[];
  getReleaseDetail(id: string): ReleaseDetailRecord;
  /** Ids of releases that are not in a final status, oldest first. */
  activeReleaseIds(): string[];
  /** Active releases of the app whose `waiting_for` starts with `prefix`, oldest first. */
  releasesWaitingFor(app: string, prefix: string): string[];
  /** Active releases with a deadline at or before `now`. */
  releasesDue(now: number): string[];
  /** The earliest deadline (step or batch wait) of an active release, or null. */
  nextDeadline(): number | null;

  /** One reconcile pass: `decide` changes the snapshot; what changed and the output are written in one transaction. */
  reconcileRelease<T extends ReconcileOutput>(id: string, decide: (snapshot: ReleaseSnapshot) => T): { snapshot: ReleaseSnapshot; output: T };
  /** Runs `fn` in a transaction that is always rolled back (a dry run), and returns what it returned. */
  rehearse<T>(fn: () => T): T;
  /** Runs `fn` in one transaction, for inputs handled together. */
  batch<T>(fn: () => T): T;

  /** Records a command's result; returns its release, or null when the id is unknown or already done. */
  recordCommandResult(agentId: string, commandId: string, outcome: CommandOutcome): { releaseId: string; instance: string; kind: string } | null;
  /** Records a `drained` event for the instance's active release if it is quiescing or draining; returns the release id. */
  recordDrained(app: string, instance: string, quiesceCommandId?: string): string | null;
  recordChange(change: ChangeRecordRow): void;
}

/**
 * What the release engine needs of the routers (issue 11, docs/router.md); the routing hub implements it, tests fake
 * it. An atomic release writes its route phase, then asks for a sync and holds its next batch until applied.
 */
export interface RouterGate {
  /** Routers connected now that front the app (0: no router would switch anything). */
  routersFor(app: string): number;
  /**
   * Pushes the app's routing as the store has it now to every router fronting it, and calls `onApplied` once each
   * acked it, or once a deadline passed (lagging routers are logged); at most once per call. Call after the commit.
   */
  sync(app: string, onApplied: () => void): void;
}
