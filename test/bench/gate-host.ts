// Runs one TrafficGate in its own process, as the agent runs it, so the bench can load an app directly and through the gate.
// Usage: node dist/test/bench/gate-host.js TARGET_PORT — prints {"port":N} once listening; SIGTERM closes it.
import { createLogger } from '../../common/logger.js';
import { TrafficGate } from '../../agent/gate.js';

const targetPort = Number(process.argv[2]);
const gate = new TrafficGate({
  app: 'bench',
  host: '127.0.0.1',
  port: 0,
  targetPort,
  healthPath: '/healthz',
  queueLimit: 1000,
  holdMs: 30_000,
  isAppExpected: () => true,
  logger: createLogger({ name: 'gate-host', level: 'warn' }),
});
const port = await gate.listen();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => void gate.close().then(() => process.exit(0)));
