// `make build`'s console step: the web console (controller/console/, Preact + TSX) bundled by esbuild into
// dist/console/ (index.html, login.html, console.js, login.js, console.css), which the controller serves (docs/http-api.md).
// Prints each file's size; fails when the page (HTML + JS + CSS) would weigh 200 KB or more.
//
// esbuild: already the project's bundler (deploy/dist/bundle.ts); it compiles TSX with Preact's automatic JSX runtime.
// Preact: a 4 KB (gzip) React-compatible renderer with hooks, so the whole console stays a few tens of KB.
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { repoRootAbove } from '../../common/repo-root.js';

const REPO_ROOT = repoRootAbove(import.meta.url);
const SOURCE = join(REPO_ROOT, 'controller', 'console');
/** What one page load may fetch at most, uncompressed (the budget). */
export const PAGE_BUDGET_BYTES = 200 * 1024;
const STATIC = ['index.html', 'login.html', 'console.css'];

export interface ConsoleBuild {
  outDir: string;
  /** file → bytes. */
  sizes: Record<string, number>;
  /** The console page: index.html + console.js + console.css. */
  pageBytes: number;
}

export async function buildConsole(o: { outDir?: string } = {}): Promise<ConsoleBuild> {
  const outDir = o.outDir ?? join(REPO_ROOT, 'dist', 'console');
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  await build({
    entryPoints: { console: join(SOURCE, 'app.tsx'), login: join(SOURCE, 'login.tsx') },
    outdir: outDir,
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: ['es2022'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: true,
    legalComments: 'none',
    logLevel: 'error',
    tsconfig: join(SOURCE, 'tsconfig.json'),
  });
  for (const file of STATIC) copyFileSync(join(SOURCE, file), join(outDir, file));
  const sizes: Record<string, number> = {};
  for (const file of readdirSync(outDir).sort()) sizes[file] = statSync(join(outDir, file)).size;
  const pageBytes = (sizes['index.html'] ?? 0) + (sizes['console.js'] ?? 0) + (sizes['console.css'] ?? 0);
  if (pageBytes >= PAGE_BUDGET_BYTES) throw new Error(`dist/console: the console page weighs ${pageBytes} bytes; the budget is under ${PAGE_BUDGET_BYTES}`);
  return { outDir, sizes, pageBytes };
}

function kb(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} KB`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const result = await buildConsole();
  const lines = Object.entries(result.sizes).map(([file, bytes]) => `  ${file.padEnd(12)} ${kb(bytes).padStart(9)}`);
  console.log(`console: ${result.outDir}\n${lines.join('\n')}\n  page total   ${kb(result.pageBytes).padStart(9)} (budget ${kb(PAGE_BUDGET_BYTES)})`);
}
