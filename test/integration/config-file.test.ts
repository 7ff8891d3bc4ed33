// The daemons' config files through the real `fleetwave` binary: an agent started from a config file alone
// connects to a real controller with the file's group, labels and instance; --print-config shows flag > env > file
// with secrets masked; a wrong file is one line and exit 2.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopDataPath } from '../../agent/data-path.js';
import { canConnect, CLI_MAIN, Fleet, freePort, waitFor } from '../harness/fleet.js';
import { spawnProc, type Proc } from '../harness/proc.js';

type Run = { code: number; stdout: string; stderr: string };

/** Runs `fleetwave ARGS` with only `env` added to a clean environment (no inherited FLEETWAVE_*), to its exit. */
function fleetwave(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FLEETWAVE_')));
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI_MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...clean, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

describe('config files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-config-'));
  const write = (name: string, text: string): string => {
    writeFileSync(join(dir, name), text);
    return join(dir, name);
  };
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe('an agent started from its config file alone', () => {
    const fleet = new Fleet(join(dir, 'fleet'));
    const dataDir = join(dir, 'agent-data');
    let agent: Proc | undefined;

    beforeAll(async () => {
      await fleet.startNats();
      await fleet.startController();
    }, 60_000);

    afterAll(async () => {
      await agent?.stop();
      await stopDataPath(dataDir);
      await fleet.stopAll();
    });

    it('connects with the group, labels and instance the file gives', async () => {
      const port = await freePort();
      const config = write(
        'agent.yaml',
        [
          `controller: ${fleet.controller!.grpcAddress}`,
          `nats: ${fleet.nats!.url}`,
          'id: from-file',
          'group: blue',
          'label: {zone: eu-1, rack: 7}',
          `instance: [web:127.0.0.1:${port}]`,
          `data-dir: ${dataDir}`,
          'insecure: true',
          'log-format: pretty',
          '',
        ].join('\n'),
      );
      agent = spawnProc('agent from-file', process.execPath, [CLI_MAIN, 'agent', '--config', config], join(dir, 'agent.log'));
      const info = await waitFor('the agent from the config file to connect', async () => {
        if (!agent!.running) throw new Error(`agent exited: see ${join(dir, 'agent.log')}`);
        return (await fleet.adminClient.agents()).find((a) => a.id === 'from-file' && a.status === 'connected');
      }, 30_000);
      expect(info).toMatchObject({ group: 'blue', labels: { zone: 'eu-1', rack: '7' } });
      // The instance from the file: its traffic gate owns the port.
      await waitFor(`the gate of web on port ${port}`, () => canConnect(port));
    }, 60_000);
  });

  it('--print-config shows flag > env > file > default, where each came from, secrets masked', async () => {
    const config = write('print.yaml', 'group: from-file\ndata-dir: /var/lib/fleetwave/agent\njoin-token: fwt_in-file\nnats-user: agent-1\ngate-hold: 1s\n');
    const run = await fleetwave(['agent', '--config', config, '--print-config', '--gate-hold', '2s'], {
      FLEETWAVE_JOIN_TOKEN: 'fwt_in-env',
      FLEETWAVE_NATS_PASS: 'hunter2',
    });
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).not.toMatch(/fwt_in-|hunter2/);
    const lines = run.stdout.split('\n');
    expect(lines).toContain('gate-hold: 2s  # flag');
    expect(lines).toContain('join-token: "***"  # env FLEETWAVE_JOIN_TOKEN');
    expect(lines).toContain('nats-pass: "***"  # env FLEETWAVE_NATS_PASS');
    expect(lines).toContain(`group: from-file  # ${config}`);
    expect(lines).toContain('keep-editions: 3  # default');
    expect(lines).toContain('# advertise: (not set)');
  });

  it('FLEETWAVE_CONFIG names the file; the controller and the router print theirs too', async () => {
    const controller = write('controller.yaml', 'insecure: true\nlisten: 0.0.0.0:7500\nheartbeat-timeout: 20s\n');
    const c = await fleetwave(['controller', '--print-config'], { FLEETWAVE_CONFIG: controller });
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toContain(`listen: 0.0.0.0:7500  # ${controller}`);
    expect(c.stdout).toContain(`effective configuration (flag > environment > ${controller} > default)`);
    const router = write('router.yaml', 'app: [shop=:8080]\nhaproxy-socket: /run/haproxy/admin.sock\n');
    const r = await fleetwave(['router', '--config', router, '--print-config'], { FLEETWAVE_TOKEN: 'fwt_router' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('token: "***"  # env FLEETWAVE_TOKEN');
    expect(r.stdout).toContain(`app:  # ${router}\n  - shop=:8080\n`);
  });

  it.each([
    ['agent', 'gate-hold: fast\n', ': gate-hold: expected a duration such as 1.5s, got "fast"'],
    ['agent', 'data_dir: /x\n', ': unknown key "data_dir" (did you mean data-dir?)'],
    ['agent', 'instance: [shop:http]\n', ": instance: port 'http' is not a number from 0 to 65535"],
    ['controller', 'heartbeat-timeout: 0.5s\ninsecure: true\n', ': heartbeat-timeout must be at least 1s'],
    ['router', 'app: [shop=:8080]\nedition-slots: 40\ninsecure: true\nhaproxy-socket: /tmp/h.sock\n', ": edition-slots: '40' is not a whole number from 1 to 16"],
  ])('%s: a wrong file is one line naming the file and the key, exit 2 (%j)', async (daemon, yaml, message) => {
    const config = write(`bad-${daemon}.yaml`, yaml);
    const run = await fleetwave([daemon, '--config', config]);
    expect(run).toEqual({ code: 2, stdout: '', stderr: `fleetwave ${daemon}: ${config}${message}\n` });
  });
});
