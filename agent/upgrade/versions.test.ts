// Which program an unpacked agent package offers: a script for a node-run agent, only an executable for a single
// executable agent (it has no node to run a script with).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findArtifact, launchOf } from './versions.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function packageDir(files: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'fleetwave-versions-'));
  dirs.push(dir);
  for (const f of files) writeFileSync(join(dir, f), '', { mode: 0o755 });
  return dir;
}

describe('findArtifact', () => {
  it('prefers the bundle for a node-run agent, and takes only the executable for a single executable', () => {
    const both = packageDir(['fleetwave-agent.cjs', 'fleetwave-agent']);
    expect(findArtifact(both)).toBe(join(both, 'fleetwave-agent.cjs'));
    expect(findArtifact(both, true)).toBe(join(both, 'fleetwave-agent'));
    const script = packageDir(['fleetwave-agent.cjs']);
    expect(findArtifact(script, true)).toBeUndefined();
    expect(findArtifact(packageDir(['README']))).toBeUndefined();
  });

  it('runs a script with node and an executable as itself', () => {
    expect(launchOf('/v/1/fleetwave-agent.cjs', '/usr/bin/node')).toEqual({ command: '/usr/bin/node', args: ['/v/1/fleetwave-agent.cjs'] });
    expect(launchOf('/v/1/fleetwave-agent', '/usr/bin/node')).toEqual({ command: '/v/1/fleetwave-agent', args: [] });
  });
});
