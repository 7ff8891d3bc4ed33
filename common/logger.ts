// One way to make a pino logger: JSON by default, human-readable with `pretty`.
import { pino, type Logger } from 'pino';

export type LogFormat = 'json' | 'pretty';
export type { Logger };

export function createLogger(options: { name: string; format?: LogFormat; level?: string }): Logger {
  const level = options.level ?? process.env.FLEETWAVE_LOG_LEVEL ?? 'info';
  if (options.format === 'pretty') {
    return pino({
      name: options.name,
      level,
      transport: { target: 'pino-pretty', options: { colorize: false, translateTime: 'HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ name: options.name, level });
}
