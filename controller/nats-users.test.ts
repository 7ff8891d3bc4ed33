// The nats-server users file the controller writes (--nats-agent-users): nats-server itself accepts what is rendered,
// the file follows the agents with a live credential, and it is rewritten only when it changes.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { HAS_NATS_SERVER } from '../test/harness/nats.js';
import { newAgentNkey, NatsUsersFile, renderNatsUsers } from './nats-users.js';
import { TokenStore } from './tokens.js';

const dir = mkdtempSync(join(tmpdir(), 'fleetwave-nats-users-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('renderNatsUsers', () => {
  const a1 = { agentId: 'a1', nkey: newAgentNkey().publicKey };
  const text = renderNatsUsers('{ user: controller, password: $CONTROLLER_PASS }\n', [a1, { agentId: 'web-2.eu', nkey: newAgentNkey().publicKey }]);

  it("starts with the template's users, then gives each agent its own ingest subject to publish on and nothing to read", () => {
    expect(text).toContain('    { user: controller, password: $CONTROLLER_PASS }\n');
    expect(text).toContain(`{ nkey: ${a1.nkey}, permissions: { publish: { allow: ["fleetwave.ingest.*.instance.a1"] }, subscribe: { deny: [">"] } } }`);
    expect(text).toContain('"fleetwave.ingest.*.instance.web-2.eu"');
  });

  it.skipIf(!HAS_NATS_SERVER)('is a config nats-server 2.9 accepts, included at top level, with or without agents', () => {
    for (const [name, content] of [['some', text], ['none', renderNatsUsers('', [])]]) {
      writeFileSync(join(dir, `${name}.conf`), content);
      writeFileSync(join(dir, `main-${name}.conf`), `include ./${name}.conf\n`);
      const check = spawnSync('nats-server', ['-c', join(dir, `main-${name}.conf`), '-t'], { env: { ...process.env, CONTROLLER_PASS: 'x' }, encoding: 'utf8' });
      expect(check.status, check.stderr + check.stdout).toBe(0);
    }
  });
});

describe('NatsUsersFile with the token store', () => {
  it('lists enrolled agents only while their credential is live, writes 0640, and rewrites only on change', () => {
    const tokens = new TokenStore(new Database(':memory:'));
    const join1 = tokens.createToken({ name: 'join', role: 'agent', createdBy: 'test' }).record;
    const file = join(dir, 'agents.conf');
    const log = pino({ level: 'silent' });
    const users = new NatsUsersFile({ file, templateFile: null, reloadPidFile: null }, log);
    const [k1, k2] = [newAgentNkey(), newAgentNkey()];
    tokens.enrollAgent('a1', join1, k1.publicKey);
    tokens.enrollAgent('a2', join1, k2.publicKey);
    tokens.enrollAgent('a3', join1);
    users.sync(tokens.natsAgentUsers());
    expect(tokens.natsAgentUsers().map((u) => u.agentId)).toEqual(['a1', 'a2']);
    expect(statSync(file).mode & 0o777).toBe(0o640);
    const written = statSync(file).mtimeMs;
    users.sync(tokens.natsAgentUsers());
    expect(statSync(file).mtimeMs).toBe(written);
    // Revoke and rekey take the key out; the seed never was in the file
    tokens.revokeAgent('a1');
    tokens.rekeyAgent('a2', { ttlMs: 60_000, createdBy: 'test' });
    users.sync(tokens.natsAgentUsers());
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(k1.publicKey);
    expect(text).not.toContain(k2.publicKey);
    expect(text).not.toContain(k1.seed);
  });
});
