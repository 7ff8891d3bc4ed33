// Lets an instance in again that its agent brings back quiesced when no release will: the agent keeps an instance
// quiesced across its own restarts until a HealthCheck passes, and a release step that timed out while the agent was
// away (the instance `unreachable`, the release over) would never send one. The controller sends it on the agent's
// Hello; a passing check opens the gate, a failing one leaves it shut (503 on health), as it should.
import type { Command, CommandResult, Hello } from '../proto/gen/fleetwave/v1/agent.js';
import type { Store } from './store/store.js';

const PREFIX = 'unquiesce-';
/** Long enough for an app the restarted agent is still starting. */
const TIMEOUT_MS = 60_000;

/** HealthChecks for the quiesced instances of `hello` that no active release will act on. */
export function unquiesceCommands(store: Store, hello: Hello, now: number): Command[] {
  return hello.instances
    .filter((i) => i.quiesced && !store.releaseWillAct(i.app, hello.agentId))
    .map((i) => ({
      commandId: `${PREFIX}${i.app}-${now}`,
      app: i.app,
      deadlineUnixMs: now + TIMEOUT_MS,
      timeoutMs: TIMEOUT_MS,
      releaseId: '',
      // Zero values: the app's health path, status 200, retries until the deadline.
      healthCheck: { path: '', expectedStatus: 0, retries: 0, intervalMs: 0, timeoutMs: 0 },
    }));
}

/** Records the answer to an un-quiesce; false for any other command's result. */
export function recordUnquiesceResult(store: Store, agentId: string, result: CommandResult, now: number): boolean {
  if (!result.commandId.startsWith(PREFIX)) return false;
  if (result.instance) store.updateInstanceReport(result.instance.app, agentId, result.instance, now);
  return true;
}
