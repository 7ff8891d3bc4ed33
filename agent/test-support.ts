// Fixtures for the agent's tests: temp dirs, a sample app packaged as tar.gz, a package server, waiting with a deadline.
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Server, ServerCredentials, type ServerDuplexStream } from '@grpc/grpc-js';
import * as tar from 'tar';
import { AgentServiceService, type AgentMessage, type Command, type CommandResult, type ControllerMessage, type Hello } from '../proto/gen/fleetwave/v1/agent.js';

export function tempDir(prefix: string): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), `fleetwave-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

// The one waitFor of every suite, re-exported for the agent's tests.
import { waitFor } from '../test/harness/wait.js';

export { alive } from './supervisor.js';
export { waitFor };

/** A sample app: answers its edition on every path, `/healthz` with ok, `/slow` after 300 ms; exits on SIGTERM after draining. */
export const SAMPLE_APP = `
const http = require('node:http');
const edition = process.env.FLEETWAVE_EDITION;
const server = http.createServer((req, res) => {
  res.setHeader('x-pid', String(process.pid));
  if (req.url === '/healthz') return res.end('ok');
  if (req.url.startsWith('/slow')) return setTimeout(() => res.end(edition), 300);
  res.end(edition);
});
server.listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

export interface BuiltPackage {
  file: string;
  sha256: string;
  size: number;
}

/** Packs the sample app (or `files`) as a tar.gz under `dir`. */
export async function buildPackage(dir: string, name: string, files: Record<string, string> = { 'server.js': SAMPLE_APP }): Promise<BuiltPackage> {
  const src = join(dir, `${name}-src`);
  mkdirSync(src, { recursive: true });
  for (const [path, content] of Object.entries(files)) writeFileSync(join(src, path), content);
  const file = join(dir, `${name}.tar.gz`);
  await tar.c({ gzip: true, file, cwd: src }, Object.keys(files));
  const bytes = readFileSync(file);
  return { file, sha256: createHash('sha256').update(bytes).digest('hex'), size: statSync(file).size };
}

/** A raw ustar header (typeflag '0' file, '1' hard link, '2' symlink, '5' directory, 'S' GNU sparse, …), built by hand
 *  so a test can make what tar's own writer never would ('..' entries, links out of the tree, sparse files). */
export function tarHeader(path: string, size: number, type = '0', linkpath = ''): Buffer {
  const h = Buffer.alloc(512);
  const put = (text: string, offset: number, length: number) => h.write(text, offset, length, 'utf8');
  const octal = (value: number, offset: number, length: number) => put(value.toString(8).padStart(length - 1, '0') + '\0', offset, length);
  put(path, 0, 100);
  octal(type === '5' ? 0o755 : 0o644, 100, 8);
  octal(0, 108, 8);
  octal(0, 116, 8);
  octal(size, 124, 12);
  octal(1_700_000_000, 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put(linkpath, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  let sum = 0;
  for (const byte of h) sum += byte;
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8);
  return h;
}

/** A gzipped tar of hand-made entries (see tarHeader), written to `file`. */
export function rawTarball(file: string, entries: Array<{ path: string; type?: string; linkpath?: string; body?: string }>): string {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    blocks.push(tarHeader(e.path, body.length, e.type ?? '0', e.linkpath ?? ''), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  writeFileSync(file, gzipSync(Buffer.concat(blocks)));
  return file;
}

/** Serves files of `dir` at `/<name>`; counts requests. */
export async function serveFiles(dir: string): Promise<{ url: string; requests: () => number; close(): Promise<void> }> {
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    try {
      const body = readFileSync(join(dir, decodeURIComponent((req.url ?? '/').slice(1))));
      res.writeHead(200, { 'content-length': body.length });
      res.end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests: () => requests,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** One GET on 127.0.0.1; resolves status and body. */
export function get(port: number, path: string, agent?: http.Agent): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

/** A hand-written controller: welcomes, records hellos, heartbeats and results, sends commands. */
export class FakeController {
  readonly server = new Server();
  readonly hellos: Hello[] = [];
  readonly results: CommandResult[] = [];
  heartbeats = 0;
  private stream: ServerDuplexStream<AgentMessage, ControllerMessage> | undefined;
  port = 0;

  async start(port = 0): Promise<void> {
    this.server.addService(AgentServiceService, {
      session: (call: ServerDuplexStream<AgentMessage, ControllerMessage>) => {
        this.stream = call;
        call.on('data', (message: AgentMessage) => {
          if (message.hello) {
            this.hellos.push(message.hello);
            call.write({ welcome: { controllerId: 'fake', heartbeatIntervalMs: 100, artifactBaseUrl: '' } });
          }
          if (message.heartbeat) this.heartbeats++;
          if (message.result) this.results.push(message.result);
        });
        call.on('error', () => {});
        call.on('end', () => call.end());
      },
    });
    this.port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync(`127.0.0.1:${port}`, ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
    );
  }

  send(command: Partial<Command> & { commandId: string }): void {
    this.stream!.write({ command: { app: 'shop', deadlineUnixMs: 0, timeoutMs: 20_000, releaseId: 'r1', ...command } });
  }

  /** Sends a command and waits for its (next) result. */
  async run(command: Partial<Command> & { commandId: string }): Promise<CommandResult> {
    const before = this.results.length;
    this.send(command);
    return waitFor(`result of ${command.commandId}`, () => this.results.slice(before).find((r) => r.commandId === command.commandId), 20_000);
  }

  stop(): void {
    this.server.forceShutdown();
  }
}
