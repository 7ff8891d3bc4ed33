// The supervisor with real child processes: env and port, log file, process-group stop, SIGKILL fallback, crash restart.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../common/logger.js';
import type { AppSpec } from '../proto/gen/fleetwave/v1/agent.js';
import type { EventSink } from './events.js';
import { AppStartError } from './start-failure.js';
import { AppSupervisor, processStartTime } from './supervisor.js';
import { alive, tempDir, waitFor } from './test-support.js';

const logger = createLogger({ name: 'supervisor-test', level: 'silent' });
const dir = tempDir('supervisor');
const supervisors: AppSupervisor[] = [];
afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.shutdown(1000)));
});
afterAll(() => dir.remove());

function supervisor(
  events: { reason: string; data: Record<string, unknown> }[] = [],
  startGraceMs = 150,
  afterCrashRestart?: (edition: string, failure: string | undefined) => void,
): AppSupervisor {
  const sink: EventSink = { publish: (_app, reason, data) => void events.push({ reason, data }) };
  const s = new AppSupervisor({ app: 'shop', instanceId: 'agent-1', internalPort: 41234, logPath: join(dir.path, 'app.log'), startGraceMs, events: sink, logger, onPid: () => {}, afterCrashRestart });
  supervisors.push(s);
  return s;
}

const spec = (script: string, extra: Partial<AppSpec> = {}): AppSpec => ({ name: 'shop', startCommand: [process.execPath, '-e', script], env: { GREETING: 'hello' }, portEnv: 'APP_PORT', healthPath: '/healthz', stopTimeoutMs: 2000, drainMode: '', quiesceHook: '', inflightPath: '', updateOrder: '', startGraceMs: 0, healthInitialIntervalMs: 0, holdMs: 0, ...extra });

describe('AppSupervisor', () => {
  it('adopts a process an earlier agent run started, restarts it when it dies, and stops an adopted one', async () => {
    // Given an app process this supervisor did not start (its own process group, as the agent starts apps)
    const orphan = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
    await new Promise((r) => orphan.once('spawn', r));
    const pid = orphan.pid!;
    const events: { reason: string; data: Record<string, unknown> }[] = [];
    const s = supervisor(events);
    // A recycled pid (another start time) is not adopted
    expect(s.adopt(pid, 'not-its-start-time', '1.0', spec('setInterval(() => {}, 1000)'), dir.path)).toBe(false);
    // When it is adopted: it runs, nothing was started
    expect(s.adopt(pid, processStartTime(pid)!, '1.0', spec('setInterval(() => {}, 1000)'), dir.path)).toBe(true);
    expect({ state: s.state, pid: s.pid, edition: s.edition, events }).toEqual({ state: 'running', pid, edition: '1.0', events: [] });
    // Then its death counts as a crash: the restart policy starts the edition again
    process.kill(pid, 'SIGKILL');
    await waitFor('the crash restart', () => events.find((e) => e.reason === 'started' && e.data.trigger === 'crash-restart'), 10_000);
    expect(events[0]).toMatchObject({ reason: 'stopped', data: { edition: '1.0', expected: false } });

    // And an adopted process a dying switch was leaving is stopped like any other, without a crash restart
    const leaving = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { detached: true, stdio: 'ignore' });
    await new Promise((r) => leaving.once('spawn', r));
    const t = supervisor(events);
    expect(t.adopt(leaving.pid!, processStartTime(leaving.pid!)!, '1.0', spec(''), dir.path, true)).toBe(true);
    process.kill(leaving.pid!, 'SIGTERM');
    await waitFor('the adopted process to be seen gone', () => t.state === 'stopped' || t.state === 'failed');
    expect(t.state).toBe('stopped');
  });

  it('starts the app in its edition directory with its env and port, logging to app.log', async () => {
    const events: { reason: string; data: Record<string, unknown> }[] = [];
    const s = supervisor(events);
    const script = `console.log(JSON.stringify({cwd: process.cwd(), port: process.env.APP_PORT, greeting: process.env.GREETING, edition: process.env.FLEETWAVE_EDITION, app: process.env.FLEETWAVE_APP, instance: process.env.FLEETWAVE_INSTANCE})); setInterval(() => {}, 1000)`;
    const pid = await s.start('1.0', spec(script), dir.path);
    expect(s.state).toBe('running');
    const line = await waitFor('log line', () => readFileSync(join(dir.path, 'app.log'), 'utf8').split('\n').find((l) => l.includes('greeting')));
    expect(JSON.parse(line)).toEqual({ cwd: dir.path, port: '41234', greeting: 'hello', edition: '1.0', app: 'shop', instance: 'agent-1' });
    expect(events[0]).toMatchObject({ reason: 'started', data: { edition: '1.0', pid } });
    await s.stop();
    expect(s.state).toBe('stopped');
    expect(alive(pid)).toBe(false);
    expect(events.at(-1)).toMatchObject({ reason: 'stopped', data: { edition: '1.0', expected: true, signal: 'SIGTERM' } });
  });

  it('stops the whole process group, children of a shell included', async () => {
    const s = supervisor();
    const childPidFile = join(dir.path, 'child.pid');
    const shell: AppSpec = { ...spec(''), startCommand: ['/bin/sh', '-c', `"${process.execPath}" -e "setInterval(() => {}, 1000)" & echo $! > ${childPidFile}; wait`] };
    await s.start('1.0', shell, dir.path);
    const childPid = Number(await waitFor('child pid', () => readFileSync(childPidFile, 'utf8').trim()));
    expect(alive(childPid)).toBe(true);
    await s.stop();
    await waitFor('child gone', () => !alive(childPid), 3000);
  });

  it('sends SIGKILL when the app ignores SIGTERM past its stop timeout', async () => {
    const s = supervisor();
    const ready = join(dir.path, 'ignoring');
    const pid = await s.start('1.0', spec(`process.on('SIGTERM', () => {}); require('node:fs').writeFileSync(${JSON.stringify(ready)}, ''); setInterval(() => {}, 1000)`, { stopTimeoutMs: 300 }), dir.path);
    await waitFor('SIGTERM handler installed', () => existsSync(ready));
    const started = Date.now();
    const exit = await s.stop();
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    expect(alive(pid)).toBe(false);
  });

  it('fails a start whose process exits at once, naming the exit code', async () => {
    // A long grace: a loaded machine may take a while to boot node before it exits.
    const s = supervisor([], 5000);
    await expect(s.start('1.0', spec('process.exit(3)'), dir.path)).rejects.toThrow(/exited with code 3/);
    expect(s.state).toBe('failed');
    await expect(s.start('1.0', { ...spec(''), startCommand: ['/no/such/program'] }, dir.path)).rejects.toThrow(/could not start/);
  });

  it('answers a start as soon as the app is healthy, without waiting out its grace', async () => {
    // A grace longer than the test's own timeout: only the health check can end this start in time.
    const s = supervisor([], 60_000);
    let asked = 0;
    const pid = await s.start('1.0', spec('setInterval(() => {}, 1000)'), dir.path, async () => ++asked > 0);
    expect(asked).toBe(1);
    expect(s.state).toBe('running');
    expect(alive(pid)).toBe(true);
  });

  it('takes the start grace from the app spec', async () => {
    // The agent's default grace (60 s) would outlast the test; the app's own 100 ms ends the start.
    const s = supervisor([], 60_000);
    await s.start('1.0', spec('setInterval(() => {}, 1000)', { startGraceMs: 100 }), dir.path, async () => false);
    expect(s.state).toBe('running');
  });

  it('quotes the error line of this start, not the runtime\'s last words, and says when the port was taken', async () => {
    const s = supervisor([], 5000);
    const script = `console.error('Error: listen EADDRINUSE: address already in use 127.0.0.1:41234'); console.error(''); console.error('Node.js ' + process.version); process.exit(1)`;
    const failure = await s.start('1.0', spec(script), dir.path).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(AppStartError);
    expect((failure as AppStartError).message).toMatch(/exited with code 1 right after starting edition 1.0: Error: listen EADDRINUSE: address already in use/);
    expect((failure as AppStartError).portTaken).toBe(true);
  });

  it('restarts an app that crashes after it started', async () => {
    const events: { reason: string; data: Record<string, unknown> }[] = [];
    const s = supervisor(events);
    const marker = join(dir.path, 'crashed-once');
    writeFileSync(marker, '');
    // Crashes once (after the start grace), then stays up.
    const script = `const fs = require('node:fs'); if (fs.existsSync(${JSON.stringify(marker)})) { fs.rmSync(${JSON.stringify(marker)}); setTimeout(() => process.exit(7), 300); } setInterval(() => {}, 1000)`;
    const first = await s.start('1.0', spec(script), dir.path);
    await waitFor('crash seen', () => events.some((e) => e.reason === 'stopped' && e.data.exitCode === 7 && e.data.expected === false));
    expect(s.expected).toBe(true);
    await waitFor('restarted', () => s.pid !== undefined && s.pid !== first && s.state === 'running', 5000);
    expect(events.filter((e) => e.reason === 'started')).toHaveLength(2);
  });

  it('says why a crash happened and hands the restarted app over for a health probe once past its grace', async () => {
    const events: { reason: string; data: Record<string, unknown> }[] = [];
    const handedOver: Array<{ edition: string; failure: string | undefined; state: string }> = [];
    const s: AppSupervisor = supervisor(events, 150, (edition, failure) => handedOver.push({ edition, failure, state: s.state }));
    const marker = join(dir.path, 'crash-then-probe');
    writeFileSync(marker, '');
    const script = `const fs = require('node:fs'); if (fs.existsSync(${JSON.stringify(marker)})) { fs.rmSync(${JSON.stringify(marker)}); setTimeout(() => process.exit(7), 300); } setInterval(() => {}, 1000)`;
    await s.start('1.0', spec(script), dir.path);
    const crash = await waitFor('crash seen', () => events.find((e) => e.reason === 'stopped' && e.data.expected === false));
    expect(crash.data.error).toBe('app shop exited with code 7');
    await waitFor('handed over', () => handedOver.length > 0, 5000);
    expect(handedOver).toEqual([{ edition: '1.0', failure: undefined, state: 'running' }]);
    expect(events.filter((e) => e.reason === 'started').map((e) => e.data.trigger)).toEqual(['command', 'crash-restart']);
    // A stop on purpose says nothing went wrong
    await s.stop();
    expect(events.at(-1)).toMatchObject({ reason: 'stopped', data: { expected: true, error: '' } });
  });
});
