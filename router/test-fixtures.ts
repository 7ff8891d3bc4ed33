// Fixture factories for the router's unit tests: routes, routed instances, app views and routing updates.
import type { AppRouting, Route, RoutedInstance, RoutingUpdate } from '../proto/gen/fleetwave/v1/admin.js';
import type { AppView, RoutedServer } from './desired.js';

export function route(fields: Partial<Route> & Pick<Route, 'kind' | 'edition'>): Route {
  return { id: `r-${fields.kind}-${fields.edition}`, app: 'shop', name: '', value: '', percent: 0, priority: 0, createdUnixMs: 0, createdBy: 'test', ...fields };
}

export function server(instance: string, edition: string, fields: Partial<RoutedServer> = {}): RoutedServer {
  return { instance, address: '10.0.0.1', port: 8080, edition, state: 'ready', held: false, ...fields };
}

export function view(instances: RoutedServer[], fields: Partial<AppView> = {}): AppView {
  return { app: 'shop', defaultEditions: ['1.0'], routes: [], instances, ...fields };
}

export function routed(instance: string, edition: string, fields: Partial<RoutedInstance> = {}): RoutedInstance {
  return { app: 'shop', instance, group: 'default', address: '127.0.0.1', port: 8080, edition, state: 'ready', held: false, removed: false, ...fields };
}

export function appRouting(instances: RoutedInstance[], fields: Partial<AppRouting> = {}): AppRouting {
  return { app: 'shop', defaultEditions: ['1.0'], routes: [], healthPath: '/healthz', instances, ...fields };
}

export function update(version: number, fields: Partial<RoutingUpdate> = {}): RoutingUpdate {
  return { version, full: false, apps: [], instances: [], ...fields };
}
