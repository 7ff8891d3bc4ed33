// Agent ids are bound to their enrolment (issue 8, defect 2): a join token cannot take over an enrolled id, only an
// admin's `agent rekey` replaces a credential, and join tokens carry scopes (uses, expiry, id pattern, group).
// Real TLS controller, real agents, raw Enroll calls as an attacker holding a join token would make them.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../../cli/client.js';
import { channelCredentials } from '../../common/tls.js';
import { waitFor } from '../harness/fleet.js';
import { startSecureFleet, type SecureFleet } from './secure-fleet.js';

describe('enrolment binds an agent id to its credential', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-enrol-'));
  let fleet: SecureFleet;
  let admin: AdminClient;
  const statusOf = async (id: string) => (await admin.listAgents()).agents.find((a) => a.id === id)?.status;
  const psWarnings = (id: string) => readFileSync(join(dir, `agent-${id}.log`), 'utf8').split('\n').filter((l) => l.includes('--join-token, which any local user can read in ps')).length;
  const credentialOf = (id: string) => fleet.credentialOf(id);

  beforeAll(async () => {
    fleet = await startSecureFleet(dir);
    admin = new AdminClient(fleet.controller.grpcAddress, 'test', { credentials: channelCredentials(fleet.caFile), token: fleet.admin });
  }, 60_000);

  afterAll(async () => {
    admin?.close();
    await fleet?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses Enroll(any join token, "a2") from another host while a2 is enrolled, and a2 keeps working', async () => {
    // Given a2 enrolled with a join token and connected
    const shared = await fleet.newToken('join-shared', 'agent');
    const other = await fleet.newToken('join-other', 'agent');
    const a2 = await fleet.launchAgent('a2', { args: ['--join-token', shared] });
    await waitFor('a2 connected', async () => (await statusOf('a2')) === 'connected', 30_000);
    const credential = credentialOf('a2');
    // When another host enrols as a2, with the same join token and with another one
    for (const token of [shared, other]) {
      const stolen = await fleet.enroll('a2', token);
      // Then it is refused with one line that names the way out
      expect(stolen.credential).toBeUndefined();
      expect(stolen.error?.code).toBe(grpc.status.ALREADY_EXISTS);
      expect(stolen.error?.details).toMatch(/agent 'a2' already has a live credential; .*`fleetwave agent rekey a2`/);
    }
    // And a2's credential is unchanged, and it stays connected and gets back in after a restart
    expect(credentialOf('a2')).toBe(credential);
    // (having warned once that --join-token shows in ps)
    expect(psWarnings('a2')).toBe(1);
    expect(await statusOf('a2')).toBe('connected');
    await a2.stop();
    await waitFor('a2 unreachable', async () => (await statusOf('a2')) === 'unreachable', 30_000);
    await fleet.launchAgent('a2', { args: [] });
    await waitFor('a2 connected again', async () => (await statusOf('a2')) === 'connected', 30_000);
    expect(credentialOf('a2')).toBe(credential);
  });

  it('re-keys an agent: old credential void, stream closed, a single-use token for that id only, recorded', async () => {
    // Given a3 enrolled and connected
    const token = await fleet.newToken('join-a3', 'agent');
    const a3 = await fleet.launchAgent('a3', { args: ['--join-token', token] });
    await waitFor('a3 connected', async () => (await statusOf('a3')) === 'connected', 30_000);
    // When an admin re-keys it
    const rekey = await fleet.cli(fleet.admin, ['agent', 'rekey', 'a3']);
    expect(rekey.code, rekey.stderr).toBe(0);
    const fresh = rekey.stdout.trim();
    expect(fresh).toMatch(/^fwt_/);
    expect(rekey.stderr).toMatch(/agent a3 re-keyed and disconnected/);
    // Then its stream is closed and its old credential and join token no longer get it in
    await waitFor('a3 unreachable', async () => (await statusOf('a3')) === 'unreachable', 30_000);
    expect((await fleet.enroll('a3', token)).error?.code).toBe(grpc.status.ALREADY_EXISTS);
    // And the new token enrols no other id
    expect((await fleet.enroll('a3-impostor', fresh)).error?.code).toBe(grpc.status.PERMISSION_DENIED);
    // When the real host enrols again with the new token, from a file this time
    await a3.stop();
    writeFileSync(join(dir, 'a3.token'), `${fresh}\n`, { mode: 0o600 });
    await fleet.launchAgent('a3', { args: ['--join-token-file', join(dir, 'a3.token')] });
    await waitFor('a3 connected with a new credential', async () => (await statusOf('a3')) === 'connected', 30_000);
    // (only the first run, given --join-token, warned about ps)
    expect(psWarnings('a3')).toBe(1);
    // Then the token is used up, and the change record names the admin token
    expect((await fleet.enroll('a3', fresh)).error).toBeDefined();
    const history = await fleet.cli(fleet.admin, ['history', '--output', 'json']);
    const records = JSON.parse(history.stdout) as Array<{ actor: string; action: string; comment: string }>;
    expect(records).toContainEqual(expect.objectContaining({ action: 'agent rekey', comment: 'a3', actor: expect.stringMatching(/\S/) }));
  });

  it('enrols a single-use token exactly once when two hosts race for it', async () => {
    const once = await fleet.newToken('join-once', 'agent', ['--uses', '1']);
    const results = await Promise.all([fleet.enroll('race-1', once), fleet.enroll('race-2', once)]);
    expect(results.filter((r) => r.credential).length).toBe(1);
    expect(results.find((r) => r.error)?.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    const list = await fleet.cli(fleet.admin, ['token', 'list']);
    expect(list.stdout).toMatch(/join-once .*0 of 1/);
  });

  it('refuses expired tokens and ids outside the pattern', async () => {
    const web = await fleet.newToken('join-web', 'agent', ['--id-pattern', 'web-*']);
    const outside = await fleet.enroll('db-1', web);
    expect(outside.error?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(outside.error?.details).toMatch(/allows agent ids matching 'web-\*', not 'db-1'/);
    expect((await fleet.enroll('web-1', web)).credential).toMatch(/^fwa_/);
    const brief = await fleet.newToken('join-brief', 'agent', ['--ttl', '1s']);
    await waitFor('the token to expire', async () => (await fleet.enroll('late-1', brief)).error?.code === grpc.status.UNAUTHENTICATED, 10_000);
    const list = await fleet.cli(fleet.admin, ['token', 'list']);
    expect(list.stdout).toMatch(/join-web .*ids web-\*/);
  });

  it('holds an agent to the group its join token names, at every Hello', async () => {
    const token = await fleet.newToken('join-green', 'agent', ['--group', 'green']);
    // An agent that enrols with it but declares another group is refused at Hello
    await fleet.launchAgent('g-wrong', { group: 'blue', args: ['--join-token', token] });
    await waitFor('the refusal', () => /group outside its join token/.test(fleet.controllerLog()), 30_000);
    expect(await statusOf('g-wrong')).toBeUndefined();
    // And the agent's log says why, in the controller's words
    await waitFor('the agent to log the refusal', () => /enrolled for group 'green' and may not declare group 'blue'/.test(readFileSync(join(dir, 'agent-g-wrong.log'), 'utf8')), 30_000);
    // While one in that group connects
    await fleet.launchAgent('g-right', { group: 'green', args: ['--join-token', token] });
    await waitFor('g-right connected', async () => (await statusOf('g-right')) === 'connected', 30_000);
  });
});
