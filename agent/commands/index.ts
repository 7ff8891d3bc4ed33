// The command handlers the agent knows, in one list: the agent runs these kinds and nothing else.
import { downloadPackage } from './download-package.js';
import { hardResetServer } from './hard-reset-server.js';
import { healthCheck } from './health-check.js';
import { quiesce } from './quiesce.js';
import { restartApp } from './restart-app.js';
import { startApp } from './start-app.js';
import { stopApp } from './stop-app.js';
import { upgradeAgent } from './upgrade-agent.js';
import type { CommandHandler, CommandKind } from './types.js';

export const HANDLERS: readonly CommandHandler[] = [
  downloadPackage,
  quiesce,
  stopApp,
  startApp,
  restartApp,
  hardResetServer,
  healthCheck,
  upgradeAgent,
] as CommandHandler[];

export function handlerFor(kind: CommandKind): CommandHandler | undefined {
  return HANDLERS.find((h) => h.kind === kind);
}
