// The admin verbs end to end against a fake AdminService on a real gRPC port:
// what each verb sends, what it prints, and its exit code.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials, status, type Metadata, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AdminServiceService,
  AgentUpgrade,
  App,
  Edition,
  HistoryResponse,
  ListAgentsResponse,
  ListAppsResponse,
  ListEditionsResponse,
  ListInstancesResponse,
  ListReleasesResponse,
  ListRoutesResponse,
  ReleaseDetail,
  Route,
  type GetReleaseRequest,
} from '../proto/gen/fleetwave/v1/admin.js';
import { bufferIo } from './io.js';
import { runProgram } from './program.js';

interface Call {
  method: string;
  request: unknown;
  actor: string;
}

/** A scripted controller: each method answers from `replies` (a value, or an error to send). */
class FakeController {
  calls: Call[] = [];
  replies: Record<string, unknown | { code: number; details: string }> = {};
  watchSnapshots: ReleaseDetail[] = [];
  server = new Server();
  address = '';

  async start(): Promise<void> {
    const handlers: Record<string, unknown> = {};
    for (const method of Object.keys(AdminServiceService)) {
      handlers[method] =
        method === 'watchRelease'
          ? (call: ServerWritableStream<GetReleaseRequest, ReleaseDetail>) => {
              this.record(method, call.request, call.metadata);
              for (const snapshot of this.watchSnapshots) call.write(snapshot);
              call.end();
            }
          : (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
              this.record(method, call.request, call.metadata);
              const scripted = this.replies[method];
              // A function answers from the request (a paged listing).
              const reply = typeof scripted === 'function' ? (scripted as (request: unknown) => unknown)(call.request) : scripted;
              if (reply && typeof reply === 'object' && 'code' in reply) callback(reply as { code: number; details: string }, null);
              // Fill every field, as a real server's messages have them.
              else callback(null, fill(method, reply));
            };
    }
    this.server.addService(AdminServiceService, handlers as never);
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.address = `127.0.0.1:${port}`;
  }

  private record(method: string, request: unknown, metadata: Metadata): void {
    this.calls.push({ method, request, actor: String(metadata.get('x-fleetwave-actor')[0] ?? '') });
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.tryShutdown(() => resolve()));
  }
}

const RESPONSES: Record<string, { fromPartial(o: never): unknown }> = {
  createApp: App,
  installEdition: Edition,
  listEditions: ListEditionsResponse,
  createRelease: ReleaseDetail,
  getRelease: ReleaseDetail,
  releaseAction: ReleaseDetail,
  listApps: ListAppsResponse,
  listReleases: ListReleasesResponse,
  listAgents: ListAgentsResponse,
  listInstances: ListInstancesResponse,
  history: HistoryResponse,
  backOut: ReleaseDetail,
  addRoute: Route,
  listRoutes: ListRoutesResponse,
  removeRoute: Route,
  cancelAgentUpgrade: AgentUpgrade,
};

function fill(method: string, reply: unknown): unknown {
  return RESPONSES[method]!.fromPartial((reply ?? {}) as never);
}

const fake = new FakeController();
beforeAll(() => fake.start());
afterAll(() => fake.stop());
beforeEach(() => {
  fake.calls = [];
  fake.replies = {};
  fake.watchSnapshots = [];
});

async function cli(...args: string[]) {
  const io = bufferIo({ USER: 'ops', FLEETWAVE_CONTROLLER: fake.address });
  const code = await runProgram(args, io);
  return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') };
}

function release(status: string, instances: Array<{ instance: string; status: string }> = []): ReleaseDetail {
  return ReleaseDetail.fromPartial({
    release: { id: 'r-7', app: 'shop', edition: '2.0', status, batchCount: 1 },
    batches: [{ number: 1, group: 'blue', status: status === 'Released' ? 'done' : 'running', instances: instances.map((i) => i.instance) }],
    instances: instances.map((i) => ({ ...i, group: 'blue', batch: 1, edition: '2.0' })),
  });
}

describe('fleetwave admin verbs', () => {
  it('app create sends the app with argv, env and the actor', async () => {
    fake.replies.createApp = { name: 'shop', startCommand: ['node', 'server.js'] };
    const r = await cli('app', 'create', 'shop', '--start', 'node server.js', '--env', 'START_DELAY_MS=200', '--stop-timeout', '5s');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toContain('app shop created: node server.js');
    expect(fake.calls[0]).toMatchObject({
      method: 'createApp',
      request: { app: { name: 'shop', startCommand: ['node', 'server.js'], env: { START_DELAY_MS: '200' }, stopTimeoutMs: 5000 } },
    });
    expect(fake.calls[0]!.actor).toMatch(/^ops@/);
  });

  it('edition install uploads the file and names its format', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fw-cli-'));
    const file = join(dir, 'shop-2.0.tgz');
    writeFileSync(file, 'package bytes');
    fake.replies.installEdition = { app: 'shop', name: '2.0', format: 'tar.gz', size: 13, sha256: 'ab'.repeat(32) };
    const r = await cli('edition', 'install', 'shop', '2.0', '--file', file, '--description', 'second');
    expect(r.code).toBe(0);
    const request = fake.calls[0]!.request as { content: Buffer; format: string; description: string };
    expect(Buffer.from(request.content).toString()).toBe('package bytes');
    expect(request).toMatchObject({ format: 'tar.gz', description: 'second' });
  });

  it('a bad duration is one line, exit 2, and nothing is sent', async () => {
    const r = await cli('release', 'create', 'shop', '--edition', '2.0', '--drain', 'forever');
    expect(r).toEqual({ code: 2, stdout: '', stderr: "fleetwave: --drain: 'forever' is not a duration (examples: 500ms, 30s, 2m)" });
    expect(fake.calls).toEqual([]);
  });

  it('a wrong argument is one line and exit 2', async () => {
    expect(await cli('app', 'create', 'shop', '--bogus')).toEqual({ code: 2, stdout: '', stderr: "fleetwave: unknown option '--bogus'" });
    expect(await cli('release', 'create', 'shop')).toMatchObject({ code: 2, stderr: "fleetwave: required option '--edition <name>' not specified" });
    expect((await cli('nonsense')).stderr).toBe("fleetwave: unknown command 'nonsense'");
  });

  it('release create prints the id and sends the spec', async () => {
    fake.replies.createRelease = release('Releasing');
    const r = await cli('release', 'create', 'shop', '--edition', '2.0', '--batches', '2', '--batch-mode', 'auto', '--wait', '1s', '--reset', 'soft', '--drain', '5s');
    expect(r).toMatchObject({ code: 0, stdout: 'r-7' });
    expect(fake.calls[0]!.request).toMatchObject({ spec: { app: 'shop', edition: '2.0', batches: 2, waitMs: 1000, drainMs: 5000, start: true } });
  });

  it('server errors become one line with the right exit code', async () => {
    fake.replies.getRelease = { code: status.NOT_FOUND, details: "release 'r-9' not found" };
    expect(await cli('release', 'show', 'r-9')).toEqual({ code: 2, stdout: '', stderr: "fleetwave: release 'r-9' not found" });
    fake.replies.createRelease = { code: status.FAILED_PRECONDITION, details: 'release r-7 is already active for shop/blue' };
    expect(await cli('release', 'create', 'shop', '--edition', '2.0')).toMatchObject({ code: 1, stderr: 'fleetwave: release r-7 is already active for shop/blue' });
    fake.replies.releaseAction = { code: status.INVALID_ARGUMENT, details: 'cannot approve: not waiting' };
    expect(await cli('release', 'approve', 'r-7')).toMatchObject({ code: 2, stderr: 'fleetwave: cannot approve: not waiting' });
  });

  it.each([
    [status.NOT_FOUND, 2],
    [status.INVALID_ARGUMENT, 2],
    [status.OUT_OF_RANGE, 2],
    [status.FAILED_PRECONDITION, 1],
    [status.ALREADY_EXISTS, 1],
    [status.ABORTED, 1],
    [status.UNAVAILABLE, 3],
  ])('gRPC status %s gives exit code %s', async (code, rc) => {
    fake.replies.getRelease = { code, details: 'no' };
    const r = await cli('release', 'show', 'r-9');
    expect(r.code).toBe(rc);
    expect(r.stderr.split('\n')).toHaveLength(1);
  });

  it('an unreachable controller is one line and exit 3', async () => {
    const io = bufferIo({ USER: 'ops' });
    const code = await runProgram(['--controller', '127.0.0.1:1', 'app', 'list'], io);
    expect(code).toBe(3);
    expect(io.stderr).toEqual(['fleetwave: cannot reach the controller at 127.0.0.1:1 (is it running?)']);
  });

  it('agent upgrade-cancel sends the id and comment, prints the upgrade and the agents still in flight; refusals are one line', async () => {
    fake.replies.cancelAgentUpgrade = {
      id: 'u-1a2b3c4d',
      version: '0.3.0',
      status: 'cancelled',
      message: 'cancelled by ops: wrong build',
      batches: 2,
      currentBatch: 1,
      targets: [
        { agentId: 'e1', status: 'restarting', batch: 1 },
        { agentId: 'w1', status: 'skipped', batch: 2 },
      ],
    };
    const r = await cli('agent', 'upgrade-cancel', 'u-1a2b3c4d', '--comment', 'wrong build');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout.split('\n')).toEqual([
      'u-1a2b3c4d to 0.3.0: cancelled (cancelled by ops: wrong build), batch 1/2; 1 restarting, 1 skipped',
      '1 agent(s) already sent the package finish on their own; see them with: fleetwave agent upgrade-status u-1a2b3c4d',
    ]);
    expect(fake.calls[0]).toMatchObject({ method: 'cancelAgentUpgrade', request: { id: 'u-1a2b3c4d', comment: 'wrong build' }, actor: expect.stringMatching(/^ops/) });

    fake.replies.cancelAgentUpgrade = { code: status.FAILED_PRECONDITION, details: 'agent upgrade u-1a2b3c4d already ended upgraded; nothing to cancel' };
    expect(await cli('agent', 'upgrade-cancel')).toEqual({ code: 1, stdout: '', stderr: 'fleetwave: agent upgrade u-1a2b3c4d already ended upgraded; nothing to cancel' });
    expect(fake.calls[1]!.request).toMatchObject({ id: '', comment: '' });
    fake.replies.cancelAgentUpgrade = { code: status.NOT_FOUND, details: "agent upgrade 'u-nope' does not exist" };
    expect(await cli('agent', 'upgrade-cancel', 'u-nope')).toEqual({ code: 2, stdout: '', stderr: "fleetwave: agent upgrade 'u-nope' does not exist" });
  });

  it('action verbs send the action and comment', async () => {
    fake.replies.releaseAction = release('Suspending');
    const r = await cli('release', 'pause', 'r-7', '--comment', 'lunch');
    expect(r).toMatchObject({ code: 0, stdout: 'release r-7: Suspending' });
    expect(fake.calls[0]!.request).toMatchObject({ id: 'r-7', action: 'pause', comment: 'lunch' });
  });

  it('listings print a summary and a table, or the proto objects as JSON', async () => {
    fake.replies.listInstances = { instances: [{ app: 'shop', instance: 'blue-1', group: 'blue', edition: '2.0', status: 'running', servicePort: 9001, keptEditions: ['1.0', '2.0'] }] };
    const table = await cli('instance', 'list', 'shop');
    // Changed on purpose (issue 10): the summary comes first, the rows after a blank line.
    expect(table.stdout.split('\n').slice(0, 3)).toEqual(['1 instance: 1 running', '', expect.stringMatching(/^APP\s+INSTANCE\s+GROUP\s+EDITION\s+STATUS/)]);
    expect(table.stdout).toMatch(/shop\s+blue-1\s+blue\s+2\.0\s+running\s+9001\s+no\s+1\.0 2\.0/);
    const json = await cli('instance', 'list', 'shop', '--output', 'json');
    expect(JSON.parse(json.stdout)[0]).toMatchObject({ instance: 'blue-1', edition: '2.0', quiesced: false });
    expect((await cli('agent', 'list', '-o', 'yaml')).code).toBe(2);
  });

  describe('paged listings', () => {
    const AGENTS = Array.from({ length: 10 }, (_, n) => ({ id: `a${n}`, group: n < 6 ? 'blue' : 'green', status: n % 3 === 0 ? 'unreachable' : 'connected' }));
    /** A controller that pages 4 agents at a time (or the limit asked), its cursor the index of the next row. */
    const pagedAgents = (request: any) => {
      const from = request.query?.after ? Number(request.query.after.slice(1)) : 0;
      const size = Math.min(request.query?.limit || 4, 4);
      const rows = AGENTS.slice(from, from + size);
      return {
        agents: rows,
        summary: { total: 10, counts: [{ group: 'blue', status: 'connected', count: 4 }, { group: 'blue', status: 'unreachable', count: 2 }, { group: 'green', status: 'connected', count: 3 }, { group: 'green', status: 'unreachable', count: 1 }] },
        nextAfter: from + size < AGENTS.length ? `c${from + size}` : '',
      };
    };

    it('agent list fetches every page and prints the summary first, then one table of every row', async () => {
      fake.replies.listAgents = pagedAgents;
      const r = await cli('agent', 'list');
      expect(r.code).toBe(0);
      const lines = r.stdout.split('\n');
      expect(lines[0]).toBe('10 agents: 7 connected, 3 unreachable');
      expect(lines[1]).toMatch(/^GROUP\s+TOTAL\s+CONNECTED\s+UNREACHABLE$/);
      expect(lines[2]).toMatch(/^blue\s+6\s+4\s+2$/);
      expect(lines[3]).toMatch(/^green\s+4\s+3\s+1$/);
      expect(lines[5]).toMatch(/^ID\s+GROUP\s+STATUS/);
      expect(lines.slice(6).map((l) => l.split(/\s+/)[0])).toEqual(AGENTS.map((a) => a.id));
      expect(fake.calls.map((c) => (c.request as any).query?.after ?? '')).toEqual(['', 'c4', 'c8']);
    });

    it('--output json writes one JSON array, page by page, the same as one whole answer would', async () => {
      fake.replies.listAgents = pagedAgents;
      const r = await cli('agent', 'list', '-o', 'json');
      expect(r.stderr).toBe('');
      const whole = ListAgentsResponse.fromPartial({ agents: AGENTS }).agents;
      expect(r.stdout).toBe(JSON.stringify(whole, null, 2));
      fake.replies.listAgents = { agents: [] };
      expect(await cli('agent', 'list', '-o', 'json')).toMatchObject({ code: 0, stdout: '[]' });
    });

    it('--limit stops after N rows and tells the next page; --after starts there; filters are sent', async () => {
      fake.replies.listAgents = pagedAgents;
      const r = await cli('agent', 'list', '--limit', '6', '-o', 'json', '--group', 'blue', '--status', 'connected', '--edition', '2.0');
      expect(JSON.parse(r.stdout).map((a: { id: string }) => a.id)).toEqual(['a0', 'a1', 'a2', 'a3', 'a4', 'a5']);
      expect(r.stderr).toBe('next page: --after c6');
      expect(fake.calls.map((c) => c.request)).toEqual([
        { query: { group: 'blue', status: 'connected', edition: '2.0', limit: 6, after: '' } },
        { query: { group: 'blue', status: 'connected', edition: '2.0', limit: 2, after: 'c4' } },
      ]);
      const table = await cli('agent', 'list', '--after', 'c6', '--limit', '2');
      expect(table.stdout).toMatch(/\na6 .*\na7 .*\n\n2 shown; next page: --after c8$/);
    });

    it.each([
      [['agent', 'list', '--status', 'asleep'], "fleetwave: --status: 'asleep' is not one of connected, unreachable"],
      [['agent', 'list', '--limit', '0'], "fleetwave: --limit: '0' is not a whole number ≥ 1"],
      [['agent', 'list', '--limit', 'ten'], "fleetwave: --limit: 'ten' is not a whole number ≥ 1"],
      [['agent', 'list', '--group', 'a/b'], "fleetwave: --group: 'a/b' is not a group name (letters, digits, '.', '_', '-')"],
      [['instance', 'list', '--status', 'connected'], "fleetwave: --status: 'connected' is not one of running, stopped, starting, failed, unreachable"],
      [['instance', 'list', '--after', 'a b'], "fleetwave: --after: 'a b' is not a cursor (the one a --limit listing printed for its next page)"],
      [['release', 'show', 'r-7', '--status', 'done'], "fleetwave: --status: 'done' is not one of pending, in progress, released, failed, unreachable, rolling back, rolled back"],
      [['release', 'show', 'r-7', '--edition', '..'], "fleetwave: --edition: '..' is not an edition name (letters, digits, '.', '_', '-')"],
    ])('%j is one line, exit 2, and nothing is sent', async (args, line) => {
      expect(await cli(...args)).toEqual({ code: 2, stdout: '', stderr: line });
      expect(fake.calls).toEqual([]);
    });

    it('release show prints the head and counts from the first page, then the instances page by page', async () => {
      const ids = ['b1', 'b2', 'b3', 'b4', 'b5'];
      fake.replies.getRelease = (request: any) => {
        const from = request.query?.after ? Number(request.query.after) : 0;
        const rows = ids.slice(from, from + 2);
        return {
          ...release('Releasing'),
          batches: [{ number: 1, group: 'blue', status: 'running', instances: ids }],
          instances: rows.map((instance) => ({ instance, group: 'blue', batch: 1, status: 'released' })),
          changes: [{ atUnixMs: 1000, actor: 'ops@h', action: 'create' }],
          summary: { total: 5, counts: [{ group: 'blue', batch: 1, status: 'in progress', count: 1 }, { group: 'blue', batch: 1, status: 'released', count: 4 }] },
          nextAfter: from + 2 < ids.length ? String(from + 2) : '',
        };
      };
      const r = await cli('release', 'show', 'r-7', '--status', 'released');
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('Instances 5 matching: 1 in progress, 4 released');
      expect(r.stdout).toMatch(/running\s+-\s+-\s+-\s+-\s+1 in progress, 4 released\s+b1 b2 b3 b4 b5/);
      expect(r.stdout.match(/^ {2}b\d \(blue, batch 1\): released$/gm)).toHaveLength(5);
      expect(r.stdout.indexOf('Changes')).toBeGreaterThan(r.stdout.indexOf('b5 (blue'));
      expect(fake.calls.map((c) => (c.request as any).query)).toMatchObject([{ status: 'released', after: '' }, { after: '2' }, { after: '4' }]);

      const json = JSON.parse((await cli('release', 'show', 'r-7', '-o', 'json')).stdout);
      expect(json.instances.map((i: { instance: string }) => i.instance)).toEqual(ids);
      expect(json).toMatchObject({ release: { id: 'r-7' }, summary: { total: 5 }, changes: [{ action: 'create' }] });
    });
  });

  it('release watch prints progress and exits 0 only for Released', async () => {
    fake.watchSnapshots = [release('Releasing', [{ instance: 'blue-1', status: 'in progress' }]), release('Released', [{ instance: 'blue-1', status: 'released' }])];
    const ok = await cli('release', 'watch', 'r-7');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/\d\d:\d\d:\d\d release r-7: shop 2\.0 to all in 1 batch: Releasing/);
    expect(ok.stdout).toContain('release Releasing → Released');
    expect(ok.stdout).toContain('release r-7 Released: 1 released');

    fake.watchSnapshots = [release('Releasing'), release('Release failed', [{ instance: 'blue-1', status: 'failed' }])];
    const failed = await cli('release', 'watch', 'r-7');
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('next: fleetwave release retry r-7');
    expect(failed.stderr).toBe('fleetwave: release r-7 ended Release failed, not Released');
  });

  it('every watch exits 0 when the release ends where the watched action aimed, 1 with one line otherwise', async () => {
    const rollingBack = () => [release('Rolling back', [{ instance: 'blue-1', status: 'released' }]), release('Rolled back', [{ instance: 'blue-1', status: 'rolled back' }])];
    // An operator's rollback, watched by the operator and by a colleague: both end Rolled back, both exit 0.
    fake.replies.releaseAction = release('Rolling back');
    fake.watchSnapshots = rollingBack();
    expect(await cli('release', 'rollback', 'r-7', '--watch')).toMatchObject({ code: 0, stderr: '' });
    fake.watchSnapshots = rollingBack();
    expect(await cli('release', 'watch', 'r-7')).toMatchObject({ code: 0, stderr: '' });
    // A watch that began on the forward release aimed at Released: someone rolled it back.
    fake.watchSnapshots = [release('Releasing'), ...rollingBack()];
    expect(await cli('release', 'watch', 'r-7')).toMatchObject({ code: 1, stderr: 'fleetwave: release r-7 ended Rolled back, not Released' });
    fake.watchSnapshots = [release('Rolling back'), release('Rollback failed')];
    expect(await cli('release', 'rollback', 'r-7', '--watch')).toMatchObject({ code: 1, stderr: 'fleetwave: release r-7 ended Rollback failed, not Rolled back' });
    // A cancel aims at the failed release it asks for.
    fake.replies.releaseAction = release('Releasing');
    fake.watchSnapshots = [release('Releasing'), release('Release failed')];
    expect(await cli('release', 'cancel', 'r-7', '--watch')).toMatchObject({ code: 0, stderr: '' });
  });

  it('rollback APP sends a back-out and prints the new release id; release rollback takes --batches', async () => {
    fake.replies.backOut = release('Releasing');
    const r = await cli('rollback', 'shop', '--group', 'blue', '--comment', 'errors up');
    expect(r).toMatchObject({ code: 0, stdout: 'r-7' });
    expect(fake.calls[0]).toMatchObject({ method: 'backOut', request: { app: 'shop', group: 'blue', comment: 'errors up' } });
    fake.replies.releaseAction = release('Rolling back');
    expect(await cli('release', 'rollback', 'r-7', '--batches', '1')).toMatchObject({ code: 0, stdout: 'release r-7: Rolling back' });
    expect(fake.calls[1]!.request).toMatchObject({ id: 'r-7', action: 'rollback', batches: 1 });
    expect(await cli('release', 'rollback', 'r-7', '--batches', '0')).toMatchObject({ code: 2 });
  });

  it('edition show prints the package and where it is active or kept', async () => {
    fake.replies.listEditions = { editions: [{ app: 'shop', name: '1.0', format: 'tar.gz', size: 2048, sha256: 'cd'.repeat(32), url: 'http://c/a' }] };
    fake.replies.listInstances = {
      instances: [
        { app: 'shop', instance: 'blue-1', group: 'blue', edition: '1.0', keptEditions: ['1.0'] },
        { app: 'shop', instance: 'blue-2', group: 'blue', edition: '2.0', keptEditions: ['2.0', '1.0'] },
      ],
    };
    const r = await cli('edition', 'show', 'shop', '1.0');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Active on blue-1');
    expect(r.stdout).toMatch(/blue-2\s+blue\s+no\s+yes/);
    expect(await cli('edition', 'show', 'shop', '3.0')).toMatchObject({ code: 2, stderr: "fleetwave: edition '3.0' of app 'shop' does not exist" });
  });

  it('route add sends one checked rule with its comment and prints its id; route list and remove', async () => {
    fake.replies.addRoute = { id: 'rt-1', app: 'shop', edition: '2.0', kind: 'source', value: '10.1.0.0/16', priority: -5 };
    const r = await cli('route', 'add', 'shop', '--edition', '2.0', '--source', '10.1.0.0/16', '--priority', '-5', '--comment', 'office');
    expect(r).toMatchObject({ code: 0, stdout: 'rt-1', stderr: 'route rt-1 added: source 10.1.0.0/16 → edition 2.0 (priority -5)' });
    expect(fake.calls[0]).toMatchObject({
      method: 'addRoute',
      actor: expect.stringMatching(/^ops@/),
      request: { route: { app: 'shop', edition: '2.0', kind: 'source', name: '', value: '10.1.0.0/16', percent: 0, priority: -5 }, comment: 'office' },
    });
    fake.replies.listRoutes = {
      routes: [
        { id: 'rt-1', app: 'shop', edition: '2.0', kind: 'header', name: 'X-Beta', value: '1', priority: 0, createdBy: 'ops' },
        { id: 'rt-2', app: 'shop', edition: '2.0', kind: 'percent', percent: 5, priority: 10, createdBy: 'ops' },
      ],
    };
    const list = await cli('route', 'list', 'shop');
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID\s+PRIORITY\s+MATCH\s+EDITION\s+CREATED\s+BY$/);
    expect(list.stdout).toMatch(/rt-1\s+0\s+header X-Beta=1\s+2\.0/);
    expect(list.stdout).toMatch(/rt-2\s+10\s+percent 5%\s+2\.0/);
    fake.replies.removeRoute = { id: 'rt-1', app: 'shop', edition: '2.0', kind: 'header', name: 'X-Beta', value: '1' };
    expect(await cli('route', 'remove', 'shop', 'rt-1', '--comment', 'done')).toMatchObject({ code: 0, stdout: 'route rt-1 removed: header X-Beta=1 → edition 2.0' });
    expect(fake.calls[2]).toMatchObject({ method: 'removeRoute', request: { app: 'shop', id: 'rt-1', comment: 'done' } });
  });

  it.each([
    [['--header', 'X-Beta=1', '--source', '10.0.0.0/8'], /give exactly one of --header NAME=VALUE.* \(got --header and --source\)/],
    [[], /give exactly one of --header/],
    [['--header', 'X-Beta'], /--header: 'X-Beta' is not NAME=VALUE/],
    [['--source', '10.0.0.300/8'], /not an IPv4 or IPv6 CIDR/],
    [['--percent', '0'], /--percent: '0' is not a whole number from 1 to 100/],
    [['--cookie', 'beta=a b'], /cookie value 'a b' may hold only visible ASCII/],
    [['--path-prefix', 'beta'], /must start with '\/'/],
    [['--header', 'X-Beta=1', '--priority', 'first'], /--priority: 'first'/],
  ])('route add %j: one line, exit 2, nothing sent', async (flags, pattern) => {
    const r = await cli('route', 'add', 'shop', '--edition', '2.0', ...flags);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
    expect(fake.calls).toEqual([]);
  });

  it('edition list shows the groups each edition is active on and the default edition', async () => {
    fake.replies.listEditions = {
      editions: [
        { app: 'shop', name: '1.0', format: 'tar.gz', size: 1, sha256: 'ab'.repeat(32), activeGroups: ['blue', 'green'], isDefault: true, keptInstances: 4 },
        { app: 'shop', name: '2.0', format: 'tar.gz', size: 1, sha256: 'cd'.repeat(32), activeGroups: ['pilot'] },
        { app: 'shop', name: '3.0', format: 'tar.gz', size: 1, sha256: 'ef'.repeat(32) },
      ],
    };
    const r = await cli('edition', 'list', 'shop');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^EDITION\s+ACTIVE ON\s+DEFAULT\s+ON DISK\s+/);
    expect(r.stdout).toMatch(/\n1\.0\s+blue green\s+yes\s+4 instances\s+/);
    expect(r.stdout).toMatch(/\n2\.0\s+pilot\s+-\s+/);
    expect(r.stdout).toMatch(/\n3\.0\s+-\s+-\s+/);
  });

  it('release create takes --strategy atomic and --force', async () => {
    fake.replies.createRelease = release('Releasing');
    expect(await cli('release', 'create', 'shop', '--edition', '2.0', '--strategy', 'atomic', '--force')).toMatchObject({ code: 0, stdout: 'r-7' });
    expect(fake.calls[0]!.request).toMatchObject({ spec: { strategy: 'atomic', force: true } });
    expect(await cli('release', 'create', 'shop', '--edition', '2.0', '--strategy', 'blue-green')).toMatchObject({ code: 2 });
  });

  it('release show prints the summary and timeline', async () => {
    fake.replies.getRelease = ReleaseDetail.fromPartial({
      ...release('Released', [{ instance: 'blue-1', status: 'released' }]),
      instances: [{ instance: 'blue-1', group: 'blue', batch: 1, status: 'released', edition: '2.0', steps: [{ step: 'drain', status: 'ok', startedUnixMs: 1000, finishedUnixMs: 1500 }] }],
      changes: [{ atUnixMs: 1000, actor: 'ops@h', action: 'create', comment: 'go' }],
    });
    const r = await cli('release', 'show', 'r-7');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('Status    Released  (batch 0/1)');
    expect(r.stdout).toMatch(/drain\s+ok\s+\S+ → \S+\s+500ms/);
    expect(r.stdout).toMatch(/ops@h\s+create\s+go/);
  });
});
