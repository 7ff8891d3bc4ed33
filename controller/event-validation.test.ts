// The ingest validator: what an agent honestly sends passes; every way of speaking for someone else, or of smuggling
// something that is not an instance event, is refused with its reason.
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { agentSource, ingestSubject, instanceEvent, releaseEvent, signedBytes } from '../common/events.js';
import { MAX_EVENT_BYTES, validateIngest, validateIngestAsync, type IngestMessage, type ValidationContext } from './event-validation.js';

function keyPair(): { privateKey: KeyObject; base64: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { privateKey, base64: publicKey.export({ type: 'spki', format: 'der' }).toString('base64') };
}

const a1 = keyPair();
const a2 = keyPair();
const keys: Record<string, string> = { a1: a1.base64, a2: a2.base64, old: '' };
const secure: ValidationContext = { requireSignature: true, agentKey: (id) => keys[id] };
const insecure: ValidationContext = { ...secure, requireSignature: false };
const encode = (value: unknown) => new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));

/** What the agent `by` would publish on `subject` (by default its own) about `about`. */
function message(o: { by?: KeyObject | null; subject?: string; event?: unknown; about?: string } = {}): IngestMessage {
  const about = o.about ?? 'a1';
  const event = o.event ?? instanceEvent(agentSource(about), 'shop', about, 'drained', { inFlight: 0 }).event;
  const subject = o.subject ?? ingestSubject('shop', about);
  const payload = encode(event);
  const by = o.by === undefined ? a1.privateKey : o.by;
  return { subject, payload, signature: by ? sign(null, signedBytes(subject, payload), by).toString('base64') : undefined };
}

const reason = (m: IngestMessage, context = secure) => {
  const verdict = validateIngest(m, context);
  return verdict.ok ? 'ok' : verdict.reason;
};

describe('validateIngest', () => {
  it('believes a signed instance event whose subject, source, subject attribute and data agree', () => {
    const verdict = validateIngest(message(), secure);
    expect(verdict).toMatchObject({ ok: true, app: 'shop', instance: 'a1', event: { type: 'io.fleetwave.instance.drained', data: { inFlight: 0 } } });
  });

  it('refuses a2 speaking for a1, whichever name it bends', () => {
    const forged = instanceEvent(agentSource('a1'), 'shop', 'a1', 'drained', { inFlight: 0 }).event;
    // On its own subject, naming a1 in the data, source and subject attribute.
    expect(reason(message({ by: a2.privateKey, subject: ingestSubject('shop', 'a2'), event: forged }))).toBe('mismatch');
    // On its own subject with its own source, naming a1 in the data only.
    const dataOnly = { ...instanceEvent(agentSource('a2'), 'shop', 'a2', 'drained', {}).event, data: { app: 'shop', instance: 'a1' } };
    expect(reason(message({ by: a2.privateKey, subject: ingestSubject('shop', 'a2'), event: dataOnly }))).toBe('mismatch');
    // Everything says a1, but a2 signed it (NATS let it publish on a1's subject: no auth, or a wide permission).
    expect(reason(message({ by: a2.privateKey }))).toBe('bad_signature');
    // Another app's subject.
    expect(reason(message({ subject: ingestSubject('cart', 'a1') }))).toBe('mismatch');
    // The controller's source.
    const asController = { ...instanceEvent('fleetwave/controller', 'shop', 'a1', 'drained', {}).event };
    expect(reason(message({ event: asController }))).toBe('mismatch');
  });

  it('refuses what is not an instance event: release events, other JSON, other bytes, unknown attributes, wrong subjects', () => {
    const release = releaseEvent('fleetwave/controller', 'shop', 'r-1', 'status.changed', { to: 'Released' }).event;
    expect(reason(message({ event: { ...release, data: { ...release.data, instance: 'a1' } } }))).toBe('unknown_type');
    expect(reason(message({ event: { html: '<script>alert(1)</script>' } }))).toBe('not_cloudevent');
    expect(reason(message({ event: 'not json <script>' }))).toBe('not_json');
    expect(reason({ ...message(), payload: new Uint8Array([0xff, 0xfe, 0x7b]) })).toBe('not_json');
    const honest = instanceEvent(agentSource('a1'), 'shop', 'a1', 'drained', {}).event;
    expect(reason(message({ event: { ...honest, extra: '<script>' } }))).toBe('not_cloudevent');
    expect(reason(message({ event: { ...honest, specversion: '0.3' } }))).toBe('not_cloudevent');
    expect(reason(message({ event: { ...honest, time: 'yesterday' } }))).toBe('not_cloudevent');
    expect(reason(message({ event: { ...honest, data: 'drained' } }))).toBe('not_cloudevent');
    expect(reason(message({ event: { ...honest, type: 'io.fleetwave.instance.owned' } }))).toBe('unknown_type');
    expect(reason(message({ subject: 'fleetwave.events.shop.instance.a1' }))).toBe('bad_subject');
    expect(reason(message({ subject: 'fleetwave.ingest.shop.instance.a1.more' }))).toBe('bad_subject');
  });

  it('bounds the size', () => {
    const big = instanceEvent(agentSource('a1'), 'shop', 'a1', 'started', { pad: 'x'.repeat(MAX_EVENT_BYTES) }).event;
    expect(reason(message({ event: big }))).toBe('too_large');
  });

  it('refuses unknown agents, and agents without a key in secure mode (revoked)', () => {
    const ghost = instanceEvent(agentSource('ghost'), 'shop', 'ghost', 'drained', {}).event;
    expect(reason(message({ about: 'ghost', event: ghost }))).toBe('unknown_agent');
    const old = instanceEvent(agentSource('old'), 'shop', 'old', 'started', {}).event;
    expect(reason(message({ about: 'old', event: old, by: null }))).toBe('no_key');
    expect(reason(message({ about: 'old', event: old, by: a1.privateKey }))).toBe('no_key');
  });

  it('in secure mode wants a signature; in insecure mode lets only an agent without a key go unsigned', () => {
    expect(reason(message({ by: null }))).toBe('unsigned');
    expect(reason(message({ by: null }), insecure)).toBe('unsigned');
    expect(reason(message({ by: a2.privateKey }), insecure)).toBe('bad_signature');
    const old = instanceEvent(agentSource('old'), 'shop', 'old', 'started', {}).event;
    expect(reason(message({ about: 'old', event: old, by: null }), insecure)).toBe('ok');
    expect(reason({ ...message(), signature: 'not base64 at all!' })).toBe('bad_signature');
  });

  it('matches names made safe for subjects (dots in an app name) against the unchanged names in the event', () => {
    const event = instanceEvent(agentSource('a1'), 'shop.eu', 'a1', 'healthy', {}).event;
    expect(ingestSubject('shop.eu', 'a1')).toBe('fleetwave.ingest.shop_eu.instance.a1');
    expect(reason(message({ event, subject: ingestSubject('shop.eu', 'a1') }))).toBe('ok');
  });
});

describe('validateIngestAsync (signatures on the thread pool)', () => {
  it('gives the same verdict as validateIngest, forged or honest, secure or not', async () => {
    const forged = instanceEvent(agentSource('a1'), 'shop', 'a1', 'drained', { inFlight: 0 }).event;
    const cases: Array<[IngestMessage, ValidationContext]> = [
      [message(), secure],
      [message({ by: a2.privateKey }), secure],
      [message({ by: a2.privateKey, subject: ingestSubject('shop', 'a2'), event: forged }), secure],
      [message({ by: null }), secure],
      [message({ by: null }), insecure],
      [{ ...message(), signature: 'bm90IGEgc2lnbmF0dXJl' }, secure],
      [message({ about: 'old', event: instanceEvent(agentSource('old'), 'shop', 'old', 'drained', {}).event, by: null }), insecure],
      [message({ about: 'old', event: instanceEvent(agentSource('old'), 'shop', 'old', 'drained', {}).event, by: null }), secure],
    ];
    const sync = cases.map(([m, c]) => validateIngest(m, c));
    const async = await Promise.all(cases.map(([m, c]) => validateIngestAsync(m, c)));
    expect(async).toEqual(sync);
    expect(sync.map((v) => (v.ok ? 'ok' : v.reason))).toEqual(['ok', 'bad_signature', 'mismatch', 'unsigned', 'unsigned', 'bad_signature', 'ok', 'no_key']);
  });
});
