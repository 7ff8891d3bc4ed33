// Which events each view listens to: the filter of its /events stream (the server applies it) and the test a view
// applies to decide that an event is worth a refetch. A view never asks for drain progress (four events a second per
// draining instance), and only the release page asks for the instances' steps, of its own release.
import { INSTANCE_EVENTS, RELEASE_EVENTS, instanceType, releaseType, type EventFilter } from '../../common/event-types.js';
import type { LiveEvent } from './live.js';

/** Instance changes a tile shows (status, edition, quiesced), without drain progress. */
const INSTANCE_CHANGES = Object.values(INSTANCE_EVENTS).filter((r) => r !== INSTANCE_EVENTS.drainProgress).map(instanceType);
/** A release's own changes, without each instance's steps. */
const RELEASE_CHANGES = Object.values(RELEASE_EVENTS).filter((r) => r !== RELEASE_EVENTS.instanceStep).map(releaseType);
const EDITION_CHANGES = [releaseType(RELEASE_EVENTS.statusChanged), releaseType(RELEASE_EVENTS.switched), instanceType(INSTANCE_EVENTS.started)];

/** The stream of the route `parts` (#/fleet, #/releases, #/releases/<id>, #/editions/<app>). */
export function streamFor(parts: string[]): EventFilter {
  if (parts[0] === 'releases' && parts[1]) return { types: [], app: '', release: parts[1] };
  if (parts[0] === 'releases') return { types: RELEASE_CHANGES, app: '', release: '' };
  if (parts[0] === 'editions') return { types: EDITION_CHANGES, app: parts[1] ?? '', release: '' };
  return { types: [...INSTANCE_CHANGES, releaseType(RELEASE_EVENTS.statusChanged)], app: '', release: '' };
}

export const isFleetChange = (e: LiveEvent): boolean => INSTANCE_CHANGES.includes(e.type) || e.type === releaseType(RELEASE_EVENTS.statusChanged);
export const isReleaseChange = (e: LiveEvent): boolean => RELEASE_CHANGES.includes(e.type);
export const isEditionChange = (e: LiveEvent, app: string): boolean => e.app === app && EDITION_CHANGES.includes(e.type);
