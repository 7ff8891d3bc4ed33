// HAProxy's Runtime API (the admin "stats socket"): commands in, text out, and the parsers for what the router reads
// back (show servers state, show map, show stat, show backend). One connection per batch, in prompt mode: the
// commands go out pipelined and each answer ends with the prompt ("\n> "), so answers split back one per command.
import { connect } from 'node:net';
import { FleetwaveError } from '../common/errors.js';

/** The admin socket is missing, refused, or answered in a way the router cannot use. */
export class RuntimeApiError extends FleetwaveError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, recoverable: true });
  }
}

const PROMPT = '\n> ';
export const RUNTIME_TIMEOUT_MS = 10_000;

/** What the reconciler needs of the admin socket (tests fake it with a plain object). */
export interface RuntimeCommands {
  readonly socketPath: string;
  run(commands: readonly string[]): Promise<string[]>;
  one(command: string): Promise<string>;
}

export class RuntimeApi implements RuntimeCommands {
  constructor(
    readonly socketPath: string,
    private readonly timeoutMs = RUNTIME_TIMEOUT_MS,
  ) {}

  /** Runs `commands` in order on one connection; resolves to each one's answer, without its final newline. */
  run(commands: readonly string[]): Promise<string[]> {
    for (const command of commands) {
      if (/[\r\n]/.test(command)) throw new RuntimeApiError(`a Runtime API command is one line: ${JSON.stringify(command)}`);
    }
    if (commands.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      const chunks: Buffer[] = [];
      socket.setTimeout(this.timeoutMs, () => socket.destroy(new RuntimeApiError(`haproxy's admin socket ${this.socketPath} did not answer within ${this.timeoutMs} ms`)));
      socket.on('connect', () => socket.write(`prompt\n${commands.map((c) => `${c}\n`).join('')}quit\n`));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', (err) => reject(err instanceof RuntimeApiError ? err : socketError(this.socketPath, err)));
      socket.on('close', (hadError) => {
        if (hadError) return;
        // "prompt" answers nothing, then every command's answer is followed by the prompt.
        const answers = Buffer.concat(chunks).toString('utf8').split(PROMPT).slice(1, commands.length + 1);
        if (answers.length < commands.length) {
          reject(new RuntimeApiError(`haproxy's admin socket ${this.socketPath} answered ${answers.length} of ${commands.length} commands`));
          return;
        }
        resolve(answers.map((a) => a.replace(/\n$/, '')));
      });
    });
  }

  async one(command: string): Promise<string> {
    const [answer] = await this.run([command]);
    return answer!;
  }

  /** True when haproxy answers on the socket. */
  async answers(): Promise<boolean> {
    try {
      await this.one('show info');
      return true;
    } catch {
      return false;
    }
  }
}

/** One line an operator can act on, for a socket that cannot be used. */
export function socketError(path: string, err: Error): RuntimeApiError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new RuntimeApiError(`no haproxy admin socket at ${path} (is haproxy running with "stats socket ${path} level admin"?)`, { cause: err });
  if (code === 'ECONNREFUSED') return new RuntimeApiError(`nothing listens on the haproxy admin socket ${path} (haproxy stopped?)`, { cause: err });
  if (code === 'EACCES') return new RuntimeApiError(`no permission to use the haproxy admin socket ${path}`, { cause: err });
  if (code === 'ENOTSOCK') return new RuntimeApiError(`${path} is not a socket`, { cause: err });
  return new RuntimeApiError(`haproxy admin socket ${path}: ${err.message}`, { cause: err });
}

/** An argument put on a command line: the CLI splits on spaces and treats ';' and '\' as separator and escape. */
export function arg(value: string): string {
  if (value === '' || /\s/.test(value)) throw new RuntimeApiError(`a Runtime API argument may not be empty or hold white space: ${JSON.stringify(value)}`);
  return value.replace(/[\\;]/g, (c) => `\\${c}`);
}

/** A server's administrative state, as `set server … state` sets it. */
export type AdminState = 'ready' | 'drain' | 'maint';

/** One line of `show servers state`. */
export interface ServerStateRow {
  backend: string;
  server: string;
  address: string;
  port: number;
  /** srv_op_state: 0 down, 1 starting, 2 up, 3 stopping. */
  operational: number;
  admin: AdminState;
}

// srv_admin_state bits (management.txt, "show servers state"): forced, inherited, config and resolution maintenance;
// forced and inherited drain.
const MAINT_BITS = 0x01 | 0x02 | 0x04 | 0x20;
const DRAIN_BITS = 0x08 | 0x10;

export function adminStateOf(mask: number): AdminState {
  if (mask & MAINT_BITS) return 'maint';
  if (mask & DRAIN_BITS) return 'drain';
  return 'ready';
}

/** `show servers state` (format version 1): columns are found by their header names. */
export function parseServersState(text: string): ServerStateRow[] {
  const lines = text.split('\n');
  const header = lines.find((l) => l.startsWith('# be_id'));
  if (!header) {
    if (text.trim() === '' || text.trim() === '1') return [];
    throw new RuntimeApiError(`unexpected "show servers state" answer: ${text.slice(0, 120)}`);
  }
  const columns = header.slice(2).split(' ');
  const at = (name: string) => {
    const i = columns.indexOf(name);
    if (i < 0) throw new RuntimeApiError(`"show servers state" has no column ${name}`);
    return i;
  };
  const [be, srv, addr, port, op, admin] = ['be_name', 'srv_name', 'srv_addr', 'srv_port', 'srv_op_state', 'srv_admin_state'].map(at) as number[];
  const rows: ServerStateRow[] = [];
  for (const line of lines) {
    if (line === '' || line.startsWith('#') || /^\d+$/.test(line)) continue;
    const f = line.split(' ');
    rows.push({ backend: f[be!]!, server: f[srv!]!, address: f[addr!]!, port: Number(f[port!]), operational: Number(f[op!]), admin: adminStateOf(Number(f[admin!])) });
  }
  return rows;
}

/** `show map FILE`: `0xADDR key value` lines; a value may hold spaces. */
export function parseMapEntries(text: string): Map<string, string> {
  const entries = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^0x[0-9a-f]+ (\S+) ?(.*)$/i.exec(line);
    if (match) entries.set(match[1]!, match[2]!);
  }
  return entries;
}

/** `show map`: every map's id and file. */
export function parseMapList(text: string): Array<{ id: string; file: string }> {
  const maps: Array<{ id: string; file: string }> = [];
  for (const line of text.split('\n')) {
    const match = /^(-?\d+) \((.*?)\) /.exec(line);
    if (match) maps.push({ id: match[1]!, file: match[2]! });
  }
  return maps;
}

/** `show backend`: one backend name a line under a `# name` header. */
export function parseBackendList(text: string): string[] {
  return text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
}

/** `show stat` (CSV, header `# pxname,svname,…`): one record per proxy or server line. */
export function parseStatCsv(text: string): Array<Record<string, string>> {
  const lines = text.split('\n').filter((l) => l !== '');
  const header = lines.shift();
  if (!header?.startsWith('# ')) throw new RuntimeApiError(`unexpected "show stat" answer: ${text.slice(0, 120)}`);
  const columns = header.slice(2).split(',');
  return lines.map((line) => {
    const fields = line.split(',');
    return Object.fromEntries(columns.map((c, i) => [c, fields[i] ?? ''])) as Record<string, string>;
  });
}
