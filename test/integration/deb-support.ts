// Scratch inputs for deploy/dist/deb.ts: small stand-ins at the paths `make dist` fills, or the artifacts under test:
// env FLEETWAVE_DEB_AGENT_ARTIFACT (a SEA executable or a .cjs bundle) and FLEETWAVE_DEB_CLI_DIR (buildCliBundle's
// output). By default sh scripts run this checkout's tsc build, so the suites work before the bundles exist.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DebInputs } from '../../deploy/dist/deb.js';
import { CLI_MAIN } from '../harness/fleet.js';

export const AGENT_ARTIFACT_ENV = 'FLEETWAVE_DEB_AGENT_ARTIFACT';
export const CLI_DIR_ENV = 'FLEETWAVE_DEB_CLI_DIR';

/** Writes stand-in inputs under `dir`; the agent artifact is the env one when set. */
export function scratchDebInputs(dir: string, version = '0.1.0'): DebInputs {
  const agentArtifact = process.env[AGENT_ARTIFACT_ENV] || writeScript(join(dir, 'in/fleetwave-agent'), `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_MAIN)} agent "$@"`);
  const cliDir = process.env[CLI_DIR_ENV] || writeCliStandIn(join(dir, 'in/cli'));
  const configDir = join(dir, 'in/config');
  mkdirSync(configDir, { recursive: true });
  for (const name of ['agent', 'controller', 'router']) writeFileSync(join(configDir, `${name}.yaml`), `# ${name} stand-in\n`);
  // A stand-in node: 100 MB less to copy and pack than the real one, and it runs the same scripts.
  const nodeBinary = writeScript(join(dir, 'in/node'), `exec ${JSON.stringify(process.execPath)} "$@"`);
  return { version, agentArtifact, cliDir, configDir, outDir: join(dir, 'out'), nodeBinary, compression: 'gzip' };
}

export function writeScript(path: string, body: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

/** A CLI "bundle" that runs the tsc build's CLI, so the packaged /usr/bin/fleetwave answers like the real one. */
function writeCliStandIn(cliDir: string): string {
  mkdirSync(join(cliDir, 'assets'), { recursive: true });
  writeFileSync(join(cliDir, 'fleetwave.cjs'), `import(${JSON.stringify(CLI_MAIN)});\n`);
  writeFileSync(join(cliDir, 'assets/fleetwave.lua'), '-- stand-in\n');
  return cliDir;
}
