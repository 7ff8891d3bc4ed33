// Entry point of the gate host process under dist/: `node dist/agent/gate-host-main.js DATA_DIR` (gate-host-run.ts).
import { runGateHost } from './gate-host-run.js';

runGateHost(process.argv[2]);
