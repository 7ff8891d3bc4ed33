// Test support for the daemons' config schemas: the schema has one key per flag, and the shipped example file
// (deploy/config/<daemon>.yaml) parses with it and, like docs/configuration.md, documents every key.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { readConfigFile } from './config-file.js';
import type { DaemonSchema } from './config-schema.js';

/** Flags that are not configuration: they say where the file is, or what to print instead of running. */
const NOT_KEYS = ['--config', '--print-config', '--print-haproxy-config', '--help'];

/** The schema's keys and the daemon's long flags (both as --flag, sorted): a new flag needs its key. */
export function schemaKeysAndFlags(register: (program: Command) => void, daemon: string, schema: DaemonSchema): { keys: string[]; flags: string[] } {
  const program = new Command();
  register(program);
  const cmd = program.commands.find((c) => c.name() === daemon)!;
  return {
    keys: Object.keys(schema.shape).map((k) => `--${k}`).sort(),
    flags: cmd.options.map((o) => o.long!).filter((long) => !NOT_KEYS.includes(long)).sort(),
  };
}

/** The example's values (parsed with the schema) and the keys the example or docs/configuration.md leave out. */
export function readExample(repoRoot: string, daemon: string, schema: DaemonSchema): { values: Record<string, unknown>; notInExample: string[]; notInDocs: string[] } {
  const path = join(repoRoot, 'deploy', 'config', `${daemon}.yaml`);
  const text = readFileSync(path, 'utf8');
  const docs = readFileSync(join(repoRoot, 'docs', 'configuration.md'), 'utf8');
  const keys = Object.keys(schema.shape);
  return {
    values: readConfigFile(path, schema),
    notInExample: keys.filter((key) => !new RegExp(`^(# )?${key}:`, 'm').test(text)),
    notInDocs: keys.filter((key) => !docs.includes(`\`${key}\``)),
  };
}
