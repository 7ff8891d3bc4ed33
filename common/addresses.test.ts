import { describe, expect, it } from 'vitest';
import { BadInputError } from './errors.js';
import { hostOfPeer, isAdvertiseAddress, parseAdvertiseAddress, parseCidr } from './addresses.js';

describe('hostOfPeer', () => {
  const cases: Array<[string, string]> = [
    ['127.0.0.1:54321', '127.0.0.1'],
    ['ipv4:10.0.0.5:4242', '10.0.0.5'],
    ['ipv6:[::1]:4242', '::1'],
    ['[2001:DB8::1]:4242', '2001:db8::1'],
    // grpc-js 1.14 prints IPv6 peers without brackets.
    ['::1:4242', '::1'],
    ['::ffff:127.0.0.1:4242', '127.0.0.1'],
    ['10.0.0.5', '10.0.0.5'],
    ['unix:/run/fleetwave.sock', ''],
    ['unknown', ''],
  ];
  it.each(cases)('%s → %s', (peer, host) => {
    expect(hostOfPeer(peer)).toBe(host);
  });
});

describe('parseAdvertiseAddress', () => {
  it.each([
    ['10.0.0.5', '10.0.0.5'],
    ['[2001:db8::5]', '2001:db8::5'],
    ['2001:DB8:0::5', '2001:db8::5'],
    ['web-1.Example.internal', 'web-1.example.internal'],
  ])('accepts %s', (text, expected) => {
    expect(parseAdvertiseAddress(text, '--advertise')).toBe(expected);
  });

  it.each(['10.0.0.5:8080', 'web 1', '', '-web', '10.0.0', 'a_b.example'])('refuses %j', (text) => {
    expect(() => parseAdvertiseAddress(text, '--advertise')).toThrow(BadInputError);
    expect(isAdvertiseAddress(text)).toBe(false);
  });
});

describe('parseCidr', () => {
  it('canonicalises networks of both families', () => {
    expect(parseCidr('10.1.0.0/16', 'x')).toEqual({ address: '10.1.0.0', prefix: 16, family: 4, text: '10.1.0.0/16' });
    expect(parseCidr('2001:0DB8::/32', 'x').text).toBe('2001:db8::/32');
    expect(parseCidr('::ffff:10.0.0.0/104', 'x').text).toBe('::ffff:10.0.0.0/104');
    expect(parseCidr('fe80::/10', 'x').text).toBe('fe80::/10');
  });

  it('names the network meant when host bits are set', () => {
    expect(() => parseCidr('192.168.1.77/24', 'source')).toThrow("source: '192.168.1.77/24' has host bits set; did you mean 192.168.1.0/24?");
    expect(() => parseCidr('fe80::1/10', 'source')).toThrow('did you mean fe80::/10?');
  });
});
