// The web console's static files, served from the console directory with a strict CSP and an ETag per file.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpError } from './http-api.js';

/**
 * No inline script or style, nothing from another origin, no framing: an injected string in a release comment or an
 * app name cannot run in an operator's session.
 */
export const CONSOLE_CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Sent on every answer: no MIME sniffing, no URL (with its release ids) leaked to another site. */
export const COMMON_HEADERS: Readonly<Record<string, string>> = { 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer' };

/** A console file and whether it needs a credential (the sign-in page and what it loads do not: they hold no data). */
export interface ConsoleFile {
  file: string;
  public: boolean;
}

/** URL path → file in the console directory. Nothing else in the directory is served. */
export const CONSOLE_FILES: Readonly<Record<string, ConsoleFile>> = {
  '/': { file: 'index.html', public: false },
  '/assets/console.js': { file: 'console.js', public: false },
  '/login': { file: 'login.html', public: true },
  '/assets/login.js': { file: 'login.js', public: true },
  '/assets/console.css': { file: 'console.css', public: true },
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/**
 * dist/console/ beside dist/controller/ (the tsc build), else console/ beside this file (the CLI bundle, whose
 * import.meta.url is the bundle's). Missing both, the first: its files then answer 404 naming it.
 */
export function defaultConsoleDir(): string {
  const candidates = [fileURLToPath(new URL('../console/', import.meta.url)), fileURLToPath(new URL('./console/', import.meta.url))];
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? candidates[0]!;
}

/** Reads and sends one console file; 304 when the browser's copy is current (the ETag is the file's sha256). */
export async function serveConsoleFile(dir: string, entry: ConsoleFile, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body: Buffer;
  try {
    // Read per request: the files are small, and a rebuilt console is served without a controller restart.
    body = await readFile(join(dir, entry.file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new HttpError(404, `console file ${entry.file} is missing from ${dir} (build it: make build)`);
    throw err;
  }
  const etag = `"${createHash('sha256').update(body).digest('hex')}"`;
  const headers = {
    ...COMMON_HEADERS,
    'content-type': CONTENT_TYPES[extname(entry.file)] ?? 'application/octet-stream',
    // no-cache: revalidate every time (the ETag makes that cheap), so a new controller's console is never stale.
    'cache-control': 'no-cache',
    etag,
    'content-security-policy': CONSOLE_CSP,
  };
  if (req.headers['if-none-match'] === etag) {
    res.writeHead(304, headers);
    return void res.end();
  }
  res.writeHead(200, { ...headers, 'content-length': body.length });
  res.end(req.method === 'HEAD' ? undefined : body);
}
