// Inputs for deploy/dist/deb.ts in a scratch dir: the real agent and CLI bundles (deploy/dist/bundle.ts), or
// stand-ins that run this checkout's tsc build (fast, for suites that only look at the packages' shape). Env
// FLEETWAVE_DEB_AGENT_ARTIFACT (a SEA executable or a .cjs bundle, e.g. make dist's) and FLEETWAVE_DEB_CLI_DIR
// (buildCliBundle's output) choose the artifacts under test instead.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildAgentBundle, buildCliBundle } from '../../deploy/dist/bundle.js';
import type { DebInputs } from '../../deploy/dist/deb.js';
import { CLI_MAIN } from '../harness/fleet.js';

export const AGENT_ARTIFACT_ENV = 'FLEETWAVE_DEB_AGENT_ARTIFACT';
export const CLI_DIR_ENV = 'FLEETWAVE_DEB_CLI_DIR';

/** Writes (or builds) the inputs under `dir/in`; the packages go to `dir/out`. */
export async function scratchDebInputs(dir: string, o: { version?: string; artifacts?: 'bundles' | 'stand-ins' } = {}): Promise<DebInputs> {
  const version = o.version ?? '0.1.0';
  const bundles = (o.artifacts ?? 'bundles') === 'bundles';
  let agentArtifact = process.env[AGENT_ARTIFACT_ENV];
  if (!agentArtifact && bundles) await buildAgentBundle({ outFile: (agentArtifact = join(dir, 'in/fleetwave-agent.cjs')), version });
  agentArtifact ??= writeScript(join(dir, 'in/fleetwave-agent'), `exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI_MAIN)} agent "$@"`);
  let cliDir = process.env[CLI_DIR_ENV];
  if (!cliDir && bundles) await buildCliBundle({ outDir: (cliDir = join(dir, 'in/fleetwave')), version });
  cliDir ??= writeCliStandIn(join(dir, 'in/fleetwave'));
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

/** A CLI "bundle" that runs the tsc build's CLI, laid out as buildCliBundle's output. */
function writeCliStandIn(cliDir: string): string {
  mkdirSync(cliDir, { recursive: true });
  writeFileSync(join(cliDir, 'fleetwave.cjs'), `import(${JSON.stringify(CLI_MAIN)});\n`);
  writeFileSync(join(cliDir, 'fleetwave.lua'), '-- stand-in\n');
  return cliDir;
}
