// What a well-behaved agent does with each command, without apps, gates or disk: the instance it reports afterwards
// and the instance events it publishes on the way (pure; the scale simulator sends them).
//
// The events follow the real handlers (agent/commands/*.ts, agent/drain.ts, agent/supervisor.ts,
// agent/health-probe.ts) for an app with no request in flight:
//   downloadPackage  keeps the edition on disk                                   (no event)
//   quiesce          quiesced; quiesce.started, drained at once (0 in flight)
//   stopApp          stopped (expected)
//   startApp         started
//   restartApp       stop-first: stopped, started; start-first: started, stopped (old process after the switch)
//   hardResetServer  stopped, started
//   healthCheck      healthy; the gate opens (not quiesced any more)
import type { Command, InstanceReport } from '../../proto/gen/fleetwave/v1/agent.js';
import type { InstanceEventReason } from '../../common/events.js';

/** One instance event the command publishes: its reason and data (app and instance are added by the publisher). */
export type SimEvent = [reason: InstanceEventReason, data: Record<string, unknown>];

export interface SimOutcome {
  events: SimEvent[];
  /** RestartApp: the update order used ('' otherwise). */
  updateOrder: string;
  /** '' when the command succeeded. */
  error: string;
}

/** How many editions a simulated host keeps on disk, newest first (the real default keeps a few). */
const KEEP_EDITIONS = 3;
const DEFAULT_DRAIN_MS = 30_000;

/** Applies `command` to `instance` (changed in place) and says what the agent publishes and answers. */
export function simulateCommand(instance: InstanceReport, command: Command, pid: number): SimOutcome {
  const ok = (events: SimEvent[] = [], updateOrder = ''): SimOutcome => ({ events, updateOrder, error: '' });
  if (command.downloadPackage) {
    const edition = command.downloadPackage.edition;
    instance.keptEditions = [edition, ...instance.keptEditions.filter((e) => e !== edition)].slice(0, KEEP_EDITIONS);
    return ok();
  }
  if (command.quiesce) {
    instance.quiesced = true;
    const drainMs = command.quiesce.drainMs || DEFAULT_DRAIN_MS;
    return ok([
      ['quiesce.started', { inFlight: 0, drainMs }],
      ['drained', { inFlight: 0, timedOut: false, elapsedMs: 0, quiesceCommandId: command.commandId }],
    ]);
  }
  if (command.stopApp) {
    const stopped = stoppedEvent(instance.activeEdition);
    instance.processState = 'stopped';
    return ok([stopped]);
  }
  if (command.startApp) return ok([switchTo(instance, command.startApp.edition || instance.activeEdition, pid)]);
  if (command.restartApp) {
    const body = command.restartApp;
    const order = body.updateOrder || body.app?.updateOrder || 'start-first';
    const stopped = stoppedEvent(instance.activeEdition);
    const started = switchTo(instance, body.edition || instance.activeEdition, pid);
    return ok(order === 'start-first' ? [started, stopped] : [stopped, started], order);
  }
  if (command.hardResetServer) {
    const stopped = stoppedEvent(instance.activeEdition);
    return ok([stopped, switchTo(instance, command.hardResetServer.edition || instance.activeEdition, pid)]);
  }
  if (command.healthCheck) {
    instance.quiesced = false;
    return ok([['healthy', { edition: instance.activeEdition, tries: 1, elapsedMs: 0, trigger: 'command' }]]);
  }
  return { events: [], updateOrder: '', error: 'command has no kind this agent knows' };
}

/** The instance now runs `edition`; its `started` event. */
function switchTo(instance: InstanceReport, edition: string, pid: number): SimEvent {
  instance.activeEdition = edition;
  instance.processState = 'running';
  if (!instance.keptEditions.includes(edition)) instance.keptEditions = [edition, ...instance.keptEditions].slice(0, KEEP_EDITIONS);
  return ['started', { edition, pid, trigger: 'command' }];
}

function stoppedEvent(edition: string): SimEvent {
  return ['stopped', { edition, exitCode: 0, signal: null, expected: true, error: '' }];
}

/** True for the commands of an instance's pipeline proper (a download may come long before its batch runs). */
export function isPipelineCommand(command: Command): boolean {
  return command.releaseId !== '' && command.downloadPackage === undefined;
}
