// The names the router gives HAProxy objects: one frontend per app, K edition-slot backends, the mixed backend and the
// last-resort backend, one map file per app. The config generator and the reconciler both take names from here.

/** The map key whose value is the backend requests no rule matched go to. */
export const DEFAULT_KEY = '__default';
/** Present in the map (value "1") while the app has rules: without it the frontend skips the Lua action altogether. */
export const RULES_KEY = '__rules';

export function frontendName(app: string): string {
  return `fw_${app}`;
}

/** Backend of edition slot `slot` (0-based) of `app`. */
export function slotBackend(app: string, slot: number): string {
  return `fw_${app}_e${slot}`;
}

/** Instances of the app's default editions: where default traffic goes while two editions share it. */
export function mixBackend(app: string): string {
  return `fw_${app}_mix`;
}

/** Every instance in its own state: where a request goes when its backend has no usable server left. */
export function anyBackend(app: string): string {
  return `fw_${app}_any`;
}

/** Every backend of `app`, slots first. */
export function appBackends(app: string, slots: number): string[] {
  return [...Array.from({ length: slots }, (_, i) => slotBackend(app, i)), mixBackend(app), anyBackend(app)];
}

/** The map file's name (its directory is the run dir, or wherever the operator's config keeps it). */
export function mapFileName(app: string): string {
  return `fw_${app}.map`;
}

/** The slot number of `backend` when it is one of `app`'s slot backends, else undefined. */
export function slotOf(app: string, backend: string): number | undefined {
  const prefix = `fw_${app}_e`;
  if (!backend.startsWith(prefix)) return undefined;
  const rest = backend.slice(prefix.length);
  return /^\d+$/.test(rest) ? Number(rest) : undefined;
}

/** The cookie a percent rule's sticky bucket is kept in. */
export function stickyCookie(app: string): string {
  return `fw_${app}`;
}

/**
 * HAProxy accepts letters, digits, '-', '_', '.' and ':' in proxy and server names; fleetwave's app names and agent
 * ids (common/names.ts, agent --id) are a subset, so names pass through unchanged and read back as they went in.
 */
export function isHaproxyName(name: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._:-]*$/.test(name);
}
