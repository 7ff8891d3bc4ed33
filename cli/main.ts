#!/usr/bin/env node
// The `fleetwave` executable: the daemons (controller, agent, router) and the admin verbs. No top-level await: the
// bundle (deploy/dist/bundle.ts) is CommonJS.
import { registerAgentCommand } from '../agent/cli.js';
import { GATE_HOST_MODE } from '../common/artifact.js';
import { registerControllerCommand } from '../controller/cli.js';
import { registerRouterCommand } from '../router/cli.js';
import { processIo } from './io.js';
import { runProgram } from './program.js';

const args = process.argv.slice(2);
// The bundle's `fleetwave agent` starts its gate host as `fleetwave.cjs __gate-host DATA_DIR` (common/artifact.ts).
if (args[0] === GATE_HOST_MODE) void import('../agent/gate-host-run.js').then(({ runGateHost }) => runGateHost(args[1]));
else {
  void runProgram(args, processIo(), [registerControllerCommand, registerAgentCommand, registerRouterCommand]).then((code) => {
    // On success leave the event loop alone: a daemon keeps running until it is stopped.
    // On failure exit now, whatever handles a half-started daemon left open.
    if (code !== 0) process.exit(code);
  });
}
