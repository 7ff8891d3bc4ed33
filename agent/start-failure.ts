// Says why an app died right after it started, in one line taken from its own log, and whether its port was taken.
//
//   spawn (log offset noted) ──exit within grace──▶ read the log from the offset ──▶ first error line of this start
//                                                                                   (else the last line) ──▶ AppStartError
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { FleetwaveError } from '../common/errors.js';

/** A log line that says what went wrong; runtimes end their dumps with noise ("Node.js v20.20.2") that says nothing. */
const ERROR_LINE = /error|EADDRINUSE|exception/i;
/** Among those, one that states the error itself ("Error: listen EADDRINUSE …", "Exception in thread …", "TypeError: …")
 * rather than mentions one (Node's "throw er; // Unhandled 'error' event" comes first in its dump). */
const STATED_ERROR = /EADDRINUSE|exception|^[\w.$]*Error\b/i;
/** Most of a log read back for one start: enough for a stack trace, bounded for an app that logs a lot. */
const MAX_READ_BYTES = 64 * 1024;
const MAX_LINE_CHARS = 200;

/** The app process ended before its start grace (or health check) passed. */
export class AppStartError extends FleetwaveError {
  /** True when the app's log says its port was taken (EADDRINUSE): another port may well work. */
  readonly portTaken: boolean;
  constructor(message: string, readonly logLine: string) {
    super(message);
    this.portTaken = /EADDRINUSE/.test(logLine);
  }
}

/** The log's size now: where the next start's own lines begin. */
export function logOffset(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * The line that best says why the start failed: the first line of this start stating an error, else the first one
 * mentioning one, else its last non-empty line.
 */
export function chooseErrorLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines.find((l) => STATED_ERROR.test(l)) ?? lines.find((l) => ERROR_LINE.test(l)) ?? lines.at(-1) ?? '';
  return line.slice(0, MAX_LINE_CHARS);
}

/** `chooseErrorLine` of what the log gained since `offset` (the whole tail when it was rotated meanwhile). */
export function startErrorLine(path: string, offset: number): string {
  try {
    const size = statSync(path).size;
    const from = size >= offset ? Math.max(offset, size - MAX_READ_BYTES) : Math.max(0, size - MAX_READ_BYTES);
    const buffer = Buffer.alloc(size - from);
    const fd = openSync(path, 'r');
    try {
      readSync(fd, buffer, 0, buffer.length, from);
    } finally {
      closeSync(fd);
    }
    return chooseErrorLine(buffer.toString('utf8'));
  } catch {
    return '';
  }
}
