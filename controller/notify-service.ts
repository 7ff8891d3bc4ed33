// The notify RPCs of the admin service (AddNotifier, ListNotifiers, RemoveNotifier); the admin role guards them (auth.ts).
import type { Logger } from '../common/logger.js';
import type { AdminServiceServer, Notifier } from '../proto/gen/fleetwave/v1/admin.js';
import { actorOf, unary } from './admin-service.js';
import type { Notifications } from './notify.js';
import type { NotifierCounts, NotifierRecord } from './store/notifications.js';

export type NotifyHandlers = Pick<AdminServiceServer, 'addNotifier' | 'listNotifiers' | 'removeNotifier'>;

function notifierToProto(n: NotifierRecord & Partial<NotifierCounts>): Notifier {
  return {
    name: n.name,
    kinds: n.kinds,
    url: n.url,
    signed: n.secret !== '',
    createdBy: n.createdBy,
    createdUnixMs: n.createdUnixMs,
    pending: n.pending ?? 0,
    delivered: n.delivered ?? 0,
    dead: n.dead ?? 0,
    lastError: n.lastError ?? '',
  };
}

export function createNotifyHandlers(notifications: Notifications, log: Logger): NotifyHandlers {
  return {
    addNotifier: unary(log, 'AddNotifier', (req, call) =>
      notifierToProto(notifications.add({ name: req.name, kinds: req.kinds, url: req.url, secret: req.secret }, actorOf(call.metadata))),
    ),
    listNotifiers: unary(log, 'ListNotifiers', () => ({ notifiers: notifications.list().map(notifierToProto) })),
    removeNotifier: unary(log, 'RemoveNotifier', (req, call) => notifierToProto(notifications.remove(req.name.trim(), actorOf(call.metadata)))),
  };
}
