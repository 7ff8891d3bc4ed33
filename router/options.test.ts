// `fleetwave router` flags: defaults, --app parsing, and one clear line for each bad input.
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readExample, schemaKeysAndFlags } from '../common/config-test-support.js';
import { registerRouterCommand } from './cli.js';
import { compileRouterOptions, parseApp, routerConfigSchema } from './options.js';

const BASE = { app: ['shop=0.0.0.0:8080'], haproxySocket: '/tmp/h.sock', insecure: true };

describe('compileRouterOptions', () => {
  it('fills defaults', () => {
    const o = compileRouterOptions(BASE, {});
    expect(o).toMatchObject({ apps: [{ app: 'shop', host: '0.0.0.0', port: 8080 }], haproxySocket: '/tmp/h.sock', haproxyBin: '', editionSlots: 4, controller: '127.0.0.1:7400', nats: 'nats://127.0.0.1:4222', token: '' });
  });

  it('takes the token from the environment and puts the socket in the run dir with --haproxy-bin', () => {
    const o = compileRouterOptions({ app: ['api=:9090'], haproxyBin: '/bin/sh', runDir: '/tmp/rd' }, { FLEETWAVE_TOKEN: 'tok' });
    expect(o).toMatchObject({ token: 'tok', haproxySocket: '/tmp/rd/haproxy.sock', apps: [{ app: 'api', host: '', port: 9090 }] });
  });

  it('reads the token from --token-file, and refuses a file with more than one token in it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwave-router-token-'));
    try {
      writeFileSync(join(dir, 'router.token'), 'fwt_abc\n', { mode: 0o600 });
      writeFileSync(join(dir, 'two.token'), 'fwt_a fwt_b\n');
      expect(compileRouterOptions({ ...BASE, insecure: false, tokenFile: join(dir, 'router.token') }, {}).token).toBe('fwt_abc');
      expect(() => compileRouterOptions({ ...BASE, tokenFile: join(dir, 'two.token') }, {})).toThrow(/--token-file: '.*two\.token' must hold one token and nothing else/);
      expect(() => compileRouterOptions({ ...BASE, tokenFile: join(dir, 'router.token'), token: 'x' }, {})).toThrow(/give the token once/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    [{ ...BASE, app: [] }, /--app: give at least one app/],
    [{ ...BASE, app: ['shop'] }, /--app: 'shop' is not NAME=\[HOST\]:PORT/],
    [{ ...BASE, app: ['shop=8080'] }, /is not NAME=/],
    [{ ...BASE, app: ['shop=:0'] }, /port '0' is not a number from 1 to 65535/],
    [{ ...BASE, app: ['../x=:80'] }, /may hold only letters/],
    [{ ...BASE, app: ['shop=::1:80'] }, /put an IPv6 address in brackets/],
    [{ ...BASE, app: ['shop=:80', 'shop=:81'] }, /given twice/],
    [{ ...BASE, app: ['shop=:80', 'api=:80'] }, /\*:80 is given twice/],
    [{ app: ['shop=:80'], insecure: true }, /--haproxy-socket: give the admin socket/],
    [{ ...BASE, haproxyBin: '/nonexistent/haproxy' }, /--haproxy-bin: '\/nonexistent\/haproxy' is not an executable/],
    [{ ...BASE, editionSlots: '0' }, /--edition-slots: '0' is not a whole number from 1 to 16/],
    [{ ...BASE, insecure: false }, /no token: give --token/],
    [{ ...BASE, ca: '/x.pem' }, /choose TLS/],
    [{ ...BASE, haproxySocket: `/tmp/${'x'.repeat(120)}` }, /longer than a unix socket path/],
    [{ ...BASE, controller: 'nowhere' }, /--controller: 'nowhere' is not HOST:PORT/],
  ])('refuses bad input in one line (%#)', (raw, message) => {
    expect(() => compileRouterOptions(raw, {})).toThrow(message);
  });
});

describe('parseApp', () => {
  it('reads IPv6 hosts in brackets and host names', () => {
    expect(parseApp('shop=[::1]:8080')).toEqual({ app: 'shop', host: '::1', port: 8080 });
    expect(parseApp('shop=lb.example.com:80')).toEqual({ app: 'shop', host: 'lb.example.com', port: 80 });
  });
});

describe('the config file (router.yaml)', () => {
  it('has one key per flag', () => {
    const { keys, flags } = schemaKeysAndFlags(registerRouterCommand, 'router', routerConfigSchema);
    // A new flag needs its key in the schema, a line in deploy/config/router.yaml and one in docs/configuration.md.
    expect(keys).toEqual(flags);
  });

  it('ships an example that parses and documents every key', () => {
    const { values, notInExample, notInDocs } = readExample(fileURLToPath(new URL('..', import.meta.url)), 'router', routerConfigSchema);
    expect(notInExample).toEqual([]);
    expect(notInDocs).toEqual([]);
    expect(values).toMatchObject({ app: ['shop=:80'], 'run-dir': '/var/lib/fleetwave/router' });
  });
});
