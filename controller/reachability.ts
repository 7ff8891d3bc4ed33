// Turns an agent becoming unreachable (or reachable again) into one instance event per app it serves.
import { instanceEvent, INSTANCE_EVENTS, type CloudEvent } from '../common/events.js';
import type { ReachabilityChange } from './agent-service.js';

/** Publishes on the instance's own subject, so a dashboard following an instance sees it go and come back. */
export function publishReachability(source: string, change: ReachabilityChange, publish: (subject: string, event: CloudEvent) => void): void {
  const reason = change.reachable ? INSTANCE_EVENTS.reachable : INSTANCE_EVENTS.unreachable;
  const data = {
    reason: change.reason,
    detail: change.detail,
    lastSeen: new Date(change.lastSeenUnixMs).toISOString(),
    ...(change.reachable ? {} : { expected: change.expected }),
  };
  for (const app of change.apps) {
    const { subject, event } = instanceEvent(source, app, change.agentId, reason, data);
    publish(subject, event);
  }
}
