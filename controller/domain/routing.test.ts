import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../common/errors.js';
import {
  activeGroups,
  defaultEditions,
  describeMatch,
  editionsLeftNowhere,
  heldInstances,
  inEvaluationOrder,
  percentTotal,
  sameMatch,
  serverState,
  takesDefault,
  validateRoute,
  type DefaultRelease,
  type RouteInput,
} from './routing.js';
import type { RoutePhase } from './records.js';

function release(status: string, o: Partial<DefaultRelease> = {}): DefaultRelease {
  return { edition: '2.0', status, strategy: 'rolling', fromDefault: ['1.0'], routePhase: '', ...o };
}

describe('defaultEditions', () => {
  const cases: Array<[string, DefaultRelease | null, string[], string[]]> = [
    ['no release: every edition some instance runs', null, ['1.0', '', '2.0', '1.0'], ['1.0', '2.0']],
    ['no release, nothing runs', null, ['', ''], []],
    ['To release', release('To release'), [], ['1.0']],
    ['rolling, Releasing: both serve', release('Releasing'), [], ['1.0', '2.0']],
    ['rolling, Suspending', release('Suspending'), [], ['1.0', '2.0']],
    ['rolling, Suspended', release('Suspended'), [], ['1.0', '2.0']],
    ['rolling, Release failed', release('Release failed'), [], ['1.0', '2.0']],
    ['grouped, Releasing', release('Releasing', { strategy: 'grouped' }), [], ['1.0', '2.0']],
    ['Released', release('Released'), ['1.0'], ['2.0']],
    ['Rolling back', release('Rolling back'), [], ['1.0', '2.0']],
    ['Rollback failed', release('Rollback failed'), [], ['1.0', '2.0']],
    ['Rolled back', release('Rolled back'), ['2.0'], ['1.0']],
    ['atomic before the routers', release('Releasing', { strategy: 'atomic' }), [], ['1.0']],
    ['atomic, first half held', release('Releasing', { strategy: 'atomic', routePhase: 'first-half' }), [], ['1.0']],
    ['atomic, switched', release('Releasing', { strategy: 'atomic', routePhase: 'switched' }), [], ['2.0']],
    ['atomic failed before the switch', release('Release failed', { strategy: 'atomic', routePhase: '' }), [], ['1.0']],
    ['atomic failed after the switch', release('Release failed', { strategy: 'atomic', routePhase: 'switched' }), [], ['2.0']],
    ['atomic Released', release('Released', { strategy: 'atomic', routePhase: 'switched' }), [], ['2.0']],
    ['atomic rolling back after the switch: mixed', release('Rolling back', { strategy: 'atomic', routePhase: 'switched' }), [], ['1.0', '2.0']],
    ['atomic rolling back before the switch: the old edition alone', release('Rolling back', { strategy: 'atomic', routePhase: 'first-half' }), [], ['1.0']],
    ['atomic Rolled back after the switch', release('Rolled back', { strategy: 'atomic', routePhase: 'switched' }), [], ['1.0']],
    ['atomic of one instance (one batch, no switch): both, as rolling', release('Releasing', { strategy: 'atomic', batchCount: 1 }), [], ['1.0', '2.0']],
    ['first release of an app that ran nothing', release('Releasing', { fromDefault: [] }), [], ['2.0']],
    ['a release of the default edition itself', release('Releasing', { edition: '1.0' }), [], ['1.0']],
  ];
  it.each(cases)('%s', (_name, newest, running, expected) => {
    expect(defaultEditions(newest, running)).toEqual(expected);
  });
});

describe('takesDefault', () => {
  const instances = [
    { agentId: 'a1', activeEdition: '1.0' },
    { agentId: 'a2', activeEdition: '1.0' },
    { agentId: 'a3', activeEdition: '2.0' },
    { agentId: 'a4', activeEdition: '' },
  ];
  const cases: Array<[string, string[], string[], boolean]> = [
    ['covers every default instance', ['1.0'], ['a1', 'a2'], true],
    ['leaves one default instance out', ['1.0'], ['a1', 'a3'], false],
    ['two defaults, all covered', ['1.0', '2.0'], ['a1', 'a2', 'a3'], true],
    ['two defaults, one left', ['1.0', '2.0'], ['a1', 'a2'], false],
    ['no default yet (nothing runs)', [], ['a4'], true],
  ];
  it.each(cases)('%s', (_name, defaults, target, expected) => {
    expect(takesDefault(defaults, instances, new Set(target))).toBe(expected);
  });
});

describe('heldInstances', () => {
  const cases: Array<[string, Array<{ routePhase: RoutePhase; firstBatch: string[] }>, string[]]> = [
    ['first half held', [{ routePhase: 'first-half', firstBatch: ['a1', 'a2'] }], ['a1', 'a2']],
    ['not yet at the routers', [{ routePhase: '', firstBatch: ['a1'] }], []],
    ['switched: nothing held', [{ routePhase: 'switched', firstBatch: ['a1'] }], []],
    ['two releases (two groups)', [{ routePhase: 'first-half', firstBatch: ['a1'] }, { routePhase: 'first-half', firstBatch: ['b1'] }], ['a1', 'b1']],
  ];
  it.each(cases)('%s', (_name, releases, expected) => {
    expect([...heldInstances(releases)].sort()).toEqual(expected);
  });
});

describe('serverState', () => {
  const cases: Array<[string, { activeEdition: string; processState: string; quiesced: boolean }, boolean, string]> = [
    ['running', { activeEdition: '1.0', processState: 'running', quiesced: false }, false, 'ready'],
    ['starting (the gate holds)', { activeEdition: '1.0', processState: 'starting', quiesced: false }, false, 'ready'],
    ['quiesced', { activeEdition: '1.0', processState: 'running', quiesced: true }, false, 'drain'],
    ['held by an atomic release', { activeEdition: '1.0', processState: 'running', quiesced: false }, true, 'drain'],
    ['stopped', { activeEdition: '1.0', processState: 'stopped', quiesced: false }, false, 'maint'],
    ['failed', { activeEdition: '1.0', processState: 'failed', quiesced: true }, true, 'maint'],
    ['no edition', { activeEdition: '', processState: 'running', quiesced: false }, false, 'maint'],
  ];
  it.each(cases)('%s', (_name, row, held, expected) => {
    expect(serverState(row, held)).toBe(expected);
  });
});

describe('activeGroups and editionsLeftNowhere', () => {
  const instances = [
    { agentId: 'a1', group: 'blue', activeEdition: '2.0' },
    { agentId: 'a2', group: 'blue', activeEdition: '1.0' },
    { agentId: 'a3', group: 'green', activeEdition: '1.0' },
    { agentId: 'a4', group: 'pilot', activeEdition: '3.0' },
  ];

  it('lists the groups an edition runs in, sorted', () => {
    expect(activeGroups(instances, '1.0')).toEqual(['blue', 'green']);
    expect(activeGroups(instances, '9.9')).toEqual([]);
  });

  const cases: Array<[string, string[], string[], string, string[]]> = [
    ['a release over the only 2.0 instance', ['2.0'], ['a1', 'a2'], '1.0', ['2.0']],
    ['2.0 still runs outside the target', ['2.0'], ['a2', 'a3'], '3.0', []],
    ['the release brings the named edition itself', ['2.0'], ['a1'], '2.0', []],
    ['an edition already active nowhere', ['9.9'], ['a1', 'a2', 'a3', 'a4'], '1.0', []],
    ['two named editions, both left', ['2.0', '3.0', '2.0'], ['a1', 'a4'], '1.0', ['2.0', '3.0']],
  ];
  it.each(cases)('%s', (_name, named, target, edition, expected) => {
    expect(editionsLeftNowhere(named, instances, new Set(target), edition)).toEqual(expected);
  });
});

describe('validateRoute', () => {
  const base: RouteInput = { kind: 'header', name: 'X-Beta', value: '1', percent: 0, priority: 0 };

  const good: Array<[string, Partial<RouteInput>, object]> = [
    ['header', {}, { kind: 'header', name: 'X-Beta', value: '1' }],
    ['header with token characters', { name: "x_b.e!t#a'~", value: 'on' }, { name: "x_b.e!t#a'~" }],
    ['cookie', { kind: 'cookie', name: 'beta', value: 'yes' }, { kind: 'cookie', name: 'beta', value: 'yes' }],
    ['path prefix', { kind: 'path-prefix', name: '', value: '/beta' }, { kind: 'path-prefix', value: '/beta' }],
    ['source IPv4 CIDR', { kind: 'source', name: '', value: '10.1.0.0/16' }, { value: '10.1.0.0/16' }],
    ['source IPv6 CIDR, canonical', { kind: 'source', name: '', value: '2001:DB8:0::/32' }, { value: '2001:db8::/32' }],
    ['source single address', { kind: 'source', name: '', value: '10.1.2.3' }, { value: '10.1.2.3/32' }],
    ['source IPv6 loopback', { kind: 'source', name: '', value: '::1/128' }, { value: '::1/128' }],
    ['source everything', { kind: 'source', name: '', value: '0.0.0.0/0' }, { value: '0.0.0.0/0' }],
    ['percent', { kind: 'percent', name: '', value: '', percent: 5 }, { kind: 'percent', percent: 5, name: '', value: '' }],
    ['percent 100', { kind: 'percent', name: '', value: '', percent: 100 }, { percent: 100 }],
    ['priority int32 bounds', { priority: -(2 ** 31) }, { priority: -(2 ** 31) }],
  ];
  it.each(good)('accepts %s', (_name, input, expected) => {
    expect(validateRoute({ ...base, ...input })).toMatchObject(expected);
  });

  const bad: Array<[string, Partial<RouteInput>, RegExp]> = [
    ['an unknown kind', { kind: 'query' }, /kind 'query' is not one of header, cookie/],
    ['a header name with a space', { name: 'X Beta' }, /header name 'X Beta' is not a token/],
    ['a header name with ":"', { name: 'X-Beta:' }, /is not a token/],
    ['an empty header name', { name: '' }, /needs a header name/],
    ['a header value with a space', { value: 'a b' }, /header value 'a b' may hold only visible ASCII/],
    ['a header value with ";"', { value: 'a;b' }, /may hold only visible ASCII/],
    ['a header value with a newline', { value: 'a\nb' }, /header value 'a\\nb'/],
    ['a header value with a tab', { value: 'a\tb' }, /visible ASCII/],
    ['a non-ASCII value', { value: 'café' }, /visible ASCII/],
    ['an empty value', { value: '' }, /needs a value/],
    ['a cookie value with ","', { kind: 'cookie', name: 'c', value: 'a,b' }, /cookie value 'a,b'/],
    ['a path prefix without "/"', { kind: 'path-prefix', name: '', value: 'beta' }, /path prefix 'beta' must start with '\/'/],
    ['a path prefix with a query', { kind: 'path-prefix', name: '', value: '/b?x=1' }, /'\?', '#'/],
    ['a path prefix with a name', { kind: 'path-prefix', name: 'x', value: '/b' }, /has no name/],
    ['a malformed CIDR', { kind: 'source', name: '', value: '10.1.0.0/33' }, /prefix length .* 0 to 32/],
    ['a CIDR that is no address', { kind: 'source', name: '', value: '10.1.0/16' }, /is not an IPv4 or IPv6 CIDR/],
    ['a CIDR with host bits', { kind: 'source', name: '', value: '10.1.2.3/16' }, /host bits set; did you mean 10\.1\.0\.0\/16\?/],
    ['an IPv6 CIDR with host bits', { kind: 'source', name: '', value: '2001:db8::1/32' }, /did you mean 2001:db8::\/32\?/],
    ['an IPv6 zone', { kind: 'source', name: '', value: 'fe80::1%eth0/128' }, /is not an IPv4 or IPv6 CIDR/],
    ['percent 0', { kind: 'percent', name: '', value: '', percent: 0 }, /percent '0' is not a whole number from 1 to 100/],
    ['percent 101', { kind: 'percent', name: '', value: '', percent: 101 }, /from 1 to 100/],
    ['percent 2.5', { kind: 'percent', name: '', value: '', percent: 2.5 }, /from 1 to 100/],
    ['percent with a value', { kind: 'percent', name: '', value: 'x', percent: 5 }, /no name or value/],
    ['a header rule with a percent', { percent: 5 }, /has no percent/],
    ['a priority beyond int32', { priority: 2 ** 31 }, /priority .* from -2147483648 to 2147483647/],
    ['a fractional priority', { priority: 1.5 }, /priority/],
  ];
  it.each(bad)('refuses %s with one line', (_name, input, pattern) => {
    let error: unknown;
    try {
      validateRoute({ ...base, ...input });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(BadInputError);
    const message = (error as Error).message;
    expect(message).toMatch(pattern);
    expect(message).not.toContain('\n');
  });
});

describe('rule helpers', () => {
  it('describes, compares, totals and orders rules', () => {
    expect(describeMatch({ kind: 'header', name: 'X-Beta', value: '1', percent: 0 })).toBe('header X-Beta=1');
    expect(describeMatch({ kind: 'path-prefix', name: '', value: '/beta', percent: 0 })).toBe('path-prefix /beta');
    expect(describeMatch({ kind: 'percent', name: '', value: '', percent: 5 })).toBe('percent 5%');
    expect(sameMatch({ kind: 'header', name: 'X-Beta', value: '1' }, { kind: 'header', name: 'x-beta', value: '1' })).toBe(true);
    expect(sameMatch({ kind: 'cookie', name: 'Beta', value: '1' }, { kind: 'cookie', name: 'beta', value: '1' })).toBe(false);
    expect(sameMatch({ kind: 'percent', name: '', value: '' }, { kind: 'percent', name: '', value: '' })).toBe(false);
    expect(percentTotal([{ kind: 'percent', percent: 30 }, { kind: 'header', percent: 0 }, { kind: 'percent', percent: 5 }])).toBe(35);
    const ordered = inEvaluationOrder([
      { id: 'c', priority: 5, createdUnixMs: 1 },
      { id: 'b', priority: 0, createdUnixMs: 2 },
      { id: 'a', priority: 0, createdUnixMs: 1 },
    ]);
    expect(ordered.map((r) => r.id)).toEqual(['a', 'b', 'c']);
  });
});
