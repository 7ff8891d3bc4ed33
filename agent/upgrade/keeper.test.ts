// The keeper with stand-in worker programs (small .cjs scripts): trial, commit, rollback, signal forwarding.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logger.js';
import { Keeper } from './keeper.js';
import { readCurrent, readFailure, readNext, UPGRADE_EXIT_CODE, versionDir } from './versions.js';

const logger = createLogger({ name: 'keeper-test', level: 'silent' });
let dir: string;
let keeper: Keeper | undefined;

/** A worker that appends `label` and its argv to runs.log, then does `body` (CommonJS, run with node). */
function program(path: string, label: string, body: string): string {
  writeFileSync(
    path,
    `const fs = require('node:fs');
fs.appendFileSync(${JSON.stringify(join(dir, 'runs.log'))}, ${JSON.stringify(label)} + ' ' + process.argv.slice(2).join(' ') + '\\n');
process.on('SIGTERM', () => process.exit(0));
const stay = () => setInterval(() => {}, 1000);
${body}
`,
  );
  return path;
}

/** The installed program: stages `next` on its first run (exit 75), then serves as the kept version. */
function installed(next: string): { command: string; args: string[] } {
  const staged = JSON.stringify(JSON.stringify({ version: '0.3.0', artifact: next }));
  const script = program(
    join(dir, 'installed.cjs'),
    'kept',
    `const once = ${JSON.stringify(join(dir, 'staged-once'))};
if (!fs.existsSync(once)) {
  fs.writeFileSync(once, '');
  fs.mkdirSync(${JSON.stringify(join(dir, 'data', 'agent-versions'))}, { recursive: true });
  fs.writeFileSync(${JSON.stringify(join(dir, 'data', 'agent-versions', 'next.json'))}, ${staged});
  process.exit(${UPGRADE_EXIT_CODE});
}
process.send({ type: 'connected', version: '0.1.0' });
stay();`,
  );
  return { command: process.execPath, args: [script, 'agent', '--self-upgrade'] };
}

function staged(body: string): string {
  const vdir = versionDir(join(dir, 'data'), '0.3.0');
  mkdirSync(vdir, { recursive: true });
  return program(join(vdir, 'fleetwave-agent.cjs'), 'new', body);
}

const runs = () => (existsSync(join(dir, 'runs.log')) ? readFileSync(join(dir, 'runs.log'), 'utf8').trim().split('\n') : []);

function start(next: string, trialMs = 10_000): Keeper {
  keeper = new Keeper({ dataDir: join(dir, 'data'), self: installed(next), agentArgs: ['--self-upgrade', '--id', 'h1'], trialMs, killAfterMs: 2_000, logger });
  void keeper.start();
  return keeper;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-keeper-'));
});

afterEach(async () => {
  if (keeper) {
    keeper.signal('SIGTERM');
    await keeper.done;
  }
  keeper = undefined;
  rmSync(dir, { recursive: true, force: true });
});

describe('keeper', () => {
  it('commits a staged version that reaches the controller, and runs it with the agent flags', async () => {
    const next = staged(`process.send({ type: 'connected', version: '0.3.0' }); stay();`);
    // A version rolled back earlier: removed once another is committed.
    mkdirSync(versionDir(join(dir, 'data'), '0.2.0'), { recursive: true });
    start(next);
    await expect.poll(() => readCurrent(join(dir, 'data')), { timeout: 10_000 }).toEqual({ version: '0.3.0', artifact: next });
    // next.json goes once current.json is durable, so a moment after it appears.
    await expect.poll(() => readNext(join(dir, 'data')), { timeout: 5_000 }).toBeUndefined();
    await expect.poll(() => existsSync(versionDir(join(dir, 'data'), '0.2.0')), { timeout: 5_000 }).toBe(false);
    expect(existsSync(next)).toBe(true);
    expect(runs()).toEqual(['kept agent --self-upgrade', 'new --self-upgrade --id h1']);
  });

  it('rolls back a version that exits before it reaches the controller, and records why', async () => {
    start(staged(`process.exit(3);`));
    await expect.poll(() => runs().length, { timeout: 10_000 }).toBe(3);
    expect(runs()[2]).toBe('kept agent --self-upgrade');
    expect(readFailure(join(dir, 'data'))).toMatchObject({ version: '0.3.0', reason: 'version 0.3.0 exited (code 3) before it reached the controller' });
    expect(readCurrent(join(dir, 'data'))).toBeUndefined();
    expect(readNext(join(dir, 'data'))).toBeUndefined();
  });

  it('rolls back a version that stays silent past the trial', async () => {
    start(staged(`stay();`), 300);
    await expect.poll(() => readFailure(join(dir, 'data'))?.reason, { timeout: 10_000 }).toBe('version 0.3.0 did not reach the controller within 300ms');
    // The kept version again (the silent one may have been stopped before it even logged its start).
    await expect.poll(() => runs().filter((r) => r.startsWith('kept')).length, { timeout: 10_000 }).toBe(2);
  });

  it('a wrong version is not committed', async () => {
    start(staged(`process.send({ type: 'connected', version: '0.2.9' }); stay();`), 60_000);
    await expect.poll(() => readFailure(join(dir, 'data'))?.reason, { timeout: 10_000 }).toBe('the staged program reports version 0.2.9, not 0.3.0');
    expect(readCurrent(join(dir, 'data'))).toBeUndefined();
  });

  it('forwards SIGTERM and ends with the worker; another exit ends the keeper with its code', async () => {
    const k = start(staged(`process.send({ type: 'connected', version: '0.3.0' }); stay();`));
    await expect.poll(() => readCurrent(join(dir, 'data'))?.version, { timeout: 10_000 }).toBe('0.3.0');
    k.signal('SIGTERM');
    expect(await k.done).toBe(0);
    keeper = undefined;
    // The committed version is what the next keeper runs; it exits 9, and so does the keeper.
    writeFileSync(readCurrent(join(dir, 'data'))!.artifact, `process.exit(9);`);
    const again = new Keeper({ dataDir: join(dir, 'data'), self: installed('unused'), agentArgs: [], trialMs: 1_000, logger });
    expect(await again.start()).toBe(9);
  });
});
