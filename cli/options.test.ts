import { describe, expect, it } from 'vitest';
import { BadInputError } from '../common/errors.js';
import { buildApp, buildInstallRequest, buildReleaseSpec, buildRouteRequest, inferFormat, parseKeyValues, resolveController, type RouteFlags } from './options.js';

describe('buildReleaseSpec', () => {
  it('turns the flags of a phased release into the spec', () => {
    const spec = buildReleaseSpec('shop', {
      edition: '2.0',
      batches: '2',
      batchMode: 'auto',
      wait: '1s',
      reset: 'soft',
      drain: '5s',
      bestEffort: 'on',
      approvalBefore: '2, 3',
      healthTimeout: '30s',
      start: true,
    });
    expect(spec).toMatchObject({
      app: 'shop',
      edition: '2.0',
      batches: 2,
      batchMode: 'auto',
      waitMs: 1000,
      reset: 'soft',
      drainMs: 5000,
      bestEffort: true,
      approvalBefore: [2, 3],
      triggerBefore: [],
      timeouts: { downloadMs: 0, stopMs: 0, startMs: 0, healthMs: 30_000 },
      start: true,
    });
  });

  it('leaves unset flags at zero so the controller applies its defaults', () => {
    const spec = buildReleaseSpec('shop', { edition: '2.0', start: false });
    expect(spec).toMatchObject({ group: '', strategy: '', batches: 0, waitMs: 0, drainMs: 0, bestEffort: false, start: false });
  });

  it.each([
    [{ wait: 'soon' }, "--wait: 'soon' is not a duration"],
    [{ batches: '0' }, "--batches: '0' is not a whole number"],
    [{ strategy: 'blue-green' }, "--strategy: 'blue-green' is not one of rolling, grouped, atomic"],
    [{ reset: 'medium' }, '--reset'],
    [{ bestEffort: 'yes' }, '--best-effort'],
    [{ approvalBefore: '2,x' }, '--approval-before'],
    [{ batchMode: 'fast' }, '--batch-mode'],
  ])('refuses %j', (flags, message) => {
    expect(() => buildReleaseSpec('shop', { edition: '2.0', ...flags })).toThrow(BadInputError);
    expect(() => buildReleaseSpec('shop', { edition: '2.0', ...flags })).toThrow(message);
  });
});

describe('buildApp', () => {
  it('splits --start into argv and parses env and the stop timeout', () => {
    expect(buildApp('shop', { start: ' node  server.js ', env: ['A=1', 'B=x=y'], stopTimeout: '10s' })).toMatchObject({
      name: 'shop',
      startCommand: ['node', 'server.js'],
      env: { A: '1', B: 'x=y' },
      stopTimeoutMs: 10_000,
    });
  });

  it('parses the start grace and the first health probe wait (0: the agent\'s defaults)', () => {
    expect(buildApp('shop', { start: 'java -jar hello.jar', startGrace: '5s', healthInitialInterval: '100ms' })).toMatchObject({ startGraceMs: 5000, healthInitialIntervalMs: 100 });
    expect(buildApp('shop', { start: 'node a.js' })).toMatchObject({ startGraceMs: 0, healthInitialIntervalMs: 0 });
    expect(() => buildApp('shop', { start: 'node a.js', startGrace: 'soon' })).toThrow('--start-grace');
  });

  it('takes the hold limit (--hold), 0 when not given (the agent\'s --gate-hold applies)', () => {
    expect(buildApp('shop', { start: 'node server.js', hold: '800ms' }).holdMs).toBe(800);
    expect(buildApp('shop', { start: 'node server.js' }).holdMs).toBe(0);
  });

  it('takes --start-arg for arguments with spaces', () => {
    expect(buildApp('shop', { startArg: ['node', 'my server.js'] }).startCommand).toEqual(['node', 'my server.js']);
  });

  it('needs exactly one way of giving the start command', () => {
    expect(() => buildApp('shop', {})).toThrow('--start');
    expect(() => buildApp('shop', { start: 'node a.js', startArg: ['x'] })).toThrow('not both');
    expect(() => buildApp('shop', { start: 'node a.js', healthPath: 'healthz' })).toThrow('--health-path');
    expect(() => parseKeyValues(['=1'], '--env')).toThrow("--env: '=1' is not KEY=VALUE");
  });
});

describe('buildInstallRequest', () => {
  it('infers the format from the file name', () => {
    expect(inferFormat('shop-2.0.tar.gz')).toBe('tar.gz');
    expect(inferFormat('/x/shop.TGZ')).toBe('tar.gz');
    expect(inferFormat('shop.jar')).toBe('file');
    expect(buildInstallRequest('shop', '2.0', { file: '/tmp/pkgs/shop.jar', description: 'java' })).toMatchObject({
      app: 'shop',
      name: '2.0',
      description: 'java',
      format: 'file',
      fileName: 'shop.jar',
      url: '',
    });
  });

  it('takes a URL with its sha256', () => {
    const sha = 'a'.repeat(64);
    expect(buildInstallRequest('shop', '2.0', { url: 'https://example.org/shop-2.0.tgz', sha256: sha.toUpperCase(), size: '1234' })).toMatchObject({
      url: 'https://example.org/shop-2.0.tgz',
      sha256: sha,
      size: 1234,
      format: 'tar.gz',
      fileName: '',
    });
  });

  it('refuses ambiguous or unverifiable sources', () => {
    expect(() => buildInstallRequest('shop', '2.0', {})).toThrow('either with --file');
    expect(() => buildInstallRequest('shop', '2.0', { file: 'a', url: 'http://x/a' })).toThrow('either with --file');
    expect(() => buildInstallRequest('shop', '2.0', { url: 'http://x/a.tgz' })).toThrow('--sha256');
    expect(() => buildInstallRequest('shop', '2.0', { url: 'http://x/a.tgz', sha256: 'abc' })).toThrow('64 hex');
    expect(() => buildInstallRequest('shop', '2.0', { file: 'a.zip', format: 'zip' })).toThrow('--format');
  });
});

describe('resolveController', () => {
  it('prefers the flag, then FLEETWAVE_CONTROLLER, then the default', () => {
    expect(resolveController('h:1', { FLEETWAVE_CONTROLLER: 'e:2' }, 'd:3')).toBe('h:1');
    expect(resolveController(undefined, { FLEETWAVE_CONTROLLER: 'e:2' }, 'd:3')).toBe('e:2');
    expect(resolveController(undefined, {}, 'd:3')).toBe('d:3');
    expect(() => resolveController('nohost', {}, 'd:3')).toThrow('HOST:PORT');
  });
});

describe('buildRouteRequest', () => {
  const good: Array<[string, Partial<RouteFlags>, object]> = [
    ['a header (the value may hold =)', { header: 'X-Beta=a=b' }, { kind: 'header', name: 'X-Beta', value: 'a=b', percent: 0 }],
    ['a cookie', { cookie: 'beta=yes' }, { kind: 'cookie', name: 'beta', value: 'yes' }],
    ['a path prefix', { pathPrefix: '/beta' }, { kind: 'path-prefix', name: '', value: '/beta' }],
    ['a source network, canonical', { source: '2001:DB8::/32' }, { kind: 'source', value: '2001:db8::/32' }],
    ['a share of clients', { percent: '5' }, { kind: 'percent', value: '', percent: 5 }],
    ['a share written with %', { percent: '25%' }, { kind: 'percent', percent: 25 }],
    ['a negative priority', { header: 'X-A=1', priority: '-10' }, { priority: -10 }],
  ];
  it.each(good)('builds %s', (_name, flags, route) => {
    const request = buildRouteRequest('shop', { edition: '2.0', comment: 'why', ...flags });
    expect(request).toMatchObject({ route: { app: 'shop', edition: '2.0', priority: 0, ...route }, comment: 'why' });
  });

  const bad: Array<[string, Partial<RouteFlags>, RegExp]> = [
    ['no match flag', {}, /^give exactly one of --header NAME=VALUE, --cookie NAME=VALUE, --path-prefix \/P, --source CIDR, --percent N$/],
    ['two match flags', { header: 'X-A=1', percent: '5' }, /\(got --header and --percent\)$/],
    ['a header without =', { header: 'X-A' }, /^--header: 'X-A' is not NAME=VALUE$/],
    ['a cookie without a name', { cookie: '=1' }, /^--cookie: '=1' is not NAME=VALUE$/],
    ['a percent of 101', { percent: '101' }, /^--percent: '101' is not a whole number from 1 to 100$/],
    ['a fractional percent', { percent: '2.5' }, /--percent/],
    ['a malformed CIDR', { source: '10.1.0.0/16/2' }, /source: '10\.1\.0\.0\/16\/2'/],
    ['a priority beyond int32', { header: 'X-A=1', priority: '2147483648' }, /^--priority: '2147483648' is not a whole number/],
    ['a header name that is no token', { header: 'X A=1' }, /header name 'X A' is not a token/],
  ];
  it.each(bad)('refuses %s with one line', (_name, flags, pattern) => {
    expect(() => buildRouteRequest('shop', { edition: '2.0', ...flags })).toThrow(BadInputError);
    expect(() => buildRouteRequest('shop', { edition: '2.0', ...flags })).toThrow(pattern);
  });
});
