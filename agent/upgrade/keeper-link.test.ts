// The worker's side of the keeper: a worker whose keeper dies stops too (no second agent beside the next keeper's).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { repoPath } from '../../test/harness/fleet.js';
import { waitFor } from '../../test/harness/wait.js';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'fleetwave-keeper-link-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

it('a worker whose keeper is SIGKILLed is told and stops', async () => {
  // The tsc build, as the agent runs it.
  const link = repoPath('dist', 'agent', 'upgrade', 'keeper-link.js');
  // The "keeper": a node process that spawns the worker with IPC and waits; the worker writes its pid and a line when told.
  const worker = join(dir, 'worker.mjs');
  writeFileSync(
    worker,
    `import { writeFileSync, appendFileSync } from 'node:fs';
const { keeperLink } = await import(${JSON.stringify(link)});
const l = keeperLink(() => {}, () => { appendFileSync(${JSON.stringify(join(dir, 'gone'))}, 'gone'); process.exit(0); });
l.connected('0.3.0');
writeFileSync(${JSON.stringify(join(dir, 'pid'))}, String(process.pid));
setInterval(() => {}, 1000);
`,
  );
  const keeper = join(dir, 'keeper.mjs');
  writeFileSync(
    keeper,
    `import { spawn } from 'node:child_process';
const c = spawn(process.execPath, [${JSON.stringify(worker)}], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], env: { ...process.env, FLEETWAVE_AGENT_KEEPER: '1' } });
c.on('message', (m) => console.log(JSON.stringify(m)));
`,
  );
  const parent = spawn(process.execPath, [keeper], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  parent.stdout.on('data', (d) => (out += d));
  await waitFor('the connected message', () => (out.includes('"connected"') ? true : undefined), 20_000);
  expect(JSON.parse(out.trim().split('\n')[0]!)).toEqual({ type: 'connected', version: '0.3.0' });
  parent.kill('SIGKILL');
  await waitFor('the worker to notice', () => (readFileSafe(join(dir, 'gone')) === 'gone' ? true : undefined), 10_000);
  const pid = Number(readFileSync(join(dir, 'pid'), 'utf8'));
  await waitFor('the worker to exit', () => (alive(pid) ? undefined : true), 10_000);
});

function readFileSafe(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
