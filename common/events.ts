// Every event fleetwave publishes: its reason, NATS subject, CloudEvents type and data.
// Nothing else in the code invents subject strings; docs/events.md documents each
// entry of EVENT_TYPES, and a test checks the two agree.
import { randomUUID } from 'node:crypto';
import { instanceType, releaseType, type InstanceEventReason, type ReleaseEventReason } from './event-types.js';

export * from './event-types.js';

export const SUBJECT_ROOT = 'fleetwave.events';
export const STREAM_NAME = 'FLEETWAVE_EVENTS';
/** CloudEvents `source` of everything the controller publishes. */
export const CONTROLLER_SOURCE = 'fleetwave/controller';
/** Agents publish instance events only here; the controller validates them and republishes under SUBJECT_ROOT (docs/events.md). */
export const INGEST_ROOT = 'fleetwave.ingest';
/** Work queue of ingest subjects the controller consumes, so events published while it is down are checked when it is back. */
export const INGEST_STREAM_NAME = 'FLEETWAVE_INGEST';
/** NATS header with the agent's Ed25519 signature (base64) over signedBytes(subject, payload). */
export const SIGNATURE_HEADER = 'Fleetwave-Signature';

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
  return cloudEvent(source, instanceSubject(app, instance), instanceType(reason), `${app}/${instance}`, { app, instance, ...data });
}

export function releaseEvent(
  source: string,
  app: string,
  releaseId: string,
  reason: ReleaseEventReason,
  data: Record<string, unknown>,
): { subject: string; event: CloudEvent } {
  return cloudEvent(source, releaseSubject(app, releaseId), releaseType(reason), `${app}/${releaseId}`, { app, release: releaseId, ...data });
}
