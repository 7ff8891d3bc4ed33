// UpgradeAgent against a local HTTP server: staged into agent-versions/<version>/ with next.json, or refused.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_ARCHIVE_LIMITS } from '../../common/archive.js';
import { createLogger } from '../../common/logger.js';
import type { Command, UpgradeAgent } from '../../proto/gen/fleetwave/v1/agent.js';
import type { AgentOptions } from '../options.js';
import { readNext, versionDir, writeFailure, readFailure } from '../upgrade/versions.js';
import type { CommandContext, KeeperLink } from './types.js';
import { upgradeAgent } from './upgrade-agent.js';

let dir: string;
let server: Server;
let base: string;
let requests = 0;
const files = new Map<string, Buffer>();

function pack(name: string, content: string): { body: UpgradeAgent; path: string } {
  const src = mkdtempSync(join(dir, 'src-'));
  writeFileSync(join(src, name), content);
  const out = join(dir, `${name}-${files.size}.tar.gz`);
  execFileSync('tar', ['-czf', out, '-C', src, name]);
  const bytes = readFileSync(out);
  const path = `/artifacts/${files.size}`;
  files.set(path, bytes);
  return { body: { version: '0.3.0', url: `${base}${path}`, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length }, path };
}

function ctx(keeper?: KeeperLink): CommandContext {
  const options = { dataDir: join(dir, 'data'), maxPackageBytes: 1 << 30, archiveLimits: DEFAULT_ARCHIVE_LIMITS } as unknown as AgentOptions;
  return { command: {} as Command, instance: undefined as never, instances: new Map(), state: undefined as never, events: undefined as never, options, logger: createLogger({ name: 't', level: 'silent' }), signal: new AbortController().signal, progress: {}, keeper };
}

const keeper: KeeperLink = { connected: () => {}, upgradeStaged: () => {} };

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'fleetwave-upgrade-agent-'));
  mkdirSync(join(dir, 'data'));
  requests = 0;
  files.clear();
  server = createServer((req, res) => {
    requests++;
    const bytes = files.get(req.url ?? '');
    res.writeHead(bytes ? 200 : 404).end(bytes);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterEach(async () => {
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

describe('UpgradeAgent', () => {
  it('stages a bundle package: unpacked, next.json written, an old rollback report cleared; a second delivery downloads nothing', async () => {
    const { body } = pack('fleetwave-agent.cjs', 'console.log(1)');
    await writeFailure(join(dir, 'data'), { version: '0.3.0', reason: 'earlier', failedUnixMs: 1 });
    expect(await upgradeAgent.run(ctx(keeper), body)).toEqual({ restart: true });
    const artifact = join(versionDir(join(dir, 'data'), '0.3.0'), 'fleetwave-agent.cjs');
    expect(readNext(join(dir, 'data'))).toEqual({ version: '0.3.0', artifact });
    expect(readFileSync(artifact, 'utf8')).toBe('console.log(1)');
    expect(readFailure(join(dir, 'data'))).toBeUndefined();
    await upgradeAgent.run(ctx(keeper), body);
    expect(requests).toBe(1);
  });

  it('refuses without a keeper, a package without the program, and a wrong sha256', async () => {
    const { body } = pack('fleetwave-agent.cjs', 'x');
    await expect(upgradeAgent.run(ctx(), body)).rejects.toThrow('this agent runs without its keeper (start it with --self-upgrade): it cannot replace itself');
    const wrong = pack('README', 'no program').body;
    await expect(upgradeAgent.run(ctx(keeper), wrong)).rejects.toThrow(/holds none of fleetwave-agent\.cjs, fleetwave-agent\.js, fleetwave-agent/);
    await expect(upgradeAgent.run(ctx(keeper), { ...body, sha256: 'b'.repeat(64) })).rejects.toThrow(/sha256/);
    expect(readNext(join(dir, 'data'))).toBeUndefined();
  });
});
