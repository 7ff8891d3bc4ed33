// Back-out: which edition a release replaced, so `fleetwave rollback APP` can release it again.
import type { ReleaseInstanceRecord } from '../domain/records.js';

/** The edition most of the release's instances ran before it (ties: the first in instance order), or "". */
export function previousEdition(instances: readonly ReleaseInstanceRecord[], releasedEdition: string): string {
  const counts = new Map<string, number>();
  for (const i of instances) {
    const from = i.fromEdition ?? '';
    if (from === '' || from === releasedEdition) continue;
    counts.set(from, (counts.get(from) ?? 0) + 1);
  }
  let best = '';
  for (const [edition, count] of counts) if (count > (counts.get(best) ?? 0)) best = edition;
  return best;
}
