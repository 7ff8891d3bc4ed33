// Where the CLI writes: the process's streams in production, buffers in tests.

export interface Io {
  /** Writes one line (a newline is added) to standard output. */
  out(text: string): void;
  /** Writes one line (a newline is added) to standard error. */
  err(text: string): void;
  /** Standard output is a terminal (live redraws and colours are allowed). */
  isTTY: boolean;
  /** The terminal to redraw on when isTTY; absent otherwise. */
  terminal?: Terminal;
  /** Environment the CLI reads defaults from (FLEETWAVE_CONTROLLER, USER). */
  env: NodeJS.ProcessEnv;
}

/** What a live view needs of a terminal: a stream, its size when known, and 'resize' events. */
export type Terminal = NodeJS.WritableStream & { columns?: number; rows?: number; isTTY?: boolean };

export function processIo(): Io {
  // A dumb terminal cannot move its cursor: it gets the plain lines a pipe gets.
  const isTTY = Boolean(process.stdout.isTTY) && process.env.TERM !== 'dumb';
  return {
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    isTTY,
    ...(isTTY ? { terminal: process.stdout } : {}),
    env: process.env,
  };
}

/** An Io that keeps what was written, for tests. */
export function bufferIo(env: NodeJS.ProcessEnv = {}): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (text) => void stdout.push(text),
    err: (text) => void stderr.push(text),
    isTTY: false,
    env,
  };
}
