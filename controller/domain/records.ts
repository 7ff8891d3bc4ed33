// The records the store hands out and takes in, in domain words (no SQL shapes leak out).
import type { CompiledSpec } from './spec.js';
import type { BatchStatus, InstanceStatus, ReleaseStatus } from './transitions.js';

export interface AppRecord {
  name: string;
  startCommand: string[];
  env: Record<string, string>;
  portEnv: string;
  healthPath: string;
  stopTimeoutMs: number;
  createdUnixMs: number;
  /** 'gate' (the agent's traffic gate drains it; also when absent) or 'self' (quiesce hook + polled in-flight count). */
  drainMode?: string;
  quiesceHook?: string;
  inflightPath?: string;
  /** How soft resets replace its process; absent (an app stored before update orders): stop-first. */
  updateOrder?: string;
  /** Longest a start waits after spawn when the health check does not pass sooner; 0 (or absent): the agent's default. */
  startGraceMs?: number;
  /** First wait between health probes (doubling up to the check's interval); 0 (or absent): the agent's default. */
  healthInitialIntervalMs?: number;
  /** The gate's hold limit for this app (ms); 0 or absent: the agent's --gate-hold. */
  holdMs?: number;
}

export interface EditionRecord {
  app: string;
  name: string;
  description: string;
  url: string;
  sha256: string;
  size: number;
  format: string;
  fileName: string;
  createdUnixMs: number;
}

export type AgentStatus = 'connected' | 'unreachable';

export interface AgentRecord {
  id: string;
  host: string;
  group: string;
  labels: Record<string, string>;
  status: AgentStatus;
  lastSeenUnixMs: number;
  connectedUnixMs: number;
  bootId: string;
  version: string;
}

/** One application served by one agent (its id is the agent id). */
export interface InstanceRecord {
  app: string;
  agentId: string;
  group: string;
  servicePort: number;
  activeEdition: string;
  keptEditions: string[];
  processState: string;
  quiesced: boolean;
  updatedUnixMs: number;
}

/** Why a release stopped moving forward (it ends in `Release failed` once settled). */
export type StopReason = 'failed' | 'cancelled' | 'rejected';

export interface ReleaseRecord {
  id: string;
  app: string;
  edition: string;
  group: string;
  status: ReleaseStatus;
  message: string;
  spec: CompiledSpec;
  createdUnixMs: number;
  updatedUnixMs: number;
  finishedUnixMs: number;
  createdBy: string;
  batchCount: number;
  currentBatch: number;
  waitingFor: string;
  /** Auto batch mode: the next batch may not start before this time. */
  nextBatchAt: number | null;
  stopReason: StopReason | null;
  /** The first batch failed: its moved instances go back to their old edition. */
  revert: boolean;
  /** Rollback batches planned by the last rollback (0: never rolled back). */
  rollbackBatches: number;
  /** 1-based rollback batch in progress (0 before the first). */
  rollbackCurrent: number;
  /** Its target covered every instance on the app's default editions when it was created: it moves the default. */
  takesDefault: boolean;
  /** The app's default editions when it was created (see domain/routing.ts). */
  fromDefault: string[];
  /** Atomic releases: where the routers are (see Release.route_phase in admin.proto). */
  routePhase: RoutePhase;
}

/** '' before an atomic release reached the routers (and for every other strategy). */
export type RoutePhase = '' | 'first-half' | 'switched';

export interface BatchRecord {
  releaseId: string;
  number: number;
  group: string;
  status: BatchStatus;
  instances: string[];
  startedUnixMs: number;
  finishedUnixMs: number;
  /** "approval", "trigger", "continue" or "". */
  checkpoint: string;
  checkpointBy: string;
  checkpointComment: string;
  /** Its checkpoint (or manual continue) was passed. */
  cleared: boolean;
}

export type StepName = 'download' | 'quiesce' | 'drain' | 'restart' | 'hard-reset' | 'start' | 'stop' | 'health';
/**
 * upgrade: had an edition; deploy: had none; revert: going back after a first-batch failure;
 * rollback: going back in an operator's (or automatic) rollback; rollback-ended: its rollback finished, ok or not.
 */
export type InstancePhase = '' | 'upgrade' | 'deploy' | 'revert' | 'rollback' | 'rollback-ended';
/** The pipeline a step runs in (an instance's phase, `rollback-ended` counting as rollback). */
export type StepPhase = '' | 'upgrade' | 'deploy' | 'revert' | 'rollback';
/** How far the instance moved: nothing yet, quiesced (old edition still running), switched to the new edition. */
export type Moved = 'none' | 'quiesced' | 'switched';

export interface ReleaseInstanceRecord {
  releaseId: string;
  instance: string;
  group: string;
  batch: number;
  status: InstanceStatus;
  step: StepName | '';
  /** running: its command or wait is under way; done: finished ok. */
  stepState: '' | 'running' | 'done';
  stepStartedUnixMs: number;
  phase: InstancePhase;
  commandId: string | null;
  deadlineUnixMs: number | null;
  drained: boolean;
  downloaded: boolean;
  moved: Moved;
  error: string;
  /** Edition active before the release touched it ("" when none). */
  fromEdition: string | null;
  /** Its rollback batch (1-based); 0 when the rollback leaves it alone. */
  rollbackBatch: number;
  /** The update order its last restart used, as the agent reported it (a fallback included); '' before any. */
  updateOrder: string;
}

export interface StepRow {
  releaseId: string;
  instance: string;
  step: string;
  /** The pipeline the step belongs to: upgrade, deploy, revert or rollback. */
  phase: StepPhase;
  status: 'running' | 'ok' | 'failed';
  startedUnixMs: number;
  finishedUnixMs: number;
  error: string;
}

export interface ChangeRecordRow {
  atUnixMs: number;
  actor: string;
  action: string;
  app: string;
  releaseId: string;
  comment: string;
  result: string;
}

export interface OutboxEntry {
  commandId: string;
  agentId: string;
  releaseId: string;
  instance: string;
  kind: string;
  /** Command.encode(...) bytes. */
  payload: Uint8Array;
  createdUnixMs: number;
}

/** What came back for a command (or why the controller gave up on it). */
export interface CommandOutcome {
  ok: boolean;
  error: string;
  finishedUnixMs: number;
  activeEdition: string;
  abandoned?: boolean;
  /** RestartApp: the update order the agent used. */
  updateOrder?: string;
  /** The instance as the agent reported it after the command, when it did. */
  instance?: { activeEdition: string; keptEditions: string[]; processState: string; quiesced: boolean };
}

/** Everything reconcile needs about one release, loaded inside its transaction. */
export interface ReleaseSnapshot {
  release: ReleaseRecord;
  batches: BatchRecord[];
  instances: ReleaseInstanceRecord[];
  app: AppRecord;
  edition: EditionRecord;
  /** By instance (agent) id. */
  hosts: Record<string, InstanceRecord | undefined>;
  agentStatus: Record<string, AgentStatus | undefined>;
  /** Outcomes of the commands the instances wait on, by command id. */
  outcomes: Record<string, CommandOutcome | undefined>;
  /** Every edition of the app, by name (a rollback may need to download the old one). */
  editions: Record<string, EditionRecord | undefined>;
  /** Instances of the same app out of service in the app's other active releases (for max-unavailable). */
  elsewhere: { outOfService: number; busy: number };
}

export type StepOp =
  | { op: 'start'; instance: string; step: string; phase: StepPhase; at: number }
  | { op: 'end'; instance: string; step: string; status: 'ok' | 'failed'; at: number; error: string; startedAt: number };

/** What a reconcile pass decided, persisted with the snapshot's changed rows in the same transaction. */
export interface ReconcileOutput {
  commands: OutboxEntry[];
  /** Commands the controller gave up on (timed out, release ended): never re-sent. */
  abandoned: Array<{ commandId: string; reason: string }>;
  /** Timeline rows, in order: a step may start and end within one pass. */
  steps: StepOp[];
  changes: ChangeRecordRow[];
  /**
   * The instance rows the decision changed (`all`: any of them may have): only those are compared and written.
   * Absent: every row is compared.
   */
  touched?: { instances: Set<ReleaseInstanceRecord>; all: boolean };
}

export interface ReleaseDetailRecord {
  release: ReleaseRecord;
  batches: BatchRecord[];
  instances: ReleaseInstanceRecord[];
  steps: StepRow[];
  changes: ChangeRecordRow[];
  /** Edition of each instance now, by instance id. */
  editions: Record<string, string>;
}
