// The event kinds a notifier may name (`notify add --on`), and the kinds one CloudEvent is; docs/notifications.md lists them.
import { BadInputError } from './errors.js';
import { RELEASE_STATUSES } from '../controller/domain/transitions.js';
import { INSTANCE_EVENTS, RELEASE_EVENTS, TYPE_PREFIX, type CloudEvent } from './events.js';

const RELEASE_TYPE = `${TYPE_PREFIX}.release.`;
const INSTANCE_TYPE = `${TYPE_PREFIX}.instance.`;

/** A release status as a kind: 'Release failed' → release.failed, 'Rolled back' → release.rolled-back. */
export function statusKind(status: string): string {
  const words = status.toLowerCase().split(/\s+/);
  // 'Release failed' and 'Released' read better without the repeated word.
  if (words[0] === 'release' && words.length > 1) words.shift();
  return `release.${words.join('-')}`;
}

/** Every kind `--on` accepts: release event reasons, release status shortcuts, instance event reasons. */
export const NOTIFY_KINDS: readonly string[] = [
  ...Object.values(RELEASE_EVENTS),
  ...RELEASE_STATUSES.map(statusKind),
  ...Object.values(INSTANCE_EVENTS).map((r) => `instance.${r}`),
];

const KNOWN = new Set(NOTIFY_KINDS);

/** The kinds in `text` (comma-separated), checked; throws one line naming the first unknown one. */
export function parseKinds(values: readonly string[], flag = '--on'): string[] {
  const kinds = [...new Set(values.flatMap((v) => v.split(',')).map((k) => k.trim()).filter(Boolean))];
  if (kinds.length === 0) throw new BadInputError(`${flag}: name at least one event kind (${NOTIFY_KINDS.slice(0, 3).join(', ')}, ...)`);
  const unknown = kinds.find((k) => !KNOWN.has(k));
  if (unknown) throw new BadInputError(`${flag}: unknown event kind '${unknown}'; known: ${NOTIFY_KINDS.join(', ')}`);
  return kinds;
}

/** The kinds one event is: its reason, and for a status change also the status it moved to. */
export function kindsOf(event: Pick<CloudEvent, 'type' | 'data'>): string[] {
  if (event.type.startsWith(RELEASE_TYPE)) {
    const reason = event.type.slice(RELEASE_TYPE.length);
    if (reason === RELEASE_EVENTS.statusChanged && typeof event.data?.to === 'string') return [reason, statusKind(event.data.to)];
    return [reason];
  }
  if (event.type.startsWith(INSTANCE_TYPE)) return [`instance.${event.type.slice(INSTANCE_TYPE.length)}`];
  return [];
}
