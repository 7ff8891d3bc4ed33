// The gate host process for DATA_DIR (spawned detached by the agent): under dist/ through gate-host-main.js, in a
// bundle or single executable as `ARTIFACT __gate-host DATA_DIR`. With an IPC channel it was started by an older gate
// host handing over, and takes its gates before serving.
import { createLogger } from '../common/logger.js';
import { GateHost } from './gate-host.js';
import { gateSocketPath } from './gate-protocol.js';
import { takeOver } from './gate-takeover.js';

export function runGateHost(dataDir: string | undefined): void {
  if (!dataDir) {
    process.stderr.write('usage: gate-host-main.js DATA_DIR\n');
    process.exit(2);
  }
  const logger = createLogger({ name: 'gate-host', level: process.env.FLEETWAVE_GATE_LOG_LEVEL ?? 'info' });
  const host = new GateHost(gateSocketPath(dataDir), dataDir, logger, () => process.exit(0));
  // The agent's signals are not ours: it runs in its own session. SIGTERM (an operator, an uninstall) closes the gates.
  process.on('SIGTERM', () => void host.shutdown('SIGTERM'));
  process.on('SIGINT', () => void host.shutdown('SIGINT'));
  if (process.send) takeOver(host, logger);
  else {
    host.start().catch((err: Error) => {
      logger.error({ err: err.message }, 'gate host could not start');
      process.exit(1);
    });
  }
}
