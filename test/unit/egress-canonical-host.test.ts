import { isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  canonicalizeHost,
  embeddedIpv4,
  formatIpv4,
  formatIpv6,
  formatTarget,
  InvalidHostError,
  InvalidTargetError,
  parseHostPort,
  parseIpv4,
  parseIpv6,
  splitHostPort,
  tryCanonicalizeHost,
} from '../../src/main/vm/egress/canonical-host.js';

describe('canonicalizeHost: IPv4 spellings (inet_aton)', () => {
  const loopback: string[] = [
    '127.0.0.1',
    '127.1',
    '127.0.1',
    '0x7f.0.0.1',
    '0X7F.0.0.1',
    '0x7f.1',
    '0x7f.0.1',
    '0x7f000001',
    '0x7F000001',
    '0x00007f000001',
    '2130706433',
    '0177.0.0.1',
    '0177.1',
    '00177.0.0.01',
    '017700000001',
    '0177.0x0.0.1',
    '127.0x0.000.0x1',
    '0x7f.0.0x0.01',
    '127.0.0.1.',
    '0x7f.1.',
    '127.000.000.001',
  ];
  it.each(loopback)('%s → 127.0.0.1', (input) => {
    expect(canonicalizeHost(input)).toEqual({ kind: 'ipv4', host: '127.0.0.1', ipv4: '127.0.0.1' });
  });

  const table: [string, string][] = [
    ['0', '0.0.0.0'],
    ['0x0', '0.0.0.0'],
    ['0x', '0.0.0.0'],
    ['00', '0.0.0.0'],
    ['1', '0.0.0.1'],
    ['4294967295', '255.255.255.255'],
    ['0xffffffff', '255.255.255.255'],
    ['037777777777', '255.255.255.255'],
    ['10.1', '10.0.0.1'],
    ['10.0x10000', '10.1.0.0'],
    ['10.16777215', '10.255.255.255'],
    ['192.168.65535', '192.168.255.255'],
    ['0xa9.0xfe.0xa9.0xfe', '169.254.169.254'],
    ['2852039166', '169.254.169.254'],
    ['0251.0376.0251.0376', '169.254.169.254'],
    ['169.254.43518', '169.254.169.254'],
    ['1.2.3.4', '1.2.3.4'],
    ['01.02.03.04', '1.2.3.4'],
    ['8.8.8.8.', '8.8.8.8'],
  ];
  it.each(table)('%s → %s', (input, expected) => {
    const c = canonicalizeHost(input);
    expect(c).toEqual({ kind: 'ipv4', host: expected, ipv4: expected });
  });

  it('agrees with the WHATWG URL parser on every table entry', () => {
    for (const input of [...loopback, ...table.map((t) => t[0])]) {
      expect(new URL(`http://${input}/`).hostname, input).toBe(canonicalizeHost(input).host);
    }
  });

  const invalid: string[] = [
    '1.2.3.256',
    '256.1.1.1',
    '1.2.3.4.5',
    '4294967296',
    '0x100000000',
    '040000000000',
    '08.0.0.1',
    '09',
    '1.2.65536',
    '1.16777216',
    '1..2.3',
    '.1.2.3',
    '0xg.1',
    '99999999999999999999',
    'foo.0x',
    'foo.123',
  ];
  it.each(invalid)('%s is refused (ends in a number but is no address)', (input) => {
    expect(() => canonicalizeHost(input)).toThrow(InvalidHostError);
  });

  it('round-trips random addresses in random spellings', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const spell = (v: number, radix: number): string =>
      radix === 16 ? `0x${v.toString(16)}` : radix === 8 ? `0${v.toString(8)}` : String(v);
    for (let i = 0; i < 2000; i++) {
      const value = (rand(0x10000) * 0x10000 + rand(0x10000)) >>> 0;
      const bytes = [value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255];
      const parts = 1 + rand(4);
      const head = bytes.slice(0, parts - 1);
      const tailBytes = bytes.slice(parts - 1);
      const tail = tailBytes.reduce((acc, b) => acc * 256 + b, 0);
      const text = [...head, tail].map((v) => spell(v, [8, 10, 16][rand(3)] ?? 10)).join('.');
      expect(parseIpv4(text), text).toBe(value);
      expect(canonicalizeHost(text).host, text).toBe(formatIpv4(value));
      expect(new URL(`http://${text}/`).hostname, text).toBe(formatIpv4(value));
    }
  });
});

describe('canonicalizeHost: IPv6', () => {
  const table: [string, string, string | undefined][] = [
    ['::1', '::1', undefined],
    ['[::1]', '::1', undefined],
    ['0:0:0:0:0:0:0:1', '::1', undefined],
    ['0000:0000:0000:0000:0000:0000:0000:0001', '::1', undefined],
    ['::', '::', undefined],
    ['[::]', '::', undefined],
    ['::ffff:127.0.0.1', '::ffff:127.0.0.1', '127.0.0.1'],
    ['[::ffff:127.0.0.1]', '::ffff:127.0.0.1', '127.0.0.1'],
    ['::ffff:7f00:1', '::ffff:127.0.0.1', '127.0.0.1'],
    ['[::FFFF:7F00:0001]', '::ffff:127.0.0.1', '127.0.0.1'],
    ['0:0:0:0:0:ffff:7f00:1', '::ffff:127.0.0.1', '127.0.0.1'],
    ['::ffff:a9fe:a9fe', '::ffff:169.254.169.254', '169.254.169.254'],
    ['::127.0.0.1', '::7f00:1', '127.0.0.1'],
    ['::7f00:1', '::7f00:1', '127.0.0.1'],
    ['64:ff9b::7f00:1', '64:ff9b::127.0.0.1', '127.0.0.1'],
    ['64:ff9b::127.0.0.1', '64:ff9b::127.0.0.1', '127.0.0.1'],
    ['64:ff9b:0:0:0:0:a00:1', '64:ff9b::10.0.0.1', '10.0.0.1'],
    ['2001:DB8::1', '2001:db8::1', undefined],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', undefined],
    ['2001:0db8:0000:0000:0000:0000:0002:0001', '2001:db8::2:1', undefined],
    ['2001:db8::0:1', '2001:db8::1', undefined],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', undefined],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0', undefined],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8', undefined],
    ['fe80::1', 'fe80::1', undefined],
    ['FD00:EC2::254', 'fd00:ec2::254', undefined],
    ['ff02::1', 'ff02::1', undefined],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3', undefined],
  ];
  it.each(table)('%s → %s', (input, host, ipv4) => {
    const expected = ipv4 === undefined ? { kind: 'ipv6', host } : { kind: 'ipv6', host, ipv4 };
    expect(canonicalizeHost(input)).toEqual(expected);
    expect(isIPv6(host)).toBe(true);
  });

  const invalid: string[] = [
    'fe80::1%eth0',
    '[fe80::1%25eth0]',
    '::1%1',
    ':::1',
    '1:::2',
    '1::2::3',
    ':1',
    '1:',
    '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7',
    '1::2:3:4:5:6:7:8',
    '12345::1',
    '::g',
    '[::1',
    '::1]',
    '[127.0.0.1]',
    '[example.com]',
    '::ffff:127.1',
    '::ffff:0x7f.0.0.1',
    '::ffff:127.0.0.01',
    '::ffff:256.0.0.1',
    '::1.2.3.4:5',
  ];
  it.each(invalid)('%s is refused', (input) => {
    expect(() => canonicalizeHost(input)).toThrow(InvalidHostError);
  });

  it('names the zone id problem in the error', () => {
    expect(() => canonicalizeHost('fe80::1%eth0')).toThrow(/zone id/);
  });

  it('formats random addresses like the WHATWG URL parser reads them', () => {
    let seed = 99;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      // Plenty of zero groups so compression is exercised.
      const groups = Array.from({ length: 8 }, () => (rand(3) === 0 ? rand(0x10000) : 0));
      const text = formatIpv6(groups);
      expect(isIPv6(text), text).toBe(true);
      expect(parseIpv6(text), text).toEqual(groups);
      const full = groups.map((g) => g.toString(16)).join(':');
      expect(canonicalizeHost(full).host).toBe(text);
      // The URL parser writes IPv4 tails as hex; compare the parsed groups.
      const viaUrl = new URL(`http://[${full}]/`).hostname.slice(1, -1);
      expect(parseIpv6(viaUrl), full).toEqual(groups);
    }
  });

  it('reports embedded IPv4 kinds', () => {
    const g = (t: string): number[] => parseIpv6(t) ?? [];
    expect(embeddedIpv4(g('::ffff:1.2.3.4'))).toEqual({ kind: 'mapped', ipv4: '1.2.3.4' });
    expect(embeddedIpv4(g('::1.2.3.4'))).toEqual({ kind: 'compatible', ipv4: '1.2.3.4' });
    expect(embeddedIpv4(g('64:ff9b::1.2.3.4'))).toEqual({ kind: 'nat64', ipv4: '1.2.3.4' });
    expect(embeddedIpv4(g('::1'))).toBeUndefined();
    expect(embeddedIpv4(g('::'))).toBeUndefined();
    expect(embeddedIpv4(g('2001:db8::1'))).toBeUndefined();
  });
});

/** A 253-character name, the longest allowed. */
const LONGEST = `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`;

describe('canonicalizeHost: names', () => {
  it('has a 253-character fixture', () => expect(LONGEST).toHaveLength(253));

  const table: [string, string][] = [
    ['example.com', 'example.com'],
    ['EXAMPLE.COM', 'example.com'],
    ['Example.Com.', 'example.com'],
    ['LOCALHOST.', 'localhost'],
    ['localhost', 'localhost'],
    ['a-b.c-d.example', 'a-b.c-d.example'],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example'],
    ['XN--BCHER-KVA.EXAMPLE', 'xn--bcher-kva.example'],
    ['1e100.net', '1e100.net'],
    ['123.example.com', '123.example.com'],
    ['0x7f.example', '0x7f.example'],
    ['127.0.0.1.nip.io', '127.0.0.1.nip.io'],
    ['a'.repeat(63) + '.com', 'a'.repeat(63) + '.com'],
    [LONGEST, LONGEST],
    [`${LONGEST}.`, LONGEST],
  ];
  it.each(table)('%s → %s', (input, host) => {
    expect(canonicalizeHost(input)).toEqual({ kind: 'name', host });
  });

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['.', /no name/],
    ['example.com..', /empty label/],
    ['a..b', /empty label/],
    ['.example.com', /empty label/],
    ['evil_host.com', /"_"/],
    ['exa mple.com', /" "/],
    ['example.com\r\nX: y', /\\x0d/],
    ['ex%61mple.com', /"%"/],
    ['user@example.com', /"@"/],
    ['example.com/path', /"\/"/],
    ['-example.com', /hyphen/],
    ['example-.com', /hyphen/],
    ['*.example.com', /"\*"/],
    ['bücher.example', /xn--bcher-kva\.example/],
    ['EXAMPLE.CO\u212A', /non-ASCII/],
    ['１２７．０．０．１', /non-ASCII/],
    ['a'.repeat(64) + '.com', /longer than 63/],
    [`${LONGEST}e`, /longer than 253/],
    [`${LONGEST}e.`, /longer than 253/],
  ];
  it.each(invalid)('%j is refused with a sentence', (input, why) => {
    let error: unknown;
    try {
      canonicalizeHost(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidHostError);
    const message = (error as Error).message;
    expect(message).toMatch(why);
    expect(message).toMatch(/is not a valid host: .+\.$/);
  });

  it('tryCanonicalizeHost returns a result instead of throwing', () => {
    expect(tryCanonicalizeHost('Example.com')).toEqual({
      ok: true,
      value: { kind: 'name', host: 'example.com' },
    });
    const bad = tryCanonicalizeHost('bad_name');
    expect(bad.ok).toBe(false);
  });
});

describe('host:port', () => {
  const table: [string, string, number | undefined][] = [
    ['example.com', 'example.com', undefined],
    ['example.com:443', 'example.com', 443],
    ['127.1:8080', '127.0.0.1', 8080],
    ['[::1]:8080', '::1', 8080],
    ['[::1]', '::1', undefined],
    ['::1', '::1', undefined],
    ['[::ffff:7f00:1]:1', '::ffff:127.0.0.1', 1],
    ['EXAMPLE.COM.:65535', 'example.com', 65535],
  ];
  it.each(table)('%s', (input, host, port) => {
    const parsed = parseHostPort(input);
    expect(parsed.host.host).toBe(host);
    expect(parsed.port).toBe(port);
  });

  const invalid: string[] = [
    'example.com:0',
    'example.com:65536',
    'example.com:',
    'example.com:http',
    'example.com:+80',
    'example.com:-1',
    '[::1]8080',
    '[::1',
  ];
  it.each(invalid)('%s is refused', (input) => {
    expect(() => parseHostPort(input)).toThrow(InvalidTargetError);
  });

  it('reads two colons as an (invalid) IPv6 literal, not host:port:port', () => {
    expect(() => parseHostPort('example.com:80:80')).toThrow(InvalidHostError);
  });

  it('requires a port and brackets when asked to (CONNECT targets)', () => {
    expect(() => splitHostPort('example.com', { portRequired: true })).toThrow(/no port/);
    expect(() => splitHostPort('::1:443', { portRequired: true })).toThrow(/\[address\]:port/);
    expect(splitHostPort('[::1]:443', { portRequired: true })).toEqual({
      hostText: '[::1]',
      port: 443,
    });
  });

  it('formats targets with brackets for IPv6', () => {
    expect(formatTarget(canonicalizeHost('::1'), 80)).toBe('[::1]:80');
    expect(formatTarget(canonicalizeHost('127.1'), 80)).toBe('127.0.0.1:80');
    expect(formatTarget(canonicalizeHost('Example.com'))).toBe('example.com');
  });
});
