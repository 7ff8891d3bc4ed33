// compileAgentOptions: defaults, repeatable flags, and one clear error per bad value.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../common/errors.js';
import { fileURLToPath } from 'node:url';
import { readExample, schemaKeysAndFlags } from '../common/config-test-support.js';
import { registerAgentCommand } from './cli.js';
import { agentConfigSchema, compileAgentOptions } from './options.js';

describe('compileAgentOptions', () => {
  it('fills the defaults of docs/design.md', () => {
    const options = compileAgentOptions({ bootId: 'b1' });
    expect(options).toMatchObject({
      controller: '127.0.0.1:7400',
      group: 'default',
      labels: {},
      instances: [],
      nats: 'nats://127.0.0.1:4222',
      resetHook: '',
      keepEditions: 3,
      gateQueue: 1000,
      gateHoldMs: 1500,
      stopGates: false,
      bootId: 'b1',
      insecure: false,
      logFormat: 'json',
      gateHost: '0.0.0.0',
      archiveLimits: { maxUnpackedBytes: 8 * 1024 ** 3, maxEntries: 100_000 },
    });
    expect(options.dataDir).toMatch(/\/fleetwave-agent$/);
    expect(options.id.length).toBeGreaterThan(0);
  });

  it('parses labels, instances and durations', () => {
    const options = compileAgentOptions({ label: ['zone=eu-1', 'tier=web=1'], instance: ['shop:8080', 'api:0'], gateHold: '1.5s', keepEditions: '5', gateQueue: '0' });
    expect(options.labels).toEqual({ zone: 'eu-1', tier: 'web=1' });
    expect(options.instances).toEqual([{ app: 'shop', servicePort: 8080 }, { app: 'api', servicePort: 0 }]);
    expect(options).toMatchObject({ gateHoldMs: 1500, keepEditions: 5, gateQueue: 0 });
  });

  it('takes the address routers reach the gates at (--advertise), canonical; none by default', () => {
    expect(compileAgentOptions({ bootId: 'b' }).advertise).toBe('');
    expect(compileAgentOptions({ bootId: 'b', advertise: '10.0.0.5' }).advertise).toBe('10.0.0.5');
    expect(compileAgentOptions({ bootId: 'b', advertise: '[2001:DB8::5]' }).advertise).toBe('2001:db8::5');
    expect(compileAgentOptions({ bootId: 'b', advertise: 'Web-1.example.internal' }).advertise).toBe('web-1.example.internal');
  });

  it('takes a bind address per instance; without one the gate binds every interface', () => {
    const options = compileAgentOptions({ bootId: 'b', instance: ['shop:127.0.0.1:8080', 'api:[::1]:9090', 'web:8081', 'admin:localhost:0'] });
    expect(options.instances).toEqual([
      { app: 'shop', servicePort: 8080, host: '127.0.0.1' },
      { app: 'api', servicePort: 9090, host: '::1' },
      { app: 'web', servicePort: 8081 },
      { app: 'admin', servicePort: 0, host: 'localhost' },
    ]);
    expect(options.gateHost).toBe('0.0.0.0');
  });

  it.each([
    [{ instance: ['shop:http'] }, /--instance: port 'http'/],
    [{ instance: ['shop'] }, /--instance: 'shop' is not APP:PORT/],
    [{ instance: ['shop::1:8080'] }, /IPv6 address in brackets/],
    [{ instance: ['shop::8080'] }, /no usable bind address/],
    [{ instance: ['shop:127.0.0.1:port'] }, /--instance: port 'port'/],
    [{ instance: ['shop:1', 'shop:2'] }, /given twice/],
    [{ instance: ['../x:1'] }, /--instance: app/],
    [{ gateHold: 'soon' }, /--gate-hold/],
    [{ keepEditions: '0' }, /--keep-editions/],
    [{ label: ['novalue'] }, /--label/],
    [{ controller: 'nowhere' }, /--controller/],
    [{ logFormat: 'xml' }, /--log-format/],
    [{ maxUnpackedSize: 'lots' }, /--max-unpacked-size/],
    [{ maxPackageEntries: '0' }, /--max-package-entries/],
    [{ advertise: '10.0.0.5:8080' }, /--advertise: '10.0.0.5:8080' is not an IP address or a host name \(no port/],
    [{ advertise: 'web 1' }, /--advertise/],
  ])('refuses %j', (raw, message) => {
    expect(() => compileAgentOptions(raw)).toThrow(BadInputError);
    expect(() => compileAgentOptions(raw)).toThrow(message);
  });
});

describe('the join token', () => {
  it('comes from --join-token-file, --join-token or FLEETWAVE_JOIN_TOKEN, and says which', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fleetwave-join-'));
    const saved = process.env.FLEETWAVE_JOIN_TOKEN;
    try {
      writeFileSync(join(dir, 'join.token'), 'fwt_from-file\n', { mode: 0o600 });
      expect(compileAgentOptions({ bootId: 'b', joinTokenFile: join(dir, 'join.token') })).toMatchObject({ joinToken: 'fwt_from-file', joinTokenSource: 'file' });
      expect(compileAgentOptions({ bootId: 'b', joinToken: 'fwt_flag' })).toMatchObject({ joinToken: 'fwt_flag', joinTokenSource: 'flag' });
      process.env.FLEETWAVE_JOIN_TOKEN = 'fwt_env';
      expect(compileAgentOptions({ bootId: 'b' })).toMatchObject({ joinToken: 'fwt_env', joinTokenSource: 'env' });
      delete process.env.FLEETWAVE_JOIN_TOKEN;
      expect(compileAgentOptions({ bootId: 'b' })).toMatchObject({ joinToken: '', joinTokenSource: 'none' });
      expect(() => compileAgentOptions({ bootId: 'b', joinToken: 'x', joinTokenFile: join(dir, 'join.token') })).toThrow(/give the join token once/);
      expect(() => compileAgentOptions({ bootId: 'b', joinTokenFile: join(dir, 'missing') })).toThrow(/--join-token-file: cannot read/);
      writeFileSync(join(dir, 'empty'), '\n');
      expect(() => compileAgentOptions({ bootId: 'b', joinTokenFile: join(dir, 'empty') })).toThrow(/must hold one token/);
    } finally {
      if (saved === undefined) delete process.env.FLEETWAVE_JOIN_TOKEN;
      else process.env.FLEETWAVE_JOIN_TOKEN = saved;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the config file (agent.yaml)', () => {
  it('has one key per flag', () => {
    const { keys, flags } = schemaKeysAndFlags(registerAgentCommand, 'agent', agentConfigSchema);
    // A new flag needs its key in the schema, a line in deploy/config/agent.yaml and one in docs/configuration.md.
    expect(keys).toEqual(flags);
  });

  it('ships an example that parses, documents every key and holds the production settings', () => {
    const { values, notInExample, notInDocs } = readExample(fileURLToPath(new URL('..', import.meta.url)), 'agent', agentConfigSchema);
    expect(notInExample).toEqual([]);
    expect(notInDocs).toEqual([]);
    expect(values).toMatchObject({ 'data-dir': '/var/lib/fleetwave/agent', 'app-user': 'fleetwave' });
  });
});
