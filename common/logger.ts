// One way to make a pino logger: JSON by default, human-readable with `pretty`.
import { pino, type Logger } from 'pino';
import { BUNDLED } from './artifact.js';

export type LogFormat = 'json' | 'pretty';
export type { Logger };

export function createLogger(options: { name: string; format?: LogFormat; level?: string }): Logger {
  const level = options.level ?? process.env.FLEETWAVE_LOG_LEVEL ?? 'info';
  if (options.format === 'pretty') {
    const pretty = { colorize: false, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' };
    // A bundle has no module files for pino's worker-thread transport to load: it formats on the main thread.
    // (Loaded only here: pino-pretty costs dist/ about 150 ms of start-up.)
    if (BUNDLED) return pino({ name: options.name, level }, (require('pino-pretty') as typeof import('pino-pretty')).build(pretty));
    return pino({ name: options.name, level, transport: { target: 'pino-pretty', options: pretty } });
  }
  return pino({ name: options.name, level });
}
