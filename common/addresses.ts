// IP addresses as the controller, the agent and the router take them: a gRPC peer's host, an advertised address, a CIDR.
import { isIP, SocketAddress } from 'node:net';
import { BadInputError } from './errors.js';

/** An IPv4 or IPv6 network, canonical: `10.1.0.0/16`, `2001:db8::/32`. */
export interface Cidr {
  address: string;
  prefix: number;
  family: 4 | 6;
  /** `address/prefix`, canonical (lower case, shortest IPv6 form). */
  text: string;
}

/** The IP address of a gRPC peer string ('ipv4:10.0.0.5:4242', '[::1]:4242', '10.0.0.5:4242'), '' when it has none (unix socket). */
export function hostOfPeer(peer: string): string {
  let text = peer.trim().replace(/^ipv[46]:/, '');
  if (text.startsWith('[')) text = text.slice(1, text.indexOf(']') > 0 ? text.indexOf(']') : undefined);
  else {
    // grpc-js prints `${address}:${port}` without brackets, IPv6 included (`::1:4242` is also an IPv6 address, so
    // the port is stripped first): the port is what follows the last ':'.
    const colon = text.lastIndexOf(':');
    if (colon > 0 && /^\d+$/.test(text.slice(colon + 1)) && isIP(text.slice(0, colon))) text = text.slice(0, colon);
  }
  if (!isIP(text)) return '';
  const canonical = canonicalIp(text);
  // An IPv4 client of a dual-stack listener shows as ::ffff:a.b.c.d; routers reach it as a.b.c.d.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(canonical);
  return mapped ? mapped[1]! : canonical;
}

/** A host name as DNS allows it (RFC 1123 labels), for --advertise. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/**
 * An address a load balancer reaches this host at: an IP (IPv6 with or without brackets) or a DNS name, without a
 * port (each instance has its own gate port). Returns it canonical; throws BadInputError naming `flag`.
 */
export function parseAdvertiseAddress(text: string, flag: string): string {
  const value = text.trim();
  const bare = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value;
  if (isIP(bare)) return canonicalIp(bare);
  if (HOST_NAME.test(value) && !/^\d+(\.\d+)*$/.test(value)) return value.toLowerCase();
  throw new BadInputError(`${flag}: '${text}' is not an IP address or a host name (no port: each instance has its own)`);
}

/** True when `text` is an address parseAdvertiseAddress accepts (the controller checks what agents send). */
export function isAdvertiseAddress(text: string): boolean {
  try {
    parseAdvertiseAddress(text, '');
    return true;
  } catch {
    return false;
  }
}

/**
 * `10.1.0.0/16`, `2001:db8::/32`, or a single address (`10.1.2.3` is `10.1.2.3/32`). Host bits set
 * (`10.1.2.3/16`) are refused with the network they probably meant: a rule should say what it matches.
 */
export function parseCidr(text: string, what: string): Cidr {
  const value = text.trim();
  const slash = value.indexOf('/');
  const address = slash < 0 ? value : value.slice(0, slash);
  const family = address.includes('%') ? 0 : isIP(address);
  if (family !== 4 && family !== 6) throw new BadInputError(`${what}: '${text}' is not an IPv4 or IPv6 CIDR such as 10.1.0.0/16 or 2001:db8::/32`);
  const bits = family === 4 ? 32 : 128;
  const prefixText = slash < 0 ? String(bits) : value.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > bits) {
    throw new BadInputError(`${what}: '${text}' has a prefix length that is not a number from 0 to ${bits}`);
  }
  const prefix = Number(prefixText);
  const value128 = toBigInt(address, family);
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((value128 & hostMask) !== 0n) {
    const network = fromBigInt(value128 & ~hostMask, family);
    throw new BadInputError(`${what}: '${text}' has host bits set; did you mean ${network}/${prefix}?`);
  }
  const canonical = canonicalIp(address);
  return { address: canonical, prefix, family, text: `${canonical}/${prefix}` };
}

function canonicalIp(address: string): string {
  return new SocketAddress({ address, family: isIP(address) === 6 ? 'ipv6' : 'ipv4' }).address;
}

function toBigInt(address: string, family: 4 | 6): bigint {
  if (family === 4) return address.split('.').reduce((n, part) => (n << 8n) | BigInt(Number(part)), 0n);
  // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups; '::' stands for as many zero groups as are missing.
  const groupsOf = (text: string) => (text === '' ? [] : text.split(':').flatMap((g) => (g.includes('.') ? ipv4Groups(g) : [g])));
  const [head, tail] = address.split('::') as [string, string?];
  const first = groupsOf(head);
  const last = tail === undefined ? [] : groupsOf(tail);
  const all = [...first, ...Array<string>(8 - first.length - last.length).fill('0'), ...last];
  return all.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function ipv4Groups(dotted: string): string[] {
  const [a, b, c, d] = dotted.split('.').map(Number) as [number, number, number, number];
  return [((a << 8) | b).toString(16), ((c << 8) | d).toString(16)];
}

function fromBigInt(value: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 255n)).join('.');
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((value >> shift) & 0xffffn).toString(16));
  return canonicalIp(groups.join(':'));
}
