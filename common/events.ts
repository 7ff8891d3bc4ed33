// Every event fleetwave publishes: its reason, NATS subject, CloudEvents type and data.
// Nothing else in the code invents subject strings; docs/events.md documents each
// entry of EVENT_TYPES, and a test checks the two agree.
import { randomUUID } from 'node:crypto';

export const SUBJECT_ROOT = 'fleetwave.events';
export const STREAM_NAME = 'FLEETWAVE_EVENTS';
export const TYPE_PREFIX = 'io.fleetwave';
/** CloudEvents `source` of everything the controller publishes. */
export const CONTROLLER_SOURCE = 'fleetwave/controller';
/** Agents publish instance events only here; the controller validates them and republishes under SUBJECT_ROOT (docs/events.md). */
export const INGEST_ROOT = 'fleetwave.ingest';
/** Work queue of ingest subjects the controller consumes, so events published while it is down are checked when it is back. */
export const INGEST_STREAM_NAME = 'FLEETWAVE_INGEST';
/** NATS header with the agent's Ed25519 signature (base64) over signedBytes(subject, payload). */
export const SIGNATURE_HEADER = 'Fleetwave-Signature';

/** Events about one application instance, published by the agent that serves it (the controller: unreachable, reachable). */
export const INSTANCE_EVENTS = {
  /** The instance stopped taking new work; drain begins. */
  quiesceStarted: 'quiesce.started',
  /** In-flight requests while draining (every 250 ms or on change). */
  drainProgress: 'drain.progress',
  /** No request in flight any more, or the drainage interval ended. */
  drained: 'drained',
  /** The app process stopped. */
  stopped: 'stopped',
  /** The app process started on an edition. */
  started: 'started',
  /** The health check passed; the instance takes traffic again. */
  healthy: 'healthy',
  /** The health check failed after its retries. */
  unhealthy: 'unhealthy',
  /** The controller lost the instance's agent (heartbeat timeout or stream closed); published by the controller. */
  unreachable: 'unreachable',
  /** The instance's agent is connected again after being unreachable; published by the controller. */
  reachable: 'reachable',
} as const;

/** Instance events only the controller publishes (on the instance's subject, source `fleetwave/controller`). */
export const CONTROLLER_INSTANCE_EVENTS: readonly InstanceEventReason[] = [INSTANCE_EVENTS.unreachable, INSTANCE_EVENTS.reachable];

/** Events about a release, published by the controller. */
export const RELEASE_EVENTS = {
  /** The release moved from one status to another. */
  statusChanged: 'status.changed',
  /** A batch began (its instances start their steps). */
  batchStarted: 'batch.started',
  /** Every instance of a batch finished (ok or failed). */
  batchFinished: 'batch.finished',
  /** The release waits for an operator (approval, trigger, continue). */
  checkpointWaiting: 'checkpoint.waiting',
  /** One instance moved to a new step or status within the release. */
  instanceStep: 'instance.step',
  /** The release was created, with its planned batches. */
  created: 'created',
  /** Atomic: every router fronting the app sends default traffic to the new edition now. */
  switched: 'switched',
} as const;

export type InstanceEventReason = (typeof INSTANCE_EVENTS)[keyof typeof INSTANCE_EVENTS];
export type ReleaseEventReason = (typeof RELEASE_EVENTS)[keyof typeof RELEASE_EVENTS];

/** All CloudEvents `type` values fleetwave emits. */
export const EVENT_TYPES: readonly string[] = [
  ...Object.values(INSTANCE_EVENTS).map((r) => `${TYPE_PREFIX}.instance.${r}`),
  ...Object.values(RELEASE_EVENTS).map((r) => `${TYPE_PREFIX}.release.${r}`),
];

export interface CloudEvent<T = Record<string, unknown>> {
  specversion: '1.0';
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: 'application/json';
  data: T;
}

/** NATS subject tokens may not hold '.', '*', '>' or whitespace. */
export function subjectToken(value: string): string {
  return value.replace(/[.*>\s]/g, '_');
}

export function instanceSubject(app: string, instance: string): string {
  return `${SUBJECT_ROOT}.${subjectToken(app)}.instance.${subjectToken(instance)}`;
}

/** Where agent `agentId` publishes the events of its instance of `app` (NATS permissions allow it only its own). */
export function ingestSubject(app: string, agentId: string): string {
  return `${INGEST_ROOT}.${subjectToken(app)}.instance.${subjectToken(agentId)}`;
}

/** The CloudEvents `source` of an agent's events. */
export function agentSource(agentId: string): string {
  return `fleetwave/agent/${agentId}`;
}

/** What an agent signs: the ingest subject, a newline, the payload bytes. */
export function signedBytes(subject: string, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${subject}\n`, 'utf8'), payload]);
}

export function releaseSubject(app: string, releaseId: string): string {
  return `${SUBJECT_ROOT}.${subjectToken(app)}.release.${subjectToken(releaseId)}`;
}

function cloudEvent(source: string, subject: string, type: string, about: string, data: Record<string, unknown>): { subject: string; event: CloudEvent } {
  return {
    subject,
    event: {
      specversion: '1.0',
      id: randomUUID(),
      source,
      type,
      subject: about,
      time: new Date().toISOString(),
      datacontenttype: 'application/json',
      data,
    },
  };
}

export function instanceEvent(
  source: string,
  app: string,
  instance: string,
  reason: InstanceEventReason,
  data: Record<string, unknown>,
): { subject: string; event: CloudEvent } {
  return cloudEvent(source, instanceSubject(app, instance), `${TYPE_PREFIX}.instance.${reason}`, `${app}/${instance}`, { app, instance, ...data });
}

export function releaseEvent(
  source: string,
  app: string,
  releaseId: string,
  reason: ReleaseEventReason,
  data: Record<string, unknown>,
): { subject: string; event: CloudEvent } {
  return cloudEvent(source, releaseSubject(app, releaseId), `${TYPE_PREFIX}.release.${reason}`, `${app}/${releaseId}`, { app, release: releaseId, ...data });
}
