// A daemon's config file (YAML, keys = the long flag names) merged under its flags and environment, checked with
// the daemon's schema, explained in one line when wrong, and printed back with secrets masked (--print-config).
//
// Precedence, highest first: flag > environment (Option.env) > config file > default. Commander records where each
// value came from (getOptionValueSource: 'cli', 'env', 'default'); a file value is set only where the source is
// still the default, and recorded as 'config'.
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { parseDocument, stringify } from 'yaml';
import type { z } from 'zod';
import { BadInputError } from './errors.js';
import type { DaemonSchema } from './config-schema.js';

export const CONFIG_ENV = 'FLEETWAVE_CONFIG';

/** Where a value came from, as commander records it (plus 'config' for the file). */
export type ValueSource = 'cli' | 'env' | 'config' | 'default' | 'implied' | undefined;
const RANK: Record<string, number> = { cli: 4, env: 3, config: 2, implied: 1, default: 0 };

/**
 * Keys whose values are secrets: masked in --print-config and never echoed in an error. "key" is not in the list:
 * every *-key option (tls-key) names a file, not the key's bytes.
 */
export const SECRET_KEY = /(^|-)(token|pass|password|secret)$/;

/** Registers --config (env FLEETWAVE_CONFIG) and --print-config on a daemon command. */
export function configFileFlags(cmd: Command): Command {
  return cmd
    .addOption(new Option('--config <file>', 'YAML config file; keys are the long flag names (data-dir: ...); flags and environment override it').env(CONFIG_ENV))
    .option('--print-config', 'print the effective configuration as YAML (secrets masked, where each value came from) and exit', false);
}

/** Reads and checks a config file; returns its values keyed as in the file, repeatable keys as lists. */
export function readConfigFile(path: string, schema: DaemonSchema): Record<string, unknown> {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BadInputError(`${path}: cannot read the config file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const doc = parseDocument(source);
  const yamlError = doc.errors[0];
  if (yamlError) throw new BadInputError(`${path}: not valid YAML: ${yamlError.message.split('\n')[0]}`, { cause: yamlError });
  const values: unknown = doc.toJS() ?? {};
  if (typeof values !== 'object' || Array.isArray(values)) {
    throw new BadInputError(`${path}: expected a map of keys (data-dir: /var/lib/...), got ${Array.isArray(values) ? 'a list' : JSON.stringify(values)}`);
  }
  const parsed = schema.safeParse(values);
  if (!parsed.success) {
    const { key, problem } = describeIssue(parsed.error.issues[0]!, values as Record<string, unknown>, schema);
    throw new BadInputError(key ? `${path}: ${key}: ${problem}` : `${path}: ${problem}`);
  }
  return parsed.data as Record<string, unknown>;
}

/** The merged configuration of one daemon command, and where each value came from. */
export class EffectiveConfig {
  constructor(
    private readonly cmd: Command,
    private readonly schema: DaemonSchema,
    /** The config file, or null when none was given. */
    readonly file: string | null,
  ) {}

  /** The schema's keys, in its order. */
  keys(): string[] {
    return Object.keys(this.schema.shape);
  }

  value(key: string): unknown {
    return this.cmd.getOptionValue(this.option(key).attributeName());
  }

  source(key: string): ValueSource {
    return this.cmd.getOptionValueSource(this.option(key).attributeName()) as ValueSource;
  }

  /** How an error names the key: the flag, the environment variable or the file. */
  where(key: string): string {
    const source = this.source(key);
    if (source === 'config') return `${this.file}: ${key}`;
    if (source === 'env') return `${this.option(key).envVar} (--${key})`;
    return `--${key}`;
  }

  /** Checks the merged values with the schema; throws one line naming where the bad value came from. */
  check(): void {
    const merged: Record<string, unknown> = {};
    for (const key of this.keys()) if (this.value(key) !== undefined) merged[key] = this.value(key);
    const parsed = this.schema.safeParse(merged);
    if (parsed.success) return;
    const { key, problem } = describeIssue(parsed.error.issues[0]!, merged, this.schema);
    throw new BadInputError(`${this.where(key)}: ${problem}`);
  }

  /**
   * An option compiler's error names a flag (`--gate-hold: ...`); when that value came from the file or the
   * environment, say so, so the operator edits the right place.
   */
  explain(err: unknown): unknown {
    if (!(err instanceof BadInputError)) return err;
    const match = /^--([a-z0-9-]+)(:? )/.exec(err.message);
    if (!match || !this.keys().includes(match[1]!)) return err;
    const where = this.where(match[1]!);
    if (where === `--${match[1]}`) return err;
    return new BadInputError(`${where}${match[2]}${err.message.slice(match[0].length)}`, { cause: err });
  }

  /** The effective configuration as YAML a config file could hold, each line saying where its value came from. */
  render(daemon: string): string {
    const lines = [
      `# fleetwave ${daemon}: effective configuration (flag > environment > ${this.file ?? 'config file (none given)'} > default)`,
      '# secrets are shown as "***"',
    ];
    for (const key of this.keys()) {
      const value = this.value(key);
      if (value === undefined) {
        lines.push(`# ${key}: (not set)`);
        continue;
      }
      // Defaults are the flags' texts ("1000"); shown as numbers they read as an operator would write them.
      const shown = SECRET_KEY.test(key) ? '***' : typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
      const [first, ...rest] = stringify({ [key]: shown }, { lineWidth: 0 }).trimEnd().split('\n');
      lines.push(`${first}  # ${this.describeSource(key)}`, ...rest);
    }
    return lines.join('\n') + '\n';
  }

  /** Drops values of mutually exclusive keys given at a lower precedence than another of their group. */
  preferHighest(group: string[]): void {
    const given = group.filter((key) => this.value(key) !== undefined && this.source(key) !== 'default');
    const best = Math.max(...given.map((key) => RANK[this.source(key) ?? 'default']!));
    for (const key of given) {
      if (RANK[this.source(key) ?? 'default']! < best) this.cmd.setOptionValueWithSource(this.option(key).attributeName(), undefined, 'default');
    }
  }

  private describeSource(key: string): string {
    switch (this.source(key)) {
      case 'cli':
        return 'flag';
      case 'env':
        return `env ${this.option(key).envVar}`;
      case 'config':
        return this.file!;
      default:
        return 'default';
    }
  }

  private option(key: string): Option {
    const option = this.cmd.options.find((o) => o.long === `--${key}`);
    if (!option) throw new Error(`config key ${key} has no flag --${key}`);
    return option;
  }
}

/**
 * Merges the --config file (if any) under the flags and environment of `cmd` and checks the result with `schema`.
 * Call it from the command's action, before compiling the options.
 */
export function loadEffectiveConfig(cmd: Command, schema: DaemonSchema): EffectiveConfig {
  const file = (cmd.getOptionValue('config') as string | undefined) || null;
  const config = new EffectiveConfig(cmd, schema, file);
  if (file) {
    for (const [key, value] of Object.entries(readConfigFile(file, schema))) {
      const attribute = cmd.options.find((o) => o.long === `--${key}`)!.attributeName();
      const source = cmd.getOptionValueSource(attribute) as ValueSource;
      if (source === undefined || RANK[source]! < RANK.config!) cmd.setOptionValueWithSource(attribute, value, 'config');
    }
  }
  return config;
}

/** The key at fault ('' for an unknown key) and "expected ..., got ..." (or the unknown key with a suggestion). */
function describeIssue(issue: z.core.$ZodIssue, values: Record<string, unknown>, schema: DaemonSchema): { key: string; problem: string } {
  if (issue.code === 'unrecognized_keys') {
    const unknown = issue.keys[0]!;
    const near = suggest(unknown, Object.keys(schema.shape));
    return { key: '', problem: `unknown key "${unknown}"${near ? ` (did you mean ${near}?)` : ' (the keys are the long flag names, see --help)'}` };
  }
  const key = String(issue.path[0] ?? '');
  const value = values[key];
  // A secret is never echoed, not even a wrong one.
  const got = SECRET_KEY.test(key) ? '' : `, got ${shorten(JSON.stringify(value) ?? String(value))}`;
  return { key, problem: `${issue.message}${got}` };
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** The known key an unknown one most likely meant: same up to case and _ for -, or at most two edits away. */
export function suggest(key: string, known: string[]): string | undefined {
  const normal = key.toLowerCase().replace(/_/g, '-');
  const exact = known.find((k) => k === normal);
  if (exact) return exact;
  let best: { key: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(normal, k);
    if (distance <= 2 && (!best || distance < best.distance)) best = { key: k, distance };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
