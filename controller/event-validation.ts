// Decides whether an instance event an agent published on its ingest subject may be believed (pure; no I/O).
//
// An event counts only when every name in it agrees: the subject's app and instance tokens, data.app and
// data.instance, the CloudEvents `subject` (app/instance) and `source` (fleetwave/agent/<instance>), the instance
// is an agent the controller knows, and the signature verifies with the key that agent gave over its
// authenticated gRPC session. Anything else is refused with one of the reasons below (docs/events.md).
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { agentSource, CONTROLLER_INSTANCE_EVENTS, EVENT_TYPES, INGEST_ROOT, signedBytes, subjectToken, TYPE_PREFIX, instanceType, type CloudEvent } from '../common/events.js';

/** Larger than any event an agent sends (a few hundred bytes), small enough that a flood costs little. */
export const MAX_EVENT_BYTES = 16 * 1024;

export const REJECT_REASONS = [
  'too_large',
  'bad_subject',
  'not_json',
  'not_cloudevent',
  'unknown_type',
  'mismatch',
  'unknown_agent',
  'no_key',
  'unsigned',
  'bad_signature',
] as const;
export type RejectReason = (typeof REJECT_REASONS)[number];

export interface IngestMessage {
  subject: string;
  payload: Uint8Array;
  /** The Fleetwave-Signature header, if any. */
  signature?: string;
}

export interface ValidationContext {
  /** Secure mode: every event must be signed. Otherwise an agent without a key may send unsigned events. */
  requireSignature: boolean;
  /** The agent's event key (base64 SPKI DER; '' when it has none); undefined for an agent never seen. */
  agentKey: (agentId: string) => string | undefined;
}

export type Validation =
  | { ok: true; event: CloudEvent; app: string; instance: string }
  | { ok: false; reason: RejectReason; detail: string };

// Instance events an agent may publish: the controller's own (unreachable, reachable) are never taken from an agent.
const CONTROLLER_ONLY = new Set(CONTROLLER_INSTANCE_EVENTS.map(instanceType));
const INSTANCE_TYPES = new Set(EVENT_TYPES.filter((t) => t.startsWith(`${TYPE_PREFIX}.instance.`) && !CONTROLLER_ONLY.has(t)));
const SUBJECT = new RegExp(`^${INGEST_ROOT.replace(/\./g, '\\.')}\\.([^.]+)\\.instance\\.([^.]+)$`);
const NAME = z.string().min(1).max(256);

/** CloudEvents 1.0 as fleetwave's agents write it; unknown attributes are refused so nothing rides along unchecked. */
const CLOUD_EVENT = z
  .object({
    specversion: z.literal('1.0'),
    id: z.string().min(1).max(128),
    source: NAME,
    type: NAME,
    subject: z.string().min(1).max(520),
    time: z.string().max(64).refine((t) => !Number.isNaN(Date.parse(t)), 'not a time'),
    datacontenttype: z.literal('application/json'),
    data: z.record(z.string(), z.unknown()).and(z.object({ app: NAME, instance: NAME })),
  })
  .strict();

const decoder = new TextDecoder('utf-8', { fatal: true });
/** Parsed keys by their base64 text: parsing is dearer than verifying, and keys rarely change. */
const keyCache = new Map<string, KeyObject>();

export function validateIngest(message: IngestMessage, context: ValidationContext): Validation {
  const checked = precheck(message, context);
  if (!('verify' in checked)) return checked;
  const { verify: v, accept } = checked;
  let ok = false;
  try {
    ok = verify(null, v.data, v.key, v.signature);
  } catch {
    ok = false;
  }
  return ok ? accept : refusal('bad_signature', v.instance);
}

/**
 * The same verdict, with the signature checked on libuv's thread pool: at fleet scale the Ed25519 checks are most of
 * the controller's work per event, and off the event loop they neither delay keepalives nor wait for one another.
 */
export function validateIngestAsync(message: IngestMessage, context: ValidationContext): Promise<Validation> {
  const checked = precheck(message, context);
  if (!('verify' in checked)) return Promise.resolve(checked);
  const { verify: v, accept } = checked;
  return new Promise((resolve) => {
    try {
      verify(null, v.data, v.key, v.signature, (err, ok) => resolve(!err && ok ? accept : refusal('bad_signature', v.instance)));
    } catch {
      resolve(refusal('bad_signature', v.instance));
    }
  });
}

interface PendingSignature {
  verify: { data: Buffer; key: KeyObject; signature: Buffer; instance: string };
  /** The verdict once the signature verifies. */
  accept: Validation;
}

/** Every check but the signature's arithmetic: a verdict, or what to verify before accepting. */
function precheck(message: IngestMessage, context: ValidationContext): Validation | PendingSignature {
  const refuse = (reason: RejectReason, detail: string): Validation => ({ ok: false, reason, detail });
  if (message.payload.length > MAX_EVENT_BYTES) return refuse('too_large', `${message.payload.length} bytes (limit ${MAX_EVENT_BYTES})`);
  const tokens = SUBJECT.exec(message.subject);
  if (!tokens) return refuse('bad_subject', message.subject);
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(message.payload));
  } catch {
    return refuse('not_json', 'payload is not UTF-8 JSON');
  }
  const parsed = CLOUD_EVENT.safeParse(json);
  if (!parsed.success) return refuse('not_cloudevent', parsed.error.issues.map((i) => `${i.path.join('.') || 'event'}: ${i.message}`).join('; ').slice(0, 200));
  const event = parsed.data as CloudEvent<{ app: string; instance: string } & Record<string, unknown>>;
  if (!INSTANCE_TYPES.has(event.type)) return refuse('unknown_type', event.type);
  const { app, instance } = event.data;
  const agrees =
    subjectToken(app) === tokens[1] &&
    subjectToken(instance) === tokens[2] &&
    event.subject === `${app}/${instance}` &&
    event.source === agentSource(instance);
  if (!agrees) return refuse('mismatch', `subject ${message.subject}, source ${event.source}, about ${event.subject}, data ${app}/${instance}`);
  const key = context.agentKey(instance);
  if (key === undefined) return refuse('unknown_agent', instance);
  const accept: Validation = { ok: true, event, app, instance };
  // A present signature is always checked. With a key on file the agent always signs, so an unsigned event naming it
  // is forged even in insecure mode; without one only insecure mode lets it through.
  if (!key) return context.requireSignature || message.signature ? refusal('no_key', instance) : accept;
  if (!message.signature) return refusal('unsigned', instance);
  let publicKeyObject: KeyObject;
  try {
    publicKeyObject = publicKey(key);
  } catch {
    return refusal('bad_signature', instance);
  }
  return { verify: { data: signedBytes(message.subject, message.payload), key: publicKeyObject, signature: Buffer.from(message.signature, 'base64'), instance }, accept };
}

function refusal(reason: keyof typeof SIGNATURE_PROBLEMS, instance: string): Validation {
  return { ok: false, reason, detail: `${instance}: ${SIGNATURE_PROBLEMS[reason]}` };
}

const SIGNATURE_PROBLEMS = {
  no_key: 'the agent has no event key on file (revoked, or it never sent one)',
  unsigned: 'the event carries no signature',
  bad_signature: 'the signature does not verify',
} as const;

function publicKey(base64: string): KeyObject {
  let key = keyCache.get(base64);
  if (!key) {
    key = parsePublicKey(Buffer.from(base64, 'base64'));
    if (keyCache.size >= 20_000) keyCache.clear();
    keyCache.set(base64, key);
  }
  return key;
}

/** The DER header of every Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * An Ed25519 key (what agents send) is imported from its 32 raw bytes as a JWK: about 8× cheaper than OpenSSL's DER
 * decoder, which costs more than a verification here. Anything else goes through the decoder.
 */
function parsePublicKey(der: Buffer): KeyObject {
  if (der.length === ED25519_SPKI_PREFIX.length + 32 && der.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)) {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: der.subarray(ED25519_SPKI_PREFIX.length).toString('base64url') }, format: 'jwk' });
  }
  return createPublicKey({ key: der, format: 'der', type: 'spki' });
}
