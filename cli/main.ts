#!/usr/bin/env node
// The `fleetwave` executable: the daemons (controller, agent, router) and the admin verbs.
import { registerAgentCommand } from '../agent/cli.js';
import { registerControllerCommand } from '../controller/cli.js';
import { registerRouterCommand } from '../router/cli.js';
import { processIo } from './io.js';
import { runProgram } from './program.js';

const code = await runProgram(process.argv.slice(2), processIo(), [registerControllerCommand, registerAgentCommand, registerRouterCommand]);
// On success leave the event loop alone: a daemon keeps running until it is stopped.
// On failure exit now, whatever handles a half-started daemon left open.
if (code !== 0) process.exit(code);
