// Builds the agent commands of each step (the wire messages), from the release's app, edition and spec.
import { AppSpec, Command } from '../../proto/gen/fleetwave/v1/agent.js';
import type { AppRecord, EditionRecord, StepName } from '../domain/records.js';
import type { CompiledSpec } from '../domain/spec.js';
import type { UpdateOrder } from '../domain/update-order.js';

/** Editions the agent keeps on disk for instant back-out. */
export const KEEP_EDITIONS = 3;

export interface StepCommandInput {
  commandId: string;
  releaseId: string;
  app: AppRecord;
  edition: EditionRecord;
  spec: CompiledSpec;
  deadlineUnixMs: number;
  /** For restart / start during a revert: the edition to go back to. */
  targetEdition?: string;
  /** Restart: the update order the controller asks for (default stop-first). */
  updateOrder?: UpdateOrder;
}

/** The app's spec as the agent runs it; `envOverrides` (a validation clone's) win over the app's env. */
export function appSpec(app: AppRecord, envOverrides: Record<string, string> = {}): AppSpec {
  return {
    name: app.name,
    startCommand: app.startCommand,
    env: { ...app.env, ...envOverrides },
    portEnv: app.portEnv,
    healthPath: app.healthPath,
    stopTimeoutMs: app.stopTimeoutMs,
    drainMode: app.drainMode ?? '',
    quiesceHook: app.quiesceHook ?? '',
    inflightPath: app.inflightPath ?? '',
    updateOrder: app.updateOrder ?? 'stop-first',
    startGraceMs: app.startGraceMs ?? 0,
    healthInitialIntervalMs: app.healthInitialIntervalMs ?? 0,
    holdMs: app.holdMs ?? 0,
  };
}

/** The command a step sends, or null for a step that only waits (drain). */
export function stepCommand(step: StepName, input: StepCommandInput): Command | null {
  const base: Command = {
    commandId: input.commandId,
    app: input.app.name,
    deadlineUnixMs: input.deadlineUnixMs,
    // Set on every delivery from the deadline (see agent-service timeLeft): a stored time left would go stale.
    timeoutMs: 0,
    releaseId: input.releaseId,
  } as Command;
  const edition = input.targetEdition ?? input.edition.name;
  const spec = input.spec;
  // A validation clone's overrides go with its edition only: a revert to the old edition starts it as it was.
  const env = edition === input.edition.name ? spec.env : undefined;
  switch (step) {
    case 'download':
      return {
        ...base,
        downloadPackage: {
          edition: input.edition.name,
          url: input.edition.url,
          sha256: input.edition.sha256,
          size: input.edition.size,
          format: input.edition.format,
          fileName: input.edition.fileName,
          keepEditions: KEEP_EDITIONS,
        },
      };
    case 'quiesce':
      return { ...base, quiesce: { drainMs: spec.drainMs } };
    case 'drain':
      return null;
    case 'restart':
      return { ...base, restartApp: { edition, app: appSpec(input.app, env), updateOrder: input.updateOrder ?? 'stop-first' } };
    case 'hard-reset':
      return { ...base, hardResetServer: { edition, app: appSpec(input.app, env) } };
    case 'start':
      return { ...base, startApp: { edition, app: appSpec(input.app, env) } };
    case 'stop':
      return { ...base, stopApp: {} };
    case 'health':
      return {
        ...base,
        healthCheck: {
          path: spec.health.path || input.app.healthPath,
          expectedStatus: spec.health.expectedStatus,
          retries: spec.health.retries,
          intervalMs: spec.health.intervalMs,
          timeoutMs: spec.health.timeoutMs,
        },
      };
  }
}

/** How long the controller waits for a step before failing it. */
export function stepTimeout(step: StepName, spec: CompiledSpec, order: UpdateOrder = 'stop-first'): number {
  const t = spec.timeouts;
  switch (step) {
    case 'download':
      return t.downloadMs;
    case 'quiesce':
    case 'stop':
      return t.stopMs;
    case 'drain':
      return spec.drainMs;
    case 'restart':
      // Start-first also health-checks the new process and drains the old one before it answers.
      return order === 'start-first' ? t.startMs + t.healthMs + t.stopMs : t.stopMs + t.startMs;
    case 'hard-reset':
      // Stops the old process, then starts the new one.
      return t.stopMs + t.startMs;
    case 'start':
      return t.startMs;
    case 'health':
      return t.healthMs;
  }
}

export function encodeCommand(command: Command): Uint8Array {
  return Command.encode(command).finish();
}

/** The kind of a command, as its step names it. */
export function commandKind(command: Command): string {
  if (command.downloadPackage) return 'DownloadPackage';
  if (command.quiesce) return 'Quiesce';
  if (command.stopApp) return 'StopApp';
  if (command.startApp) return 'StartApp';
  if (command.restartApp) return 'RestartApp';
  if (command.hardResetServer) return 'HardResetServer';
  if (command.healthCheck) return 'HealthCheck';
  if (command.upgradeAgent) return 'UpgradeAgent';
  return 'Unknown';
}
