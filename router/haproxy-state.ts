// Reads what haproxy holds for the fronted apps (servers and their states, map entries, rules) in two round trips,
// and checks at attach time that its configuration is one the router can drive.
import { basename } from 'node:path';
import { appBackends, mapFileName } from './names.js';
import type { ActualApp, ActualServer } from './reconcile.js';
import { parseBackendList, parseMapEntries, parseMapList, parseServersState, RuntimeApiError, type RuntimeCommands } from './runtime.js';

/** The Lua script's version this router speaks to (router/fleetwave.lua, `fleetwave version`). */
export const LUA_VERSION = 'fleetwave.lua 1';

export async function readActual(api: RuntimeCommands, apps: readonly string[], slots: number): Promise<Map<string, ActualApp>> {
  const [state, mapList, ...rules] = await api.run(['show servers state', 'show map', ...apps.map((a) => `fleetwave rules show ${a}`)]);
  const files = apps.map((app) => mapFileOf(app, parseMapList(mapList!)));
  const maps = await api.run(files.map((f) => `show map ${f}`));
  const rows = parseServersState(state!);
  const result = new Map<string, ActualApp>();
  apps.forEach((app, i) => {
    const servers = new Map<string, Map<string, ActualServer>>();
    for (const backend of appBackends(app, slots)) servers.set(backend, new Map());
    for (const row of rows) {
      servers.get(row.backend)?.set(row.server, { address: row.address, port: row.port, admin: row.admin });
    }
    result.set(app, { servers, map: parseMapEntries(maps[i]!), mapFile: files[i]!, rules: rules[i]!.trim() });
  });
  return result;
}

/** The reference of `app`'s map on the admin socket: the loaded map file named fw_<app>.map. */
export function mapFileOf(app: string, maps: ReadonlyArray<{ id: string; file: string }>): string {
  const found = maps.find((m) => basename(m.file) === mapFileName(app));
  if (!found) throw new RuntimeApiError(`haproxy has no map ${mapFileName(app)} loaded: its configuration does not front '${app}' (fleetwave router --print-haproxy-config shows one that does)`);
  return found.file;
}

/** Throws one line naming what is missing when haproxy's configuration cannot front `apps` with `slots` slots. */
export async function checkAttachable(api: RuntimeCommands, apps: readonly string[], slots: number): Promise<void> {
  const [backends, mapList, lua] = await api.run(['show backend', 'show map', 'fleetwave version']);
  if (lua!.trim() !== LUA_VERSION) {
    throw new RuntimeApiError(`haproxy at ${api.socketPath} has not loaded ${LUA_VERSION} (it answers "fleetwave version" with "${firstLine(lua!)}"): restart it with the router's configuration`);
  }
  const have = new Set(parseBackendList(backends!));
  for (const app of apps) {
    const missing = appBackends(app, slots).filter((b) => !have.has(b));
    if (missing.length > 0) {
      throw new RuntimeApiError(`haproxy at ${api.socketPath} has no backend ${missing[0]} (${missing.length} missing): its configuration predates --app ${app} or --edition-slots ${slots}; restart it with the router's configuration`);
    }
    mapFileOf(app, parseMapList(mapList!));
  }
}

/** haproxy's pid, from `show info`. */
export async function haproxyPid(api: RuntimeCommands): Promise<number> {
  const info = await api.one('show info');
  const match = /^Pid: (\d+)$/m.exec(info);
  return match ? Number(match[1]) : 0;
}

function firstLine(text: string): string {
  return (text.split('\n')[0] ?? '').slice(0, 100);
}
