// Releases and apps as files (`release create APP -f release.yaml`, `app apply -f app.yaml`): YAML or JSON whose keys
// are the long flag names. Each kind's options are one table below; the commander options and the zod schema (and so
// the JSON Schema editors read, docs/schema/) are both built from it, so flags and file cannot drift apart. A file's
// values become the flags' values and go through the same builder (options.ts), so both are checked one way.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseDocument } from 'yaml';
// zod: already the project's boundary parser (common/config-schema.ts); zod 4 also writes the JSON Schema (z.toJSONSchema).
import { z } from 'zod';
import { BadInputError } from '../common/errors.js';
import { suggest } from '../common/config-file.js';
import { collect } from './options.js';

/** One option of a kind: its flag, its help, and what a file may hold for it. */
export interface SpecOption {
  /** The long flag's name and the file's key (`--no-start` is the key `start`, false when given). */
  key: string;
  /** The flag as commander takes it, e.g. '--edition <name>'. */
  flag: string;
  help: string;
  schema: z.ZodType;
  /** A repeatable flag (collected into a list). */
  repeatable?: boolean;
}

export type SpecKind = 'release' | 'app';

// YAML reads `edition: 2.0` as the number 2: the text is lost, so the error says to quote it rather than guess.
const text = () =>
  z.string({ error: (issue) => (typeof issue.input === 'number' ? 'expected text; quote a number-like value ("2.0")' : 'expected text') }).min(1, { error: 'expected text, not empty' });
const WHOLE = { error: 'expected a whole number ≥ 1' };
const count = () => z.number(WHOLE).int(WHOLE).min(1, WHOLE);
// The shape parseDuration takes; it says what is wrong with a value of that shape.
// A bare YAML number is refused (seconds or milliseconds would be a guess); the text "500" is 500ms, as on the flag.
const DURATION = { error: 'expected a duration such as 500ms, 30s or 2m' };
const duration = () => z.string(DURATION).regex(/^\s*\d+(\.\d+)?\s*[a-zA-Z]*\s*$/, DURATION);
const yesNo = () => z.boolean({ error: 'expected true or false' });
const batchNumbers = () => z.array(count()).min(1);
const oneOf = <T extends string>(words: readonly [T, ...T[]]) => z.enum(words, { error: `expected one of ${words.join(', ')}` });
const UPDATE_ORDERS = ['start-first', 'stop-first'] as const;

export const RELEASE_OPTIONS: readonly SpecOption[] = [
  { key: 'edition', flag: '--edition <name>', help: 'edition to release (required, except with --from-validation or --operation clone)', schema: text() },
  { key: 'group', flag: '--group <name>', help: 'instance group, or all (default all)', schema: text() },
  { key: 'from-validation', flag: '--from-validation', help: "roll out the edition of the app's validation to its target, then remove the clone (its rule removed, its app stopped)", schema: yesNo() },
  { key: 'operation', flag: '--operation <op>', help: "clone: copy the app's current default edition (and its spec) onto --to GROUP", schema: oneOf(['clone']) },
  { key: 'to', flag: '--to <group>', help: 'the group --operation clone copies onto', schema: text() },
  { key: 'strategy', flag: '--strategy <name>', help: 'rolling (N batches per group), grouped (fixed group size) or atomic (two halves; the routers switch the default edition between them)', schema: oneOf(['rolling', 'grouped', 'atomic']) },
  { key: 'batches', flag: '--batches <n>', help: 'batches per group (rolling)', schema: count() },
  { key: 'group-size', flag: '--group-size <k>', help: 'instances per batch (grouped)', schema: count() },
  { key: 'batch-mode', flag: '--batch-mode <mode>', help: 'auto (wait between batches) or manual (continue each batch)', schema: oneOf(['auto', 'manual']) },
  { key: 'wait', flag: '--wait <duration>', help: 'wait between automatic batches', schema: duration() },
  { key: 'reset', flag: '--reset <kind>', help: 'soft (restart the app) or hard (reset the server)', schema: oneOf(['soft', 'hard']) },
  { key: 'update-order', flag: '--update-order <order>', help: "soft resets of this release: start-first or stop-first (default: the app's)", schema: oneOf(UPDATE_ORDERS) },
  { key: 'drain', flag: '--drain <duration>', help: 'drainage interval: longest wait for in-flight requests', schema: duration() },
  { key: 'full-drain', flag: '--full-drain', help: 'wait the whole drainage interval, even once no request is in flight', schema: yesNo() },
  { key: 'best-effort', flag: '--best-effort <on|off>', help: 'after the first batch, continue past failed instances (on) or fail (off)', schema: oneOf(['on', 'off']) },
  { key: 'auto-rollback', flag: '--auto-rollback', help: 'roll back automatically when the release fails', schema: yesNo() },
  { key: 'max-unavailable', flag: '--max-unavailable <k>', help: 'instances out of service at once, at most', schema: count() },
  { key: 'approval-before', flag: '--approval-before <batches>', help: 'batch numbers (e.g. 2,3) that need an approval first', schema: batchNumbers() },
  { key: 'trigger-before', flag: '--trigger-before <batches>', help: 'batch numbers that wait for a manual trigger', schema: batchNumbers() },
  { key: 'download-timeout', flag: '--download-timeout <duration>', help: 'deadline of the download step', schema: duration() },
  { key: 'start-timeout', flag: '--start-timeout <duration>', help: 'deadline of the start/restart step', schema: duration() },
  { key: 'health-timeout', flag: '--health-timeout <duration>', help: 'deadline of the health step', schema: duration() },
  { key: 'stop-timeout', flag: '--stop-timeout <duration>', help: 'deadline of the stop step', schema: duration() },
  { key: 'force', flag: '--force', help: 'go ahead although the release leaves an edition that routing rules name active nowhere (those rules then fall back to the default edition)', schema: yesNo() },
  { key: 'start', flag: '--no-start', help: 'create the release in "To release"; start it with `release start` (in a file: start: false)', schema: yesNo() },
];

export const APP_OPTIONS: readonly SpecOption[] = [
  { key: 'start', flag: '--start <command>', help: 'start command, split on whitespace, run without a shell in the edition directory', schema: text() },
  { key: 'start-arg', flag: '--start-arg <arg>', help: 'one argument of the start command (repeatable; for arguments with spaces)', schema: z.array(z.string()).min(1), repeatable: true },
  {
    key: 'env',
    flag: '--env <K=V>',
    help: 'environment variable for the app (repeatable; in a file: a map of NAME: value)',
    schema: z.record(z.string().regex(/^[^=]+$/, { error: 'expected a variable name without =' }), z.union([z.string(), z.number(), z.boolean()])),
    repeatable: true,
  },
  { key: 'port-env', flag: '--port-env <name>', help: 'variable that carries the port the app listens on (default PORT)', schema: text() },
  { key: 'health-path', flag: '--health-path <path>', help: 'HTTP path probed for health (default /healthz)', schema: z.string().startsWith('/', { error: 'expected a path starting with /' }) },
  { key: 'stop-timeout', flag: '--stop-timeout <duration>', help: 'SIGTERM to SIGKILL delay (default 10s)', schema: duration() },
  { key: 'drain-mode', flag: '--drain-mode <mode>', help: "gate (the agent's traffic gate drains it, default) or self (the app drains itself)", schema: oneOf(['gate', 'self']) },
  { key: 'quiesce-hook', flag: '--quiesce-hook <path|signal>', help: 'drain mode self: a path the agent POSTs (/quiesce) or a signal it sends (SIGUSR2)', schema: text() },
  { key: 'hold', flag: '--hold <duration>', help: "longest the gate holds a request while the app restarts, then 503 + Retry-After (default: the agent's --gate-hold, 1.5s)", schema: duration() },
  { key: 'inflight-path', flag: '--inflight-path <path>', help: 'drain mode self: a path answering the requests in flight ({"inFlight": N})', schema: text() },
  { key: 'update-order', flag: '--update-order <order>', help: 'soft resets: start-first (new process beside the old, then switch; default) or stop-first (for an app that cannot run twice on one host)', schema: oneOf(UPDATE_ORDERS) },
  { key: 'start-grace', flag: '--start-grace <duration>', help: 'longest a start waits after spawn when the health check does not pass sooner (default 500ms)', schema: duration() },
  { key: 'health-initial-interval', flag: '--health-initial-interval <duration>', help: "first wait between health probes, doubling up to the check's interval (default 50ms)", schema: duration() },
];

/** Each kind: its options, and the key naming what it applies to (the positional argument of its verb). */
const KINDS = {
  release: { options: RELEASE_OPTIONS, subject: 'app', subjectHelp: 'the application released (or the argument APP)' },
  app: { options: APP_OPTIONS, subject: 'name', subjectHelp: 'the application name (or the argument NAME)' },
} as const;

/** Adds the kind's options to a verb, in the table's order. */
export function addSpecOptions(cmd: Command, kind: SpecKind): Command {
  for (const o of KINDS[kind].options) {
    if (o.repeatable) cmd.option(o.flag, o.help, collect);
    else cmd.option(o.flag, o.help);
  }
  return cmd;
}

/** The schema of a file of this kind: every key optional, unknown keys refused. */
export function specSchema(kind: SpecKind) {
  const { options, subject, subjectHelp } = KINDS[kind];
  const shape: Record<string, z.ZodType> = {
    // Editors (VS Code, JetBrains) read a JSON file's schema from this key; YAML files name it in a comment instead.
    $schema: z.string().describe('URL or path of this JSON Schema, for editors').optional(),
    [subject]: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, { error: 'expected a name such as shop' }).describe(subjectHelp).optional(),
  };
  for (const o of options) shape[o.key] = o.schema.describe(o.help).optional();
  return z.strictObject(shape);
}

/** The JSON Schema of a kind's file, as committed at docs/schema/KIND.schema.json. */
export function specJsonSchema(kind: SpecKind): string {
  const schema = z.toJSONSchema(specSchema(kind), { target: 'draft-2020-12' }) as Record<string, unknown>;
  const titled = { $schema: schema.$schema, $id: `https://fleetwave.dev/schema/${kind}.schema.json`, title: `fleetwave ${kind} file`, ...schema };
  return `${JSON.stringify(titled, null, 2)}\n`;
}

/** A file read and checked: its values as the verb's flags would hold them, and where each came from. */
export interface SpecFile {
  path: string;
  /** The file's subject (app / name), if it names one. */
  subject?: string;
  /** Option values keyed by commander's attribute name, as the flags give them (texts, lists of texts, booleans). */
  flags: Record<string, unknown>;
  /** The keys the file gave. */
  keys: Set<string>;
}

/** Reads a release or app file (YAML; JSON is YAML too) and checks it with the kind's schema; one line when wrong. */
export function readSpecFile(path: string, kind: SpecKind): SpecFile {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch (err) {
    throw new BadInputError(`${path}: cannot read the ${kind} file: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  const doc = parseDocument(source);
  const yamlError = doc.errors[0];
  if (yamlError) throw new BadInputError(`${path}: not valid YAML or JSON: ${yamlError.message.split('\n')[0]}`, { cause: yamlError });
  const values: unknown = doc.toJS() ?? {};
  if (typeof values !== 'object' || values === null || Array.isArray(values)) {
    throw new BadInputError(`${path}: expected a map of keys (the long flag names, e.g. edition: 2.0), got ${Array.isArray(values) ? 'a list' : JSON.stringify(values)}`);
  }
  const schema = specSchema(kind);
  const parsed = schema.safeParse(values);
  if (!parsed.success) throw new BadInputError(`${path}: ${describeIssue(parsed.error.issues[0]!, values as Record<string, unknown>, Object.keys(schema.shape))}`);
  const data = parsed.data as Record<string, unknown>;
  const flags: Record<string, unknown> = {};
  const keys = new Set<string>();
  for (const o of KINDS[kind].options) {
    if (data[o.key] === undefined) continue;
    keys.add(o.key);
    flags[attributeOf(o.key)] = asFlagValue(o.key, data[o.key]);
  }
  const subject = data[KINDS[kind].subject] as string | undefined;
  return { path, subject, flags, keys };
}

/**
 * The verb's values: the file's, overridden by every flag given on the command line. `subjectArg` is the verb's
 * positional argument; given beside a file that names another subject, it is refused (a typo must not release to the
 * wrong app).
 */
export function mergeSpec(cmd: Command, file: SpecFile | undefined, subjectArg: string | undefined, kind: SpecKind): { subject: string; flags: Record<string, unknown> } {
  const flags: Record<string, unknown> = { ...file?.flags };
  for (const o of KINDS[kind].options) {
    const attribute = attributeOf(o.key);
    const source = cmd.getOptionValueSource(attribute);
    if (source === 'cli' || source === 'env') flags[attribute] = cmd.getOptionValue(attribute);
    else if (!(attribute in flags) && cmd.getOptionValue(attribute) !== undefined) flags[attribute] = cmd.getOptionValue(attribute);
  }
  const { subject: key } = KINDS[kind];
  if (subjectArg !== undefined && file?.subject !== undefined && file.subject !== subjectArg) {
    throw new BadInputError(`${file.path}: ${key}: the file is for '${file.subject}', the command line says '${subjectArg}'`);
  }
  const subject = subjectArg ?? file?.subject;
  if (subject === undefined) {
    throw new BadInputError(file ? `${file.path}: ${key}: missing (give it in the file or as the argument)` : `missing required argument '${key}'`);
  }
  return { subject, flags };
}

/** A builder's error names a flag (`--batches: ...`); when that value came from the file, name the file and key. */
export function explainSpecError(err: unknown, file: SpecFile | undefined, cmd: Command): unknown {
  if (!file || !(err instanceof BadInputError)) return err;
  const match = /^--([a-z0-9-]+)(:? )/.exec(err.message);
  if (!match || !file.keys.has(match[1]!)) return err;
  if (['cli', 'env'].includes(cmd.getOptionValueSource(attributeOf(match[1]!)) ?? '')) return err;
  return new BadInputError(`${file.path}: ${match[1]}${match[2]}${err.message.slice(match[0].length)}`, { cause: err });
}

/** commander's attribute for a long flag name: start-timeout → startTimeout. */
export function attributeOf(key: string): string {
  return key.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** A file value as the flag's text: numbers as text, batch lists as "2,3", an env map as ["K=V"]. */
function asFlagValue(key: string, value: unknown): unknown {
  if (typeof value === 'number') return String(value);
  if (key === 'env' && typeof value === 'object' && value !== null) return Object.entries(value).map(([k, v]) => `${k}=${String(v)}`);
  if (key === 'approval-before' || key === 'trigger-before') return (value as number[]).join(',');
  return value;
}

/** "KEY: expected ..., got ..." for the first issue; an unknown key with the known key it most likely meant. */
function describeIssue(issue: z.core.$ZodIssue, values: Record<string, unknown>, known: string[]): string {
  if (issue.code === 'unrecognized_keys') {
    const unknown = issue.keys[0]!;
    const near = suggest(unknown, known);
    return `unknown key "${unknown}"${near ? ` (did you mean ${near}?)` : ' (the keys are the long flag names, see --help)'}`;
  }
  const key = issue.path.map(String).join('.');
  const top = values[String(issue.path[0])];
  const got = JSON.stringify(top) ?? String(top);
  const message = issue.code === 'invalid_type' && !issue.message.startsWith('expected') ? `expected ${issue.expected}` : issue.message;
  return `${key}: ${message}, got ${got.length > 60 ? `${got.slice(0, 57)}...` : got}`;
}
