// Flag checks of the controller's NATS agent users (--nats-agent-users and the flags that need it).
import { describe, expect, it } from 'vitest';
import { compileControllerOptions } from './options.js';

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
