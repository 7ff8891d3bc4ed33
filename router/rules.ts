// Routing rules → the one-word token the Lua script (router/fleetwave.lua) takes through `fleetwave rules set APP TOKEN`
// on the admin socket, so a rule change is one Runtime API call and no reload.
//
// Token: `-` for no rules, else rules in evaluation order joined by '|', each `kind,edition,name,value` with every
// field percent-encoded (only [A-Za-z0-9._-] stays as it is), so the token holds no space, ';' or '\' (the CLI's
// separators and escape) and no ',' or '|' inside a field. A percent rule's value is its bucket range `lo-hi`
// (0 ≤ lo < hi ≤ 10000): percent rules take consecutive ranges of the 10,000 sticky buckets in evaluation order.
import { isIP } from 'node:net';
import type { Route } from '../proto/gen/fleetwave/v1/admin.js';

export const RULE_KINDS = ['header', 'cookie', 'path-prefix', 'source', 'percent'] as const;
export type RuleKind = (typeof RULE_KINDS)[number];
/** Sticky buckets a client is put in (the cookie's value): a percent point is 100 buckets. */
export const BUCKETS = 10_000;
export const NO_RULES = '-';

/** A rule the Lua script can run, or why it cannot. */
export type CompiledRule = { kind: RuleKind; edition: string; name: string; value: string } | { skipped: string };

/** Checks one rule and puts it in the Lua script's terms; `bucketsTaken` are the buckets earlier percent rules hold. */
export function compileRule(route: Route, bucketsTaken: number): CompiledRule {
  const kind = route.kind as RuleKind;
  if (!RULE_KINDS.includes(kind)) return { skipped: `unknown kind '${route.kind}'` };
  if (!route.edition) return { skipped: 'no edition' };
  switch (kind) {
    case 'header':
      if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(route.name)) return { skipped: `'${route.name}' is not a header name` };
      // HAProxy gives Lua header names in lower case; the name matches whatever its case.
      return { kind, edition: route.edition, name: route.name.toLowerCase(), value: route.value };
    case 'cookie':
      if (!route.name) return { skipped: 'no cookie name' };
      return { kind, edition: route.edition, name: route.name, value: route.value };
    case 'path-prefix':
      if (!route.value.startsWith('/')) return { skipped: `path prefix '${route.value}' does not start with '/'` };
      return { kind, edition: route.edition, name: '', value: route.value };
    case 'source': {
      const cidr = parseCidr(route.value);
      if (!cidr) return { skipped: `'${route.value}' is not an IPv4 or IPv6 CIDR` };
      return { kind, edition: route.edition, name: '', value: cidr };
    }
    case 'percent': {
      if (!Number.isInteger(route.percent) || route.percent < 1 || route.percent > 100) return { skipped: `percent ${route.percent} is not 1..100` };
      const lo = Math.min(bucketsTaken, BUCKETS);
      const hi = Math.min(lo + route.percent * (BUCKETS / 100), BUCKETS);
      return { kind, edition: route.edition, name: '', value: `${lo}-${hi}` };
    }
  }
}

/** The token for `routes` (in evaluation order) and the rules left out, with why. */
export function encodeRules(routes: readonly Route[]): { token: string; skipped: Array<{ id: string; why: string }> } {
  const parts: string[] = [];
  const skipped: Array<{ id: string; why: string }> = [];
  let taken = 0;
  for (const route of routes) {
    const rule = compileRule(route, taken);
    if ('skipped' in rule) {
      skipped.push({ id: route.id, why: rule.skipped });
      continue;
    }
    if (rule.kind === 'percent') taken = Number(rule.value.split('-')[1]);
    parts.push([rule.kind, rule.edition, rule.name, rule.value].map(encodeField).join(','));
  }
  return { token: parts.length ? parts.join('|') : NO_RULES, skipped };
}

/** `10.1.0.0/16` or `::1/128` (a bare address is a /32 or /128), normalized; null when malformed. */
export function parseCidr(text: string): string | null {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = isIP(address);
  if (family === 0) return null;
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return `${address}/${max}`;
  const bits = text.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return null;
  return `${address}/${Number(bits)}`;
}

export function encodeField(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += /[A-Za-z0-9._-]/.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeField(value: string): string {
  return Buffer.from(value.replace(/%([0-9A-F]{2})/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1').toString('utf8');
}
