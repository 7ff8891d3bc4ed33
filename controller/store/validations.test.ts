// The store's validation side against a real SQLite file: one validation per app, the rule added with the move to
// validating, the removal (rule removed, StopApp commands in the outbox) in one transaction, and its end once every
// StopApp answered (their results recorded like a release's, owned by the validation).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConflictError } from '../../common/errors.js';
import type { RouteRecord } from '../domain/routing.js';
import { Store, type AgentHello } from './store.js';
import type { ValidationRecord } from './validations.js';

let dir: string;
let store: Store;

function hello(id: string, group: string, edition: string): AgentHello {
  return {
    agentId: id, host: id, group, labels: {}, bootId: 'b', version: 'v',
    instances: [{ app: 'shop', servicePort: 8000, activeEdition: edition, keptEditions: [edition], processState: 'running', quiesced: false }],
  };
}

function validation(o: Partial<ValidationRecord> = {}): ValidationRecord {
  return {
    id: 'v-1', app: 'shop', edition: '2.0', targetGroup: 'blue', cloneGroup: 'canary', cloneInstances: ['h3'], env: { A: '1' },
    route: { kind: 'header', name: 'X-Validate', value: '1', percent: 0 }, routeId: '', status: 'activating', outcome: '',
    releaseId: '', rolloutReleaseId: '', message: '', createdBy: 'ops', createdUnixMs: 5, finishedUnixMs: 0, ...o,
  };
}

const rule: RouteRecord = { id: 'rt-v', app: 'shop', edition: '2.0', kind: 'header', name: 'X-Validate', value: '1', percent: 0, priority: 0, createdUnixMs: 6, createdBy: 'ops' };
const by = { atUnixMs: 7, actor: 'ops', comment: '' };

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-validations-'));
  store = Store.open(join(dir, 'fleetwave.db'));
  store.createApp({ name: 'shop', startCommand: ['run'], env: {}, portEnv: 'PORT', healthPath: '/healthz', stopTimeoutMs: 1000, createdUnixMs: 1 });
  store.installEdition({ app: 'shop', name: '2.0', description: '', url: 'http://x', sha256: 'a'.repeat(64), size: 1, format: 'tar.gz', fileName: '', createdUnixMs: 1 });
  store.markAgentConnected(hello('h1', 'blue', '1.0'), 1);
  store.markAgentConnected(hello('h3', 'canary', '2.0'), 1);
});

afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('validations', () => {
  it('keeps one validation in progress per app', () => {
    store.validations.insert(validation());
    expect(() => store.validations.insert(validation({ id: 'v-2' }))).toThrow(ConflictError);
    expect(store.validations.inProgress('shop')).toMatchObject({ id: 'v-1', env: { A: '1' }, cloneInstances: ['h3'] });
  });

  it('adds the rule with the move to validating, and removes it with the StopApp commands; ends once they answered', () => {
    store.validations.insert(validation());
    store.validations.setRelease('v-1', 'release', 'r-1');
    expect(store.validations.ofRelease('r-1')?.id).toBe('v-1');
    store.validations.addRule('v-1', rule, by);
    expect(store.validations.get('v-1')).toMatchObject({ status: 'validating', routeId: 'rt-v' });
    expect(store.routing.listRoutes('shop').map((r) => r.id)).toEqual(['rt-v']);

    const removing = store.validations.beginRemoval('v-1', 'cancelled', [{ commandId: 'q-1', agentId: 'h3', kind: 'Quiesce', payload: new Uint8Array([1]) }], by);
    expect(removing).toMatchObject({ status: 'removing', outcome: 'cancelled' });
    expect(store.routing.listRoutes('shop')).toEqual([]);
    expect(store.pendingCommandsForAgent('h3').map((c) => c.commandId)).toEqual(['q-1']);
    const stops = () => [{ commandId: 's-1', agentId: 'h3', kind: 'StopApp' as const, payload: new Uint8Array([2]) }];
    expect(store.validations.advanceRemoval('v-1', 8, stops)).toEqual({ send: [], finished: null });

    // The agent's answers are recorded like a release command's, their owner the validation: quiesced, then stopped.
    const report = (processState: string, quiesced: boolean) => ({ activeEdition: '2.0', keptEditions: ['2.0'], processState, quiesced });
    expect(store.recordCommandResult('h3', 'q-1', { ok: true, error: '', finishedUnixMs: 8, activeEdition: '2.0', instance: report('running', true) })).toMatchObject({ releaseId: 'v-1', kind: 'Quiesce' });
    expect(store.validations.advanceRemoval('v-1', 8, stops).send.map((c) => c.commandId)).toEqual(['s-1']);
    expect(store.pendingCommandsForAgent('h3').map((c) => c.commandId)).toEqual(['s-1']);
    expect(store.validations.advanceRemoval('v-1', 8, stops)).toEqual({ send: [], finished: null });
    expect(store.recordCommandResult('h3', 's-1', { ok: true, error: '', finishedUnixMs: 9, activeEdition: '2.0', instance: report('stopped', false) })).toMatchObject({ kind: 'StopApp' });
    expect(store.listInstances('shop').find((i) => i.agentId === 'h3')?.processState).toBe('stopped');
    expect(store.validations.advanceRemoval('v-1', 9, stops).finished).toMatchObject({ status: 'cancelled', finishedUnixMs: 9 });
    expect(store.validations.inProgress('shop')).toBeNull();
    const results = store.history('shop').map((c) => c.result);
    expect(results).toContain('validation v-1: activating → validating: rule rt-v sends the selected users to the clone');
    expect(results.some((r) => r.startsWith('removed route rt-v'))).toBe(true);
    expect(results).toContain('validation v-1: removing → cancelled: clone removed: its app stopped on every instance');
  });

  it('refuses a move its table does not allow, changing nothing', () => {
    store.validations.insert(validation());
    expect(() => store.validations.move('v-1', 'done', 'no', by)).toThrow(/cannot move from 'activating' to 'done'/);
    expect(store.validations.get('v-1').status).toBe('activating');
  });
});
