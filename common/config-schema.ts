// The value kinds a daemon's config schema is built from: each checks one key's type and format and says, in one
// phrase, what it expects ("a duration such as 1.5s"), so an error can name the file, the key and the expectation.
import { z } from 'zod';
import { parseByteSize } from './sizes.js';
import { parseDuration } from './durations.js';

/** A key's check; `expected` is the phrase errors show after "expected". */
function kind<T>(expected: string, ok: (value: unknown) => value is T) {
  return z.custom<T>((value) => ok(value), { error: `expected ${expected}` });
}

const isString = (v: unknown): v is string => typeof v === 'string';
const succeeds = (parse: () => unknown): boolean => {
  try {
    parse();
    return true;
  } catch {
    return false;
  }
};

/** Free text (a path, an address, a name): the daemon's own option compiler checks the format. A YAML number
 * (`group: 7`) is taken as its text. */
export const text = (expected = 'text') =>
  kind<string | number>(expected, (v): v is string | number => isString(v) || (typeof v === 'number' && Number.isFinite(v))).transform(String);

/** true or false (YAML's yes/no are text in YAML 1.2, so they are refused rather than guessed). */
export const flag = () => kind<boolean>('true or false', (v): v is boolean => typeof v === 'boolean');

/** A whole number, as a YAML number or as the text a flag gives. */
export const count = () =>
  kind<string | number>('a whole number', (v): v is string | number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (isString(v) && /^\d+$/.test(v.trim())));

/** A duration as text ("1.5s", "500ms"); a bare YAML number is refused: seconds or milliseconds would be a guess. */
export const duration = () => kind<string>('a duration such as 1.5s', (v): v is string => isString(v) && succeeds(() => parseDuration(v)));

/** A size as text ("2GiB") or a number of bytes. */
export const size = () =>
  kind<string | number>('a size such as 512MiB or a number of bytes', (v): v is string | number => (isString(v) || typeof v === 'number') && succeeds(() => parseByteSize(v, 'size', 0)));

/** One of a few words. */
export const oneOf = (words: readonly string[]) => kind<string>(`one of ${words.join(', ')}`, (v): v is string => isString(v) && words.includes(v));

/** A repeatable flag: a list of texts (a single text is taken as a list of one). */
export const list = (item: string) =>
  kind<string | string[]>(`a list of ${item}`, (v): v is string | string[] => isString(v) || (Array.isArray(v) && v.every(isString))).transform((v) => (isString(v) ? [v] : v));

type Scalar = string | number | boolean;
const isScalar = (v: unknown): v is Scalar => ['string', 'number', 'boolean'].includes(typeof v);

/** Labels: a list of key=value, or a map ({zone: eu-1}), given to the option compiler as key=value texts. */
export const labels = () =>
  kind<string | string[] | Record<string, Scalar>>(
    'a list of key=value or a map of key: value',
    (v): v is string | string[] | Record<string, Scalar> =>
      isString(v) || (Array.isArray(v) && v.every(isString)) || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(isScalar)),
  ).transform((v) => (isString(v) ? [v] : Array.isArray(v) ? v : Object.entries(v).map(([k, value]) => `${k}=${String(value)}`)));

/** A daemon's schema: every key optional (defaults come from the flags), unknown keys refused. */
export function daemonSchema<S extends z.ZodRawShape>(shape: S) {
  return z.object(shape).partial().strict();
}

export type DaemonSchema = ReturnType<typeof daemonSchema>;

/** The NATS credential keys every daemon shares (common/nats-auth.ts). */
export const NATS_AUTH_KEYS = {
  'nats-user': text('a NATS user name'),
  'nats-pass': text('a password'),
  'nats-token': text('a token'),
  'nats-creds': text('a file path'),
  'nats-nkey': text('a file path'),
};

export const LOG_KEYS = {
  'log-format': oneOf(['json', 'pretty']),
  'log-level': oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']),
};
