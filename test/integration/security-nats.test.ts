// NATS credentials against a real nats-server that requires a user and password: the right ones publish, wrong ones cannot.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect, type NatsConnection } from 'nats';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileNatsAuth } from '../../common/nats-auth.js';
import { EventPublisher } from '../../agent/events.js';
import { startController, startNats, waitFor, type ControllerProc, type Nats } from '../harness/fleet.js';

const USERS = { users: [{ user: 'fleet', password: 'right-pass' }] };

/** A logger whose lines the test can read. */
function memoryLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
  return { logger, text: () => lines.join('') };
}

describe('NATS credentials', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-nats-auth-'));
  let nats: Nats;
  let watcher: NatsConnection;
  const received: string[] = [];
  const publishers: EventPublisher[] = [];
  const controllers: ControllerProc[] = [];

  beforeAll(async () => {
    nats = await startNats(join(dir, 'nats'), undefined, USERS);
    watcher = await connect({ servers: nats.url, user: 'fleet', pass: 'right-pass' });
    watcher.subscribe('fleetwave.ingest.>', { callback: (_err, msg) => received.push(msg.subject) });
    await watcher.flush();
  }, 30_000);

  afterAll(async () => {
    await Promise.all(publishers.map((p) => p.close()));
    await Promise.all(controllers.map((c) => c.stop()));
    await watcher?.close();
    await nats?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lets an agent with the right user and password publish, and keeps one with a wrong password out', async () => {
    const wrongLog = memoryLogger();
    const wrong = new EventPublisher(nats.url, 'mallory', wrongLog.logger, compileNatsAuth({ natsUser: 'fleet', natsPass: 'wrong' }));
    publishers.push(wrong);
    wrong.start();
    wrong.publish('shop', 'started', { edition: 'evil' });

    const right = new EventPublisher(nats.url, 'alice', memoryLogger().logger, compileNatsAuth({ natsUser: 'fleet', natsPass: 'right-pass' }));
    publishers.push(right);
    right.start();
    right.publish('shop', 'started', { edition: '1.0' });

    await waitFor("alice's event", () => received.includes('fleetwave.ingest.shop.instance.alice'), 20_000);
    await waitFor('the authorization failure in the log', () => /[Aa]uthorization/.test(wrongLog.text()), 20_000);
    expect(received).not.toContain('fleetwave.ingest.shop.instance.mallory');
    expect(wrong.buffered).toBe(1);
  });

  it('connects a controller with the right credentials and not with wrong ones', async () => {
    const start = async (name: string, pass: string) => {
      const logFile = join(dir, `${name}.log`);
      const controller = await startController({ dataDir: join(dir, name), natsUrl: nats.url, logFile, args: ['--nats-user', 'fleet', '--nats-pass', pass] });
      controllers.push(controller);
      return () => (existsSync(logFile) ? readFileSync(logFile, 'utf8') : '');
    };
    const good = await start('good', 'right-pass');
    const bad = await start('bad', 'wrong');
    await waitFor('the good controller on NATS', () => /nats connected/.test(good()), 20_000);
    await waitFor('the bad controller refused', () => /nats unreachable[\s\S]*[Aa]uthorization/.test(bad()), 20_000);
    expect(bad()).not.toMatch(/nats connected/);
  });
});
