// `make bench-scale`: one controller against N simulated agents (test/bench/scale-sim.ts); prints one JSON line per
// fleet size and delay on stdout, progress on stderr. Flags: scale-options.ts; what each figure means: README
// ("Scale benchmark") and scale-run.ts.
//
// Every child (nats-server, controller, simulators) is stopped at the end of its run; Ctrl-C, SIGTERM or an error
// stops them too, and an exit of this process kills whatever is left.
import { FleetwaveError } from '../../common/errors.js';
import { runScale } from './scale-run.js';
import { parseScaleOptions } from './scale-options.js';
import { killAllNow } from './scale-stack.js';

let options;
try {
  options = parseScaleOptions(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`scale-bench: ${err instanceof FleetwaveError ? err.message : String(err)}\n`);
  process.exit(2);
}

process.on('exit', killAllNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`scale-bench: ${signal}; stopping the controller, nats-server and the simulators\n`);
    killAllNow();
    process.exit(130);
  });
}

const log = (text: string) => process.stderr.write(`scale-bench: ${text}\n`);
try {
  for (const agents of options.agents) {
    for (const delayMs of options.delaysMs) {
      const line = await runScale(options, agents, delayMs, log);
      console.log(JSON.stringify(line));
    }
  }
} catch (err) {
  log(`failed: ${(err as Error).stack ?? String(err)}`);
  process.exitCode = 1;
}
