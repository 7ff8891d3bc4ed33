// Config files: precedence (flag > env > file > default), one-line errors naming file/key/expectation, secrets
// masked in --print-config, and the printed configuration read back as a config file.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BadInputError } from './errors.js';
import { configFileFlags, loadEffectiveConfig, readConfigFile, suggest, type EffectiveConfig } from './config-file.js';
import { count, daemonSchema, duration, flag, labels, list, size, text } from './config-schema.js';

const schema = daemonSchema({
  'data-dir': text('a directory'),
  group: text('a group name'),
  label: labels(),
  instance: list('APP:PORT'),
  'gate-hold': duration(),
  'keep-editions': count(),
  'max-package-size': size(),
  insecure: flag(),
  'join-token': text('a join token'),
  'join-token-file': text('a file path'),
});

const dir = mkdtempSync(join(tmpdir(), 'fleetwave-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const ENV = ['FLEETWAVE_TEST_TOKEN', 'FLEETWAVE_TEST_GROUP', 'FLEETWAVE_CONFIG'];
afterEach(() => {
  for (const name of ENV) delete process.env[name];
});

let files = 0;
function file(yaml: string): string {
  const path = join(dir, `c${files++}.yaml`);
  writeFileSync(path, yaml);
  return path;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

/** A daemon command like the real ones (defaults, a repeatable flag, env fallbacks), parsed from `args`. */
async function parse(args: string[]): Promise<{ config: EffectiveConfig; command: Command }> {
  const command = new Command('demo').exitOverride();
  command
    .option('--data-dir <dir>', 'state', './state')
    .addOption(new Option('--group <name>', 'group').default('default').env('FLEETWAVE_TEST_GROUP'))
    .option('--label <key=value>', 'label', collect, [])
    .option('--instance <app:port>', 'instance', collect, [])
    .option('--gate-hold <duration>', 'hold', '1.5s')
    .option('--keep-editions <n>', 'kept', '3')
    .option('--max-package-size <size>', 'size', '2GiB')
    .option('--insecure', 'plaintext', false)
    .option('--join-token-file <path>', 'token file')
    .addOption(new Option('--join-token <token>', 'token').env('FLEETWAVE_TEST_TOKEN'));
  let config: EffectiveConfig | undefined;
  configFileFlags(command).action((_flags: unknown, cmd: Command) => {
    config = loadEffectiveConfig(cmd, schema);
    config.check();
  });
  await command.parseAsync(args, { from: 'user' });
  return { config: config!, command };
}

async function failure(args: string[]): Promise<string> {
  const err = await parse(args).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BadInputError);
  const message = (err as Error).message;
  expect(message.split('\n')).toHaveLength(1);
  return message;
}

describe('precedence: flag > environment > config file > default', () => {
  it('takes each value from the highest place that gives it, and records which', async () => {
    const path = file('group: from-file\ndata-dir: /var/lib/x\ngate-hold: 2s\njoin-token: from-file\nkeep-editions: 5\n');
    process.env.FLEETWAVE_TEST_GROUP = 'from-env';
    process.env.FLEETWAVE_TEST_TOKEN = 'from-env';
    const { config, command } = await parse(['--config', path, '--gate-hold', '3s']);
    expect(command.opts()).toMatchObject({ gateHold: '3s', group: 'from-env', joinToken: 'from-env', dataDir: '/var/lib/x', keepEditions: 5, maxPackageSize: '2GiB' });
    expect(['gate-hold', 'group', 'data-dir', 'max-package-size'].map((k) => config.source(k))).toEqual(['cli', 'env', 'config', 'default']);
  });

  it('finds the file through FLEETWAVE_CONFIG; a flag replaces a list from the file rather than adding to it', async () => {
    process.env.FLEETWAVE_CONFIG = file('instance: [shop:8080, api:9090]\nlabel: [zone=eu-1]\n');
    const { command } = await parse(['--instance', 'web:80']);
    expect(command.opts()).toMatchObject({ instance: ['web:80'], label: ['zone=eu-1'] });
  });

  it('reads labels as a map or a list, and a single text as a list of one', async () => {
    expect((await parse(['--config', file('label: {zone: eu-1, rack: 7, ssd: true}\ninstance: shop:8080\n')])).command.opts()).toMatchObject({
      label: ['zone=eu-1', 'rack=7', 'ssd=true'],
      instance: ['shop:8080'],
    });
  });

  it('takes a YAML number for a text key as its text (group: 7)', async () => {
    expect((await parse(['--config', file('group: 7\n')])).command.opts().group).toBe('7');
  });

  it('keeps the best-placed of exclusive keys: a flag file over an env token, an env token over a file in the config', async () => {
    process.env.FLEETWAVE_TEST_TOKEN = 'from-env';
    const viaFlag = await parse(['--config', file('group: g\n'), '--join-token-file', '/tmp/t']);
    viaFlag.config.preferHighest(['join-token-file', 'join-token']);
    expect(viaFlag.command.opts()).toMatchObject({ joinTokenFile: '/tmp/t', joinToken: undefined });
    const viaEnv = await parse(['--config', file('join-token-file: /etc/fleetwave/join.token\n')]);
    viaEnv.config.preferHighest(['join-token-file', 'join-token']);
    expect(viaEnv.command.opts()).toMatchObject({ joinTokenFile: undefined, joinToken: 'from-env' });
  });
});

describe('errors: one line naming the file, the key and what is expected', () => {
  it.each([
    ['gate-hold: fast\n', /c\d+\.yaml: gate-hold: expected a duration such as 1\.5s, got "fast"$/],
    ['gate-hold: 2\n', /gate-hold: expected a duration such as 1\.5s, got 2$/],
    ['keep-editions: -1\n', /keep-editions: expected a whole number, got -1$/],
    ['max-package-size: lots\n', /max-package-size: expected a size such as 512MiB or a number of bytes, got "lots"$/],
    ['insecure: yes\n', /insecure: expected true or false, got "yes"$/],
    ['instance: {shop: 8080}\n', /instance: expected a list of APP:PORT, got \{"shop":8080\}$/],
    ['label: {zone: {a: 1}}\n', /label: expected a list of key=value or a map of key: value/],
    ['data_dir: /x\n', /c\d+\.yaml: unknown key "data_dir" \(did you mean data-dir\?\)$/],
    ['colour: blue\n', /unknown key "colour" \(the keys are the long flag names, see --help\)$/],
    ['- a\n- b\n', /expected a map of keys \(data-dir: \/var\/lib\/\.\.\.\), got a list$/],
    ['group: [\n', /c\d+\.yaml: not valid YAML: .* at line \d+, column \d+:$/],
    ['group: a\ngroup: b\n', /not valid YAML: Map keys must be unique/],
  ])('%j', async (yaml, pattern) => {
    expect(await failure(['--config', file(yaml)])).toMatch(pattern);
  });

  it('never echoes a secret, even a wrong one', async () => {
    const message = await failure(['--config', file('join-token: [fwt_secret]\n')]);
    expect(message).toMatch(/join-token: expected a join token$/);
    expect(message).not.toContain('fwt_secret');
  });

  it('names an unreadable file', async () => {
    expect(await failure(['--config', join(dir, 'missing.yaml')])).toMatch(/missing\.yaml: cannot read the config file: ENOENT$/);
  });

  it('names the flag or the environment variable when the bad value came from there', async () => {
    expect(await failure(['--gate-hold', 'soon'])).toBe('--gate-hold: expected a duration such as 1.5s, got "soon"');
    process.env.FLEETWAVE_TEST_GROUP = '';
    process.env.FLEETWAVE_TEST_TOKEN = 'x';
    const { config } = await parse([]);
    expect(config.where('join-token')).toBe('FLEETWAVE_TEST_TOKEN (--join-token)');
  });

  it("explains an option compiler's error about a file value as the file's", async () => {
    const path = file('group: "bad name"\n');
    const { config } = await parse(['--config', path]);
    const explained = config.explain(new BadInputError("--group: 'bad name' may hold only letters")) as Error;
    expect(explained.message).toBe(`${path}: group: 'bad name' may hold only letters`);
    expect((config.explain(new BadInputError('--data-dir: nope')) as Error).message).toBe('--data-dir: nope');
    expect((config.explain(new BadInputError('--unknown-flag: x')) as Error).message).toBe('--unknown-flag: x');
  });
});

describe('--print-config', () => {
  it('prints every key with where it came from, masks secrets, and reads back as the same configuration', async () => {
    const path = file('data-dir: /var/lib/x\nlabel: {zone: eu-1}\njoin-token: fwt_very-secret\n');
    const { config } = await parse(['--config', path, '--insecure']);
    const text = config.render('demo');
    expect(text).not.toContain('fwt_very-secret');
    expect(text).toContain('join-token: "***"  # ' + path);
    expect(text).toContain('data-dir: /var/lib/x  # ' + path);
    expect(text).toContain('insecure: true  # flag');
    expect(text).toContain('keep-editions: 3  # default');
    expect(text).toContain('label:  # ' + path + '\n  - zone=eu-1\n');
    expect(text).toContain('# join-token-file: (not set)');
    const back = readConfigFile(file(text), schema);
    expect(back).toEqual({
      'data-dir': '/var/lib/x',
      group: 'default',
      label: ['zone=eu-1'],
      instance: [],
      'gate-hold': '1.5s',
      'keep-editions': 3,
      'max-package-size': '2GiB',
      insecure: true,
      'join-token': '***',
    });
  });
});

describe('suggest', () => {
  it('finds the key meant by a snake_case, upper-case or misspelt one', () => {
    const keys = ['data-dir', 'gate-hold', 'join-token'];
    expect(suggest('DATA_DIR', keys)).toBe('data-dir');
    expect(suggest('gate-hodl', keys)).toBe('gate-hold');
    expect(suggest('colour', keys)).toBeUndefined();
  });
});
