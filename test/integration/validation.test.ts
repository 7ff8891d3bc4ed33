// Validation mode and the clone operation against a real controller, real agents and the real CLI: an edition
// validated on a clone of its target (clone on 2.0 with its env override, target on 1.0, the rule in place, the
// default unchanged), rolled out from the validation (target on 2.0, clone stopped, rule gone, validation done), the
// cancel path, the clone operation, and refusals (one line, exit code, nothing changed).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEdition } from '../../examples/demo/package.js';
import type { Edition, Validation } from '../../proto/gen/fleetwave/v1/admin.js';
import { Fleet, freePort, repoPath, waitFor } from '../harness/fleet.js';

const APP = 'shop';
type CliResult = { code: number; stdout: string; stderr: string };

function ok(result: CliResult): string {
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

function refused(result: CliResult, code: number, pattern: RegExp): void {
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(result.code, result.stderr).toBe(code);
  expect(result.stdout).toBe('');
}

describe('validation mode and the clone operation', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-validation-'));
  const fleet = new Fleet(dir);
  const ports: Record<string, number> = {};

  const editions = async (): Promise<{ editions: Edition[]; validation?: Validation }> => {
    const parsed = JSON.parse(ok(await fleet.cli(['edition', 'list', APP, '-o', 'json'])));
    return Array.isArray(parsed) ? { editions: parsed } : parsed;
  };
  const instances = async () => Object.fromEntries((await fleet.adminClient.instances(APP)).map((i) => [i.instance, i]));
  const routes = async () => JSON.parse(ok(await fleet.cli(['route', 'list', APP, '-o', 'json']))) as Array<{ id: string; edition: string; kind: string; name: string; value: string }>;
  const history = async () => ok(await fleet.cli(['history', APP]));
  /** What the instance's app process answers on its gate, and that process's environment. */
  const served = async (id: string) => {
    const answer = (await (await fetch(`http://127.0.0.1:${ports[id]}/`)).json()) as { edition: string; pid: number };
    const env = readFileSync(`/proc/${answer.pid}/environ`, 'utf8').split('\0');
    return { edition: answer.edition, env };
  };
  const released = async (id: string) => expect((await fleet.adminClient.waitForRelease(id, ['Released', 'Release failed', 'Rolled back'])).release?.status).toBe('Released');

  beforeAll(async () => {
    // Given blue (a1, a2) and blue-validation (a3) serving shop, on 1.0 everywhere (green joins for the clone operation)
    await fleet.startNats();
    await fleet.startController();
    for (const [id, group] of [['a1', 'blue'], ['a2', 'blue'], ['a3', 'blue-validation']] as const) {
      ports[id] = await freePort();
      await fleet.startAgent(id, group, { [APP]: ports[id]! });
    }
    await fleet.adminClient.waitForAgents(['a1', 'a2', 'a3']);
    ok(await fleet.cli(['app', 'create', APP, '--start', 'node server.js', '--env', 'GREETING=plain']));
    for (const edition of ['1.0', '2.0', '3.0']) {
      const pkg = await buildEdition({ sourceDir: repoPath('examples/app'), edition, outDir: join(dir, 'packages') });
      ok(await fleet.cli(['edition', 'install', APP, edition, '--file', pkg.path]));
    }
    await released(ok(await fleet.cli(['release', 'create', APP, '--edition', '1.0', '--batches', '1'])).trim());
  }, 180_000);

  afterAll(async () => {
    await fleet.stopAll();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses bad validations and rollouts with one line and the right exit code, changing nothing', async () => {
    const validate = (...args: string[]) => fleet.cli(['edition', 'validate', APP, ...args]);
    refused(await validate('9.9', '--target', 'blue', '--group', 'blue-validation', '--route', 'header:X-Validate=1'), 2, /^fleetwave: edition '9\.9' of app 'shop' does not exist$/);
    refused(await validate('2.0', '--target', 'blue', '--route', 'header:X-Validate=1'), 2, /^fleetwave: give the clone as --group GROUP or --on INSTANCE…, one of them$/);
    refused(await validate('2.0', '--target', 'blue', '--group', 'blue', '--route', 'header:X-Validate=1'), 2, /the clone group 'blue' is the target/);
    refused(await validate('2.0', '--target', 'blue', '--on', 'a1', '--route', 'header:X-Validate=1'), 2, /instance 'a1' is in the target group 'blue'/);
    refused(await validate('2.0', '--target', 'nope', '--group', 'blue-validation', '--route', 'header:X-Validate=1'), 2, /^fleetwave: group 'nope' has no instance of this app$/);
    refused(await validate('2.0', '--target', 'blue', '--group', 'blue-validation', '--route', 'header:X Validate=1'), 2, /header name 'X Validate' is not a token/);
    refused(await validate('2.0', '--target', 'blue', '--group', 'blue-validation', '--route', 'query:a=b'), 2, /^fleetwave: --route: 'query:a=b' is not one of/);
    refused(await validate('2.0', '--target', 'blue', '--group', 'blue-validation'), 2, /--route/);
    refused(await validate('--cancel'), 1, /^fleetwave: app 'shop' has no validation in progress$/);
    refused(await fleet.cli(['release', 'create', APP, '--from-validation']), 1, /^fleetwave: app 'shop' has no validation in progress; start one with fleetwave edition validate$/);
    refused(await fleet.cli(['release', 'create', APP, '--operation', 'clone']), 2, /^fleetwave: --operation clone needs --to GROUP$/);
    refused(await fleet.cli(['release', 'create', APP, '--operation', 'copy', '--to', 'blue']), 2, /--operation/);
    refused(await fleet.cli(['release', 'create', APP]), 2, /--edition/);
    expect((await editions()).validation).toBeUndefined();
    expect(await routes()).toEqual([]);
    expect(Object.values(await instances()).map((i) => i.edition)).toEqual(['1.0', '1.0', '1.0']);
  });

  it('validates 2.0 on a clone of blue: the clone runs 2.0 with its env override, blue keeps 1.0, the rule sends only the selected users', async () => {
    // When
    const id = ok(await fleet.cli(['edition', 'validate', APP, '2.0', '--target', 'blue', '--group', 'blue-validation', '--route', 'header:X-Validate=1', '--env', 'GREETING=validating', '--comment', 'try 2.0'])).trim();
    expect(id).toMatch(/^v-/);
    // Then
    const v = await waitFor('the validation to be validating', async () => {
      const { validation } = await editions();
      return validation?.status === 'validating' && validation;
    }, 60_000);
    expect(v).toMatchObject({ id, edition: '2.0', targetGroup: 'blue', cloneGroup: 'blue-validation', cloneInstances: ['a3'], env: { GREETING: 'validating' } });
    const now = await instances();
    expect([now.a1!.edition, now.a2!.edition, now.a3!.edition]).toEqual(['1.0', '1.0', '2.0']);
    const [rule] = await routes();
    expect(rule).toMatchObject({ id: v.route!.id, edition: '2.0', kind: 'header', name: 'X-Validate', value: '1' });
    // The clone takes no default traffic: 1.0 stays the one default edition.
    const list = (await editions()).editions;
    expect(list.filter((e) => e.isDefault).map((e) => e.name)).toEqual(['1.0']);
    expect(list.find((e) => e.name === '2.0')!.activeGroups).toEqual(['blue-validation']);
    // The override reached the clone's process only.
    expect((await served('a3')).env).toContain('GREETING=validating');
    expect((await served('a1')).env).toContain('GREETING=plain');
    // edition show and list mention it
    expect(ok(await fleet.cli(['edition', 'show', APP, '2.0']))).toMatch(new RegExp(`Validation ${id} of shop 2\\.0: validating; clone of blue on group blue-validation \\(a3\\)`));
    expect(ok(await fleet.cli(['edition', 'list', APP]))).toContain(`Validation ${id}`);
    const h = await history();
    expect(h).toMatch(/validate .*try 2\.0/);
    expect(h).toMatch(/route-add/);
    // A second validation of the app is refused.
    refused(await fleet.cli(['edition', 'validate', APP, '3.0', '--target', 'blue', '--on', 'a3', '--route', 'cookie:v=1']), 1, new RegExp(`already has validation ${id} of edition 2\\.0 \\(validating\\)`));
  }, 90_000);

  it('rolls 2.0 out from the validation: blue on 2.0, then the clone removed (rule gone, its app stopped) and the validation done', async () => {
    const { validation } = await editions();
    refused(await fleet.cli(['release', 'create', APP, '--from-validation', '--edition', '3.0']), 2, /validates edition 2\.0, not 3\.0/);
    // When
    const id = ok(await fleet.cli(['release', 'create', APP, '--from-validation', '--batches', '2'])).trim();
    // Then
    await released(id);
    const release = await fleet.adminClient.release(id);
    expect(release.release).toMatchObject({ edition: '2.0', group: 'blue' });
    await waitFor('the validation to end', async () => !(await editions()).validation, 30_000);
    const now = await instances();
    expect([now.a1!.edition, now.a2!.edition]).toEqual(['2.0', '2.0']);
    await waitFor('the clone stopped', async () => (await instances()).a3!.status === 'stopped', 10_000);
    expect(await routes()).toEqual([]);
    const h = await history();
    expect(h).toContain(`validation ${validation!.id}: validating → rolling-out`);
    expect(h).toContain(`validation ${validation!.id}: rolling-out → removing`);
    expect(h).toContain(`validation ${validation!.id}: removing → done`);
    expect(h).toMatch(/route-remove/);
    // The rollout moved the default to 2.0.
    expect((await editions()).editions.filter((e) => e.isDefault).map((e) => e.name)).toEqual(['2.0']);
  }, 120_000);

  it('cancels a validation: rule removed, the clone instance stopped, nothing rolled out', async () => {
    const id = ok(await fleet.cli(['edition', 'validate', APP, '3.0', '--target', 'blue', '--on', 'a3', '--route', 'cookie:beta=yes'])).trim();
    await waitFor('the validation to be validating', async () => (await editions()).validation?.status === 'validating', 60_000);
    expect((await instances()).a3).toMatchObject({ edition: '3.0', status: 'running' });
    expect((await routes()).map((r) => r.edition)).toEqual(['3.0']);
    // When
    const line = ok(await fleet.cli(['edition', 'validate', APP, '--cancel', '--comment', 'not today']));
    expect(line).toMatch(new RegExp(`^Validation ${id} of shop 3\\.0: (removing|cancelled)`));
    // Then
    await waitFor('the validation to end', async () => !(await editions()).validation, 30_000);
    await waitFor('the clone stopped', async () => (await instances()).a3!.status === 'stopped', 10_000);
    expect(await routes()).toEqual([]);
    const now = await instances();
    expect([now.a1!.edition, now.a2!.edition]).toEqual(['2.0', '2.0']);
    expect(await history()).toContain(`validation ${id}: removing → cancelled`);
  }, 120_000);

  it('clones the default edition onto a group', async () => {
    // Given green (a4) joins, running no edition yet
    ports.a4 = await freePort();
    await fleet.startAgent('a4', 'green', { [APP]: ports.a4 });
    await fleet.adminClient.waitForAgents(['a4']);
    await waitFor('a4 to serve shop', async () => (await instances()).a4, 10_000);
    // When
    const id = ok(await fleet.cli(['release', 'create', APP, '--operation', 'clone', '--to', 'green', '--batches', '1'])).trim();
    // Then
    await released(id);
    expect((await fleet.adminClient.release(id)).release).toMatchObject({ edition: '2.0', group: 'green' });
    expect((await instances()).a4!.edition).toBe('2.0');
    expect(await history()).toContain('clone: the default edition 2.0 of shop (and its spec) onto group green');
    refused(await fleet.cli(['release', 'create', APP, '--operation', 'clone', '--to', 'nope']), 2, /group 'nope' has no instance/);
  }, 90_000);
});
