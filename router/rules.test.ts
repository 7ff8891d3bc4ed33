// Rules → the Lua token: field encoding, percent bucket ranges, refusals of rules the Lua script could not run.
import { describe, expect, it } from 'vitest';
import { decodeField, encodeField, encodeRules, NO_RULES, parseCidr } from './rules.js';
import { route } from './test-fixtures.js';

describe('encodeRules', () => {
  it('is "-" without rules', () => {
    expect(encodeRules([]).token).toBe(NO_RULES);
  });

  it('joins rules in order, fields percent-encoded, header names in lower case', () => {
    const { token, skipped } = encodeRules([
      route({ kind: 'header', edition: '2.0', name: 'X-Validate', value: '1; a b' }),
      route({ kind: 'cookie', edition: '2.0', name: 'beta', value: 'yes' }),
      route({ kind: 'path-prefix', edition: '3.0', value: '/beta' }),
      route({ kind: 'source', edition: '2.0', value: '10.1.0.0/16' }),
    ]);
    expect(skipped).toEqual([]);
    expect(token).toBe('header,2.0,x-validate,1%3B%20a%20b|cookie,2.0,beta,yes|path-prefix,3.0,,%2Fbeta|source,2.0,,10.1.0.0%2F16');
    expect(token).not.toMatch(/[\s;\\]/);
  });

  it('gives percent rules consecutive bucket ranges in evaluation order', () => {
    const { token } = encodeRules([
      route({ kind: 'percent', edition: '2.0', percent: 5 }),
      route({ kind: 'header', edition: '3.0', name: 'x', value: 'y' }),
      route({ kind: 'percent', edition: '3.0', percent: 10 }),
      route({ kind: 'percent', edition: '4.0', percent: 100 }),
    ]);
    expect(token.split('|').filter((r) => r.startsWith('percent'))).toEqual(['percent,2.0,,0-500', 'percent,3.0,,500-1500', 'percent,4.0,,1500-10000']);
  });

  it.each([
    [route({ kind: 'weight', edition: '2.0' }), /unknown kind/],
    [route({ kind: 'header', edition: '2.0', name: 'bad name', value: 'x' }), /not a header name/],
    [route({ kind: 'source', edition: '2.0', value: '10.1.0.0/33' }), /not an IPv4 or IPv6 CIDR/],
    [route({ kind: 'path-prefix', edition: '2.0', value: 'beta' }), /does not start with/],
    [route({ kind: 'percent', edition: '2.0', percent: 0 }), /not 1..100/],
    [route({ kind: 'cookie', edition: '' , name: 'c', value: 'v'}), /no edition/],
  ])('leaves out a rule it cannot run (%#)', (r, why) => {
    const { token, skipped } = encodeRules([r]);
    expect(token).toBe(NO_RULES);
    expect(skipped[0]!.why).toMatch(why);
  });
});

describe('fields and CIDRs', () => {
  it('round-trips any text through the field encoding', () => {
    for (const text of ['plain', 'a b;c\\d|e,f%', 'ünï', '']) expect(decodeField(encodeField(text))).toBe(text);
  });

  it('normalizes CIDRs and refuses malformed ones', () => {
    expect(parseCidr('10.1.2.3')).toBe('10.1.2.3/32');
    expect(parseCidr('::1')).toBe('::1/128');
    expect(parseCidr('fd00::/8')).toBe('fd00::/8');
    expect(parseCidr('10.1.0.0/016')).toBe('10.1.0.0/16');
    for (const bad of ['10.1.0.0/', '10.1.0/16', 'fd00::/129', 'example.com/8', '']) expect(parseCidr(bad)).toBeNull();
  });
});
