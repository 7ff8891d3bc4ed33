// The reconcile loop with a fake admin socket: passes coalesce, acks follow clean passes, failures retry.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { waitFor } from '../test/harness/wait.js';
import { RoutingCache } from './cache.js';
import { Reconciler } from './reconciler.js';
import { RuntimeApiError, type RuntimeCommands } from './runtime.js';
import { appRouting, routed, update } from './test-fixtures.js';

/** An empty haproxy fronting 'shop' that accepts every change; `down` makes the socket fail. */
class FakeSocket implements RuntimeCommands {
  readonly socketPath = '/fake.sock';
  sent: string[] = [];
  batches = 0;
  /** Passes that read haproxy (each starts with show servers state). */
  reads = 0;
  down = false;
  /** Resolves the batch in flight when set: lets a test hold a pass open. */
  gate: Promise<void> | undefined;

  async run(commands: readonly string[]): Promise<string[]> {
    this.batches++;
    await this.gate;
    if (this.down) throw new RuntimeApiError('no haproxy admin socket at /fake.sock');
    if (commands[0] === 'show servers state') this.reads++;
    return commands.map((c) => {
      if (c === 'show servers state') return '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_port';
      if (c === 'show map') return "# id (file) description\n0 (/run/fw_shop.map) pattern loaded from file '/run/fw_shop.map'";
      if (c.startsWith('show map ')) return '';
      if (c.startsWith('fleetwave rules show')) return '-';
      this.sent.push(c);
      return c.startsWith('add server') ? 'New server registered.' : '';
    });
  }

  async one(command: string): Promise<string> {
    return (await this.run([command]))[0]!;
  }
}

function setup() {
  const api = new FakeSocket();
  const cache = new RoutingCache(['shop']);
  const applied: number[] = [];
  const reconciler = new Reconciler({ api, cache, apps: ['shop'], slots: 2, logger: pino({ level: 'silent' }), resyncMs: 0, onApplied: (v) => applied.push(v) });
  return { api, cache, applied, reconciler };
}

describe('Reconciler', () => {
  it('leaves haproxy alone until the watch described an app', async () => {
    const { api, reconciler } = setup();
    expect(await reconciler.sync()).toEqual({ version: 0, commands: 0, failures: 0 });
    expect(api.batches).toBe(0);
  });

  it('applies the cache and reports the version the pass started from', async () => {
    const { api, cache, applied, reconciler } = setup();
    cache.applyUpdate(update(7, { full: true, apps: [appRouting([routed('a1', '1.0')])] }));
    const result = await reconciler.sync();
    expect(result).toMatchObject({ version: 7, failures: 0 });
    expect(api.sent).toContain('set server fw_shop_e0/a1 state ready');
    expect(applied).toEqual([7]);
  });

  it('runs one more pass for any number of asks while a pass runs', async () => {
    const { api, cache, reconciler } = setup();
    cache.applyUpdate(update(1, { full: true, apps: [appRouting([routed('a1', '1.0')])] }));
    let release!: () => void;
    api.gate = new Promise((r) => (release = r));
    const first = reconciler.sync();
    await waitFor('the first pass reading haproxy', () => api.batches > 0);
    const asks = [reconciler.sync(), reconciler.sync(), reconciler.sync()];
    release();
    await Promise.all([first, ...asks]);
    expect(api.reads).toBe(2);
  });

  it('rejects the asks of a pass the socket failed, and retries on its own until it works', async () => {
    const { api, cache, applied, reconciler } = setup();
    cache.applyUpdate(update(3, { full: true, apps: [appRouting([routed('a1', '1.0')])] }));
    api.down = true;
    await expect(reconciler.sync()).rejects.toThrow(/no haproxy admin socket/);
    api.down = false;
    await waitFor('a retried pass applied version 3', () => applied.includes(3), 5_000);
    reconciler.stop();
  });
});
