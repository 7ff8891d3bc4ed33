// Converts store records to the admin API's wire messages.
import type {
  AgentInfo,
  App,
  ChangeRecord,
  Edition,
  Instance,
  ListSummary,
  Release,
  ReleaseDetail,
  ReleaseSpec,
} from '../proto/gen/fleetwave/v1/admin.js';
import type { CompiledSpec } from './domain/spec.js';
import type { ListSummaryRecord, ReleaseDetailPage } from './store/lists.js';
import type {
  AgentRecord,
  AgentStatus,
  AppRecord,
  ChangeRecordRow,
  EditionRecord,
  InstanceRecord,
  ReleaseDetailRecord,
  ReleaseRecord,
} from './domain/records.js';

export function appToProto(a: AppRecord): App {
  return { ...a, drainMode: a.drainMode ?? 'gate', quiesceHook: a.quiesceHook ?? '', inflightPath: a.inflightPath ?? '', updateOrder: a.updateOrder ?? 'stop-first', startGraceMs: a.startGraceMs ?? 0, healthInitialIntervalMs: a.healthInitialIntervalMs ?? 0, holdMs: a.holdMs ?? 0 };
}

/** An edition; `activity` (ListEditions) says where it runs and whether it is a default edition. */
export function editionToProto(
  e: EditionRecord,
  activity: { activeGroups: string[]; isDefault: boolean; keptInstances: number } = { activeGroups: [], isDefault: false, keptInstances: 0 },
): Edition {
  return { ...e, ...activity };
}

export function specToProto(s: CompiledSpec): ReleaseSpec {
  return {
    app: s.app,
    edition: s.edition,
    group: s.group,
    strategy: s.strategy,
    batches: s.batches,
    groupSize: s.groupSize,
    batchMode: s.batchMode,
    waitMs: s.waitMs,
    approvalBefore: s.approvalBefore,
    triggerBefore: s.triggerBefore,
    reset: s.reset,
    drainMs: s.drainMs,
    fullDrain: s.fullDrain,
    bestEffort: s.bestEffort,
    autoRollback: s.autoRollback,
    maxUnavailable: s.maxUnavailable,
    timeouts: { ...s.timeouts },
    start: s.start,
    health: { ...s.health },
    updateOrder: s.updateOrder ?? '',
    force: false,
    fromValidation: false,
    operation: '',
  };
}

export function releaseToProto(r: ReleaseRecord): Release {
  return {
    id: r.id,
    app: r.app,
    edition: r.edition,
    group: r.group,
    status: r.status,
    message: r.message,
    spec: specToProto(r.spec),
    createdUnixMs: r.createdUnixMs,
    updatedUnixMs: r.updatedUnixMs,
    finishedUnixMs: r.finishedUnixMs,
    createdBy: r.createdBy,
    batchCount: r.batchCount,
    currentBatch: r.currentBatch,
    waitingFor: r.waitingFor,
    rollbackBatchCount: r.rollbackBatches,
    routePhase: r.routePhase,
    rollbackCurrentBatch: r.rollbackCurrent,
  };
}

export function changeToProto(c: ChangeRecordRow): ChangeRecord {
  return { ...c };
}

/** A paged answer lists a batch's instance ids up to this many (its instance_count says how many it has). */
export const BATCH_IDS_LISTED = 100;

/**
 * A release with one page of its instances, the summary of every page, and the next page's cursor. Big batches
 * come without their ids, so the answer stays the size of its page however big the release is.
 */
export function detailPageToProto(d: ReleaseDetailPage): ReleaseDetail {
  const whole = detailToProto(d);
  const batches = whole.batches.map((b) => (b.instances.length > BATCH_IDS_LISTED ? { ...b, instances: [] } : b));
  return { ...whole, batches, summary: summaryToProto(d.summary), nextAfter: d.nextAfter };
}

export function summaryToProto(s: ListSummaryRecord): ListSummary {
  return { total: s.total, counts: s.counts.map((c) => ({ ...c })) };
}

export function detailToProto(d: ReleaseDetailRecord): ReleaseDetail {
  // Steps by instance in one pass: filtering all steps per instance was O(instances × steps).
  const stepsOf = new Map<string, ReleaseDetailRecord['steps']>();
  for (const s of d.steps) {
    const list = stepsOf.get(s.instance);
    if (list) list.push(s);
    else stepsOf.set(s.instance, [s]);
  }
  return {
    release: releaseToProto(d.release),
    batches: d.batches.map((b) => ({
      number: b.number,
      group: b.group,
      status: b.status,
      instances: b.instances,
      startedUnixMs: b.startedUnixMs,
      finishedUnixMs: b.finishedUnixMs,
      checkpoint: b.checkpoint,
      checkpointBy: b.checkpointBy,
      checkpointComment: b.checkpointComment,
      instanceCount: b.instances.length,
    })),
    instances: d.instances.map((i) => ({
      instance: i.instance,
      group: i.group,
      batch: i.batch,
      status: i.status,
      moved: i.moved,
      step: i.step,
      edition: d.editions[i.instance] ?? i.fromEdition ?? '',
      error: i.error,
      rollbackBatch: i.rollbackBatch,
      updateOrder: i.updateOrder,
      steps: (stepsOf.get(i.instance) ?? [])
        .map((s) => ({ step: s.step, phase: s.phase, status: s.status, startedUnixMs: s.startedUnixMs, finishedUnixMs: s.finishedUnixMs, error: s.error })),
    })),
    changes: d.changes.map(changeToProto),
    summary: undefined,
    nextAfter: '',
  };
}

export function agentToProto(a: AgentRecord, lastSeen: number | undefined, clockSkewMs = 0): AgentInfo {
  return {
    id: a.id,
    host: a.host,
    group: a.group,
    labels: a.labels,
    status: a.status,
    lastSeenUnixMs: lastSeen ?? a.lastSeenUnixMs,
    connectedUnixMs: a.connectedUnixMs,
    bootId: a.bootId,
    version: a.version,
    clockSkewMs,
  };
}

export function instanceToProto(i: InstanceRecord & { agentStatus: AgentStatus }): Instance {
  return {
    app: i.app,
    instance: i.agentId,
    group: i.group,
    edition: i.activeEdition,
    status: i.agentStatus === 'unreachable' ? 'unreachable' : i.processState,
    servicePort: i.servicePort,
    keptEditions: i.keptEditions,
    quiesced: i.quiesced,
  };
}
