// Flag checks of the controller's NATS agent users (--nats-agent-users and the flags that need it).
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import { readExample, schemaKeysAndFlags } from '../common/config-test-support.js';
import { registerControllerCommand } from './cli.js';
import { compileControllerOptions, controllerConfigSchema } from './options.js';

describe('controller options: NATS agent users', () => {
  it('is off by default', () => {
    expect(compileControllerOptions({ insecure: true }).natsAgentUsers).toBeNull();
  });

  it('refuses --nats-users-template or --nats-reload-pid-file without --nats-agent-users', () => {
    expect(() => compileControllerOptions({ insecure: true, natsReloadPidFile: '/run/nats.pid' })).toThrow(/need --nats-agent-users/);
    expect(() => compileControllerOptions({ insecure: true, natsUsersTemplate: '/etc/t' })).toThrow(/need --nats-agent-users/);
  });

  it('refuses --nats-agent-users with --insecure (nothing enrols there)', () => {
    expect(() => compileControllerOptions({ insecure: true, natsAgentUsers: '/etc/nats/users.conf' })).toThrow(/--insecure/);
  });
});

describe('the config file (controller.yaml)', () => {
  it('has one key per flag', () => {
    const { keys, flags } = schemaKeysAndFlags(registerControllerCommand, 'controller', controllerConfigSchema);
    // A new flag needs its key in the schema, a line in deploy/config/controller.yaml and one in docs/configuration.md.
    expect(keys).toEqual(flags);
  });

  it('ships an example that parses, documents every key and holds the production settings', () => {
    const { values, notInExample, notInDocs } = readExample(fileURLToPath(new URL('..', import.meta.url)), 'controller', controllerConfigSchema);
    expect(notInExample).toEqual([]);
    expect(notInDocs).toEqual([]);
    expect(values).toMatchObject({ 'data-dir': '/var/lib/fleetwave/controller', 'tls-dir': '/etc/fleetwave/tls', 'bootstrap-token-file': '/var/lib/fleetwave/controller/admin.token' });
  });
});
