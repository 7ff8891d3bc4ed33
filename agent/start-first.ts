// A start-first soft reset: the new edition starts beside the old one, and traffic moves only once it is healthy.
//
//   old serving ──spawn new on a fresh port──▶ both alive ──new healthy──▶ gate.setTarget(new)  (one step)
//        ▲                │ new fails to start or stays unhealthy              │
//        │                ▼                                                    ▼
//        └──── new stopped, old never touched (command fails)     old port idle (≤ stop timeout) ──▶ old stopped
//
// Nothing is held at any point: before the switch the old process serves, after it the new one does.
import { freemem } from 'node:os';
import { timeoutSignal } from '../common/abort.js';
import { FleetwaveError } from '../common/errors.js';
import type { Logger } from '../common/logger.js';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import { probeUntilHealthy, type HealthProbeSettings } from './health-probe.js';
import { PORT_ATTEMPTS, type Instance } from './instance.js';
import { AppStartError } from './start-failure.js';
import { isSelfDrained } from './self-drain.js';
import type { AppSupervisor } from './supervisor.js';

export type UpdateOrder = 'start-first' | 'stop-first';

/** The supervisor's own default, for an AppSpec without a stop timeout. */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;
/** A new process that never served a request is not drained: SIGKILL follows SIGTERM soon. */
const NEW_STOP_TIMEOUT_MS = 1000;
/** Most of the command's time the probe leaves for stopping a failed new process and answering with why. */
const ANSWER_RESERVE_MS = 5000;

/** A restart that failed, with the order it ran in (start-first: the old process still serves). */
export class RestartFailedError extends FleetwaveError {
  constructor(
    message: string,
    readonly updateOrder: UpdateOrder,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}

/**
 * The order this restart runs in, with why when it is not the one asked for. Asked: the command's order, else the
 * AppSpec's, else stop-first (an older controller). An app that drains itself owns the service port, and two processes
 * need memory for two: both fall back to stop-first.
 */
export function chooseOrder(asked: string, spec: AppSpec, minFreeMemory: number, free = freemem()): { order: UpdateOrder; reason: string } {
  const wanted = asked || spec.updateOrder || 'stop-first';
  if (wanted !== 'start-first') return { order: 'stop-first', reason: '' };
  if (isSelfDrained(spec)) return { order: 'stop-first', reason: 'the app drains itself on the service port, so two processes cannot share it' };
  if (free < minFreeMemory) {
    return { order: 'stop-first', reason: `host has ${mib(free)} free, below the start-first floor of ${mib(minFreeMemory)}` };
  }
  return { order: 'start-first', reason: '' };
}

export interface StartFirstInput {
  instance: Instance;
  edition: string;
  spec: AppSpec;
  /** Aborts at the command's deadline: the new process must be healthy by then. */
  signal: AbortSignal;
  /** The command's deadline on this host's clock (0: none): the probe ends a little before, so the failure says why. */
  deadline: number;
  logger: Logger;
}

/** Runs the whole start-first restart; resolves once the new edition serves and the old process is gone. */
export async function startFirst({ instance, edition, spec, signal, deadline, logger }: StartFirstInput): Promise<void> {
  const next = await startBeside(instance, edition, spec, logger);
  const port = next.port;
  const log = logger.child({ app: instance.app, edition, port, oldPort: instance.internalPort });
  const health = await probeUntilHealthy(probeTarget(next.supervisor, port), healthSettings(instance, spec), probeSignal(signal, deadline));
  if (!health.healthy) {
    await next.supervisor.stop(NEW_STOP_TIMEOUT_MS);
    instance.retire(next.supervisor);
    throw new RestartFailedError(
      `start-first: edition ${edition} unhealthy after ${health.tries} tries: ${health.error}; it was stopped and the old edition still serves`,
      'start-first',
    );
  }
  await instance.gate.setHealthPath(spec.healthPath);
  const old = await instance.adopt(next.supervisor, edition, spec);
  log.info({ tries: health.tries, ms: health.elapsedMs }, 'start-first: gate switched to the new edition');
  const stopTimeoutMs = spec.stopTimeoutMs || DEFAULT_STOP_TIMEOUT_MS;
  const drained = await instance.gate.idle(old.port, stopTimeoutMs);
  if (!drained) log.warn({ inFlight: instance.gate.inFlightOn(old.port), stopTimeoutMs }, 'start-first: old process still busy after the stop timeout; stopping it');
  await old.supervisor.stop(spec.stopTimeoutMs);
  instance.retire(old.supervisor);
  log.info('start-first: old process drained and stopped');
}

/**
 * Starts the new edition on a fresh internal port beside the old process; answers once it passes its health check or
 * outlived its start grace. A port another process took meanwhile (EADDRINUSE) is retried on another one.
 */
async function startBeside(instance: Instance, edition: string, spec: AppSpec, logger: Logger): Promise<{ supervisor: AppSupervisor; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const reservation = await instance.reservePort();
    const supervisor = instance.newSupervisor(reservation);
    logger.info({ app: instance.app, edition, port: reservation.port, oldPort: instance.internalPort }, 'start-first: starting the new edition beside the old one');
    try {
      const ready = (signal: AbortSignal): Promise<boolean> => instance.startedHealthy(spec, signal, probeTarget(supervisor, reservation.port));
      await supervisor.start(edition, spec, instance.editionDir(edition), ready, { updateOrder: 'start-first' });
      return { supervisor, port: reservation.port };
    } catch (err) {
      await supervisor.stop(NEW_STOP_TIMEOUT_MS);
      instance.retire(supervisor);
      if (err instanceof AppStartError && err.portTaken && attempt < PORT_ATTEMPTS) continue;
      throw new RestartFailedError(`start-first: ${(err as Error).message}; the old edition still serves`, 'start-first', err);
    }
  }
}

/** The new process, probed on its own port; a process that died ends the probe at once instead of at the deadline. */
function probeTarget(supervisor: AppSupervisor, port: number): { appPort: number; supervisor: { state: string } } {
  return { appPort: port, supervisor: { get state() { return supervisor.state === 'failed' ? 'stopped' : supervisor.state; } } };
}

/** The command's signal, ending a reserve earlier than its deadline (a third of the time left, at most 5 s: enough to stop the new process and answer, on a busy host too). */
function probeSignal(signal: AbortSignal, deadline: number): AbortSignal {
  if (deadline <= 0) return signal;
  const left = deadline - Date.now();
  return timeoutSignal(signal, Math.floor(left - Math.min(ANSWER_RESERVE_MS, left / 3)));
}

/** As the last HealthCheck probed (else the app's health path, 200), until the command's deadline. */
function healthSettings(instance: Instance, spec: AppSpec): HealthProbeSettings {
  const last = instance.healthSettings;
  return {
    path: last?.path || spec.healthPath || '/healthz',
    expectedStatus: last?.expectedStatus || 200,
    retries: 0,
    intervalMs: last?.intervalMs || 0,
    timeoutMs: last?.timeoutMs || 0,
    initialIntervalMs: spec.healthInitialIntervalMs || 0,
  };
}

function mib(bytes: number): string {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}
