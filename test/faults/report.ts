// One row of the faults table per fault: written by each suite, printed by `make faults` (test/faults/run.mjs).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface FaultRow {
  fault: string;
  trials: number;
  /** Releases that reached the end the fault allows (Released; or the failure policy's end when an agent never comes back). */
  releasesCompleted: number;
  releases: number;
  /** Handler runs beyond one (agents that stayed up) or beyond two (an agent that died mid-command), plus commands enqueued twice for a step. */
  duplicateExecutions: number;
  /** A command begun a second time after its agent died mid-command: the one retry the design allows. */
  rerunsAfterAgentDeath: number;
  wrongEditions: number;
  eventsLost: number;
  /** Forged or stolen inputs the fleet believed (rows of the trust faults only). */
  accepted?: number;
  notes: string;
}

/** Writes the row where `make faults` collects them (FLEETWAVE_FAULTS_REPORT); a plain `make test` only asserts. */
export function reportFault(row: FaultRow): void {
  const dir = process.env.FLEETWAVE_FAULTS_REPORT;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${row.fault.replace(/[^a-z0-9]+/gi, '-').toLowerCase()}.json`), JSON.stringify(row));
}
