// Follows the benchmark's release from the controller's NATS events: its planned batches (`created`) and its end
// (`status.changed` to a final status), with the controller's own times. Costs the controller nothing, where polling
// GetRelease at 10,000 instances would cost it much.
import { connect, type NatsConnection } from 'nats';
import { SUBJECT_ROOT, TYPE_PREFIX, type CloudEvent } from '../../common/events.js';
import { FINAL_RELEASE_STATUSES } from '../../controller/domain/transitions.js';

const STEP_TYPE = `"${TYPE_PREFIX}.release.instance.step"`;
const CREATED = `${TYPE_PREFIX}.release.created`;
const STATUS_CHANGED = `${TYPE_PREFIX}.release.status.changed`;

export class ReleaseWatch {
  /** From `created`: the release, its batches' instances, and when the controller created it (Unix ms). */
  created: { id: string; batches: string[][]; at: number } | undefined;
  /** From the final `status.changed`. */
  ended: { status: string; at: number; message: string } | undefined;
  /** instance.step events seen (one per step start and end, and per instance status change). */
  stepEvents = 0;

  private constructor(private readonly nc: NatsConnection) {}

  static async start(natsUrl: string, app: string): Promise<ReleaseWatch> {
    const watch = new ReleaseWatch(await connect({ servers: natsUrl, name: 'fleetwave-scale-bench' }));
    const decoder = new TextDecoder();
    watch.nc.subscribe(`${SUBJECT_ROOT}.${app}.release.*`, {
      callback: (_err, msg) => {
        const text = decoder.decode(msg.data);
        // The bulk of the events: counted, not parsed.
        if (text.includes(STEP_TYPE)) return void watch.stepEvents++;
        watch.onEvent(JSON.parse(text) as CloudEvent);
      },
    });
    await watch.nc.flush();
    return watch;
  }

  async close(): Promise<void> {
    await this.nc.close().catch(() => {});
  }

  private onEvent(event: CloudEvent): void {
    const data = event.data as { release: string; to?: string; message?: string; batches?: { instances: string[] }[] };
    if (event.type === CREATED) this.created = { id: data.release, batches: (data.batches ?? []).map((b) => b.instances), at: Date.parse(event.time) };
    const final = (FINAL_RELEASE_STATUSES as readonly string[]).includes(data.to ?? '');
    if (event.type === STATUS_CHANGED && final && data.release === this.created?.id) this.ended = { status: data.to!, at: Date.parse(event.time), message: data.message ?? '' };
  }
}
