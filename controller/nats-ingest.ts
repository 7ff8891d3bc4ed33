// Where the controller reads the agents' instance events: their ingest subjects, through a durable JetStream work
// queue when the server has JetStream (events published while the controller is down wait for it), core NATS otherwise.
//
//   agent ──fleetwave.ingest.<app>.instance.<id>──▶ FLEETWAVE_INGEST (work queue) ──▶ controller: validate ──▶ fleetwave.events.… (FLEETWAVE_EVENTS, SSE)
//                                                                                                  └─ refused: counted, logged (rate-limited)
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  ErrorCode,
  nanos,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type NatsConnection,
  type MsgHdrs,
} from 'nats';
import { INGEST_ROOT, INGEST_STREAM_NAME, SIGNATURE_HEADER } from '../common/events.js';
import type { Logger } from '../common/logger.js';
import type { IngestMessage, RejectReason } from './event-validation.js';

export const INGEST_SUBJECTS = `${INGEST_ROOT}.*.instance.*`;
const DURABLE = 'fleetwave-controller';
/** Unchecked events are worth little after an hour, and the queue must not grow without bound while no controller reads it. */
const INGEST_MAX_AGE_MS = 3600_000;
const INGEST_MAX_MSG_BYTES = 64 * 1024;
/** A message a killed controller had taken comes back to its successor this soon (acks normally take milliseconds). */
const ACK_WAIT_MS = 5_000;
const WARN_EVERY_MS = 10_000;
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 10_000;

/**
 * Starts reading ingest subjects; returns how to stop. Never throws: without JetStream it falls back to core NATS.
 * `handle` calls `done` once the message may be forgotten: at once when refused, once republished and confirmed when
 * believed, so a controller killed in between gets it again (the published copy keeps its id: duplicates are dropped).
 *
 * A JetStream that is there but slow to answer (a loaded host, a server still recovering its streams) is asked
 * again rather than given up for live reading: live reading would skip what waits in the queue, the events agents
 * published while no controller read them.
 */
export async function consumeIngest(nc: NatsConnection, log: Logger, handle: (m: IngestMessage, done: () => void) => void): Promise<() => void> {
  for (let delayMs = RETRY_MIN_MS; ; delayMs = Math.min(RETRY_MAX_MS, delayMs * 2)) {
    try {
      return await consumeQueue(nc, handle);
    } catch (err) {
      if (nc.isClosed()) return () => {};
      if (!isTransient(err)) return consumeLive(nc, log, handle, err);
      log.warn({ err: (err as Error).message, retryInMs: delayMs }, 'jetstream ingest queue did not answer; asking again');
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

async function consumeQueue(nc: NatsConnection, handle: (m: IngestMessage, done: () => void) => void): Promise<() => void> {
  const jsm = await nc.jetstreamManager({ timeout: 5_000 });
  await ensureIngestQueue(jsm);
  const consumer = await nc.jetstream().consumers.get(INGEST_STREAM_NAME, DURABLE);
  const messages = await consumer.consume({
    callback: (m) => {
      handle({ subject: m.subject, payload: m.data, signature: signatureOf(m.headers) }, () => {
        try {
          m.ack();
        } catch {
          // Disconnected: the queue delivers it again after the ack wait.
        }
      });
    },
  });
  return once(() => void messages.close().catch(() => {}));
}

/** A server without JetStream: agents' events are read as they come (none kept while the controller is away). */
function consumeLive(nc: NatsConnection, log: Logger, handle: (m: IngestMessage, done: () => void) => void, why: unknown): () => void {
  log.warn({ err: (why as Error).message }, 'jetstream ingest queue unavailable; reading agent events live only');
  const sub = nc.subscribe(INGEST_SUBJECTS, {
    callback: (subErr, msg) => {
      if (subErr) return log.warn({ err: subErr.message }, 'nats ingest subscription error');
      handle({ subject: msg.subject, payload: msg.data, signature: signatureOf(msg.headers) }, () => {});
    },
  });
  return once(() => sub.unsubscribe());
}

/** A timeout says JetStream is slow, not absent (absent answers at once: no responders, or "not enabled"). */
function isTransient(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  return code === ErrorCode.Timeout || /timeout/i.test((err as Error).message ?? '');
}

/** Stopping is asked for both by stop() and by the connection closing. */
function once(stop: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    stop();
  };
}

function signatureOf(headers: MsgHdrs | undefined): string | undefined {
  return headers?.get(SIGNATURE_HEADER) || undefined;
}

async function ensureIngestQueue(jsm: JetStreamManager): Promise<void> {
  try {
    await jsm.streams.info(INGEST_STREAM_NAME);
  } catch {
    await jsm.streams.add({
      name: INGEST_STREAM_NAME,
      subjects: [`${INGEST_ROOT}.>`],
      retention: RetentionPolicy.Workqueue,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(INGEST_MAX_AGE_MS),
      max_msg_size: INGEST_MAX_MSG_BYTES,
    });
  }
  try {
    await jsm.consumers.info(INGEST_STREAM_NAME, DURABLE);
  } catch {
    await jsm.consumers.add(INGEST_STREAM_NAME, { durable_name: DURABLE, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: nanos(ACK_WAIT_MS) });
  }
}

/** One warn line per reason per 10 s, saying how many were refused since the last one (a flood must not flood the log). */
export class RejectionLog {
  private readonly last = new Map<RejectReason, { at: number; quiet: number }>();
  constructor(
    private readonly log: Logger,
    private readonly now: () => number = () => Date.now(),
  ) {}

  refused(reason: RejectReason, subject: string, detail: string): void {
    const entry = this.last.get(reason);
    const now = this.now();
    if (entry && now - entry.at < WARN_EVERY_MS) {
      entry.quiet++;
      return;
    }
    this.log.warn({ reason, subject, detail, alsoRefused: entry?.quiet ?? 0 }, 'instance event refused');
    this.last.set(reason, { at: now, quiet: 0 });
  }
}
