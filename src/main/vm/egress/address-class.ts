/**
 * Classification of IP addresses into "internal" (never reachable from a task unless that exact
 * host:port was allowed) and "public".
 *
 * Exists because the point of the egress proxy is that the agent cannot reach the person's own
 * machine (loopback), their network (private ranges), or a cloud metadata service through an
 * allowlisted name that happens to resolve there. Everything outside the global unicast space is
 * treated as internal: being wrong towards "internal" costs a 403, the other way a data leak.
 */

import { isIP } from 'node:net';
import { embeddedIpv4, formatIpv4, parseIpv4, parseIpv6 } from './canonical-host.js';

/** Why an address is internal, or 'public'. */
export type AddressCategory =
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'documentation'
  | 'benchmarking'
  | 'reserved'
  | 'public';

/** The result of {@link classifyAddress}. `label` reads well after "it is" in a sentence. */
export interface AddressClassification {
  scope: 'internal' | 'public';
  category: AddressCategory;
  /** e.g. "a loopback address", "a cloud metadata address". */
  label: string;
}

interface Range {
  base: number;
  bits: number;
  category: Exclude<AddressCategory, 'public'>;
  label: string;
}

const v4 = (text: string): number => {
  const value = parseIpv4(text);
  if (value === undefined) throw new Error(`bad IPv4 range base ${text}`);
  return value;
};

/** Most specific first: the first match wins. */
const IPV4_RANGES: readonly Range[] = [
  // SECURITY: cloud metadata endpoints (AWS/GCP/Azure/OpenStack/Oracle, ECS, EKS, Alibaba).
  {
    base: v4('169.254.169.254'),
    bits: 32,
    category: 'metadata',
    label: 'a cloud metadata address',
  },
  { base: v4('169.254.170.2'), bits: 32, category: 'metadata', label: 'a cloud metadata address' },
  { base: v4('169.254.170.23'), bits: 32, category: 'metadata', label: 'a cloud metadata address' },
  {
    base: v4('100.100.100.200'),
    bits: 32,
    category: 'metadata',
    label: 'a cloud metadata address',
  },
  { base: v4('255.255.255.255'), bits: 32, category: 'broadcast', label: 'the broadcast address' },
  {
    base: v4('0.0.0.0'),
    bits: 8,
    category: 'unspecified',
    label: 'an unspecified ("this network") address',
  },
  { base: v4('10.0.0.0'), bits: 8, category: 'private', label: 'a private address' },
  {
    base: v4('100.64.0.0'),
    bits: 10,
    category: 'private',
    label: 'a private (carrier-grade NAT) address',
  },
  { base: v4('127.0.0.0'), bits: 8, category: 'loopback', label: 'a loopback address' },
  { base: v4('169.254.0.0'), bits: 16, category: 'link-local', label: 'a link-local address' },
  { base: v4('172.16.0.0'), bits: 12, category: 'private', label: 'a private address' },
  {
    base: v4('192.0.0.0'),
    bits: 24,
    category: 'reserved',
    label: 'a reserved (IETF protocol) address',
  },
  { base: v4('192.0.2.0'), bits: 24, category: 'documentation', label: 'a documentation address' },
  {
    base: v4('192.88.99.0'),
    bits: 24,
    category: 'reserved',
    label: 'a reserved (6to4 relay) address',
  },
  { base: v4('192.168.0.0'), bits: 16, category: 'private', label: 'a private address' },
  { base: v4('198.18.0.0'), bits: 15, category: 'benchmarking', label: 'a benchmarking address' },
  {
    base: v4('198.51.100.0'),
    bits: 24,
    category: 'documentation',
    label: 'a documentation address',
  },
  {
    base: v4('203.0.113.0'),
    bits: 24,
    category: 'documentation',
    label: 'a documentation address',
  },
  { base: v4('224.0.0.0'), bits: 4, category: 'multicast', label: 'a multicast address' },
  { base: v4('240.0.0.0'), bits: 4, category: 'reserved', label: 'a reserved address' },
];

const PUBLIC: AddressClassification = {
  scope: 'public',
  category: 'public',
  label: 'a public address',
};

/** Classifies an IPv4 address given as an unsigned 32-bit number. */
export function classifyIpv4(value: number): AddressClassification {
  for (const r of IPV4_RANGES) {
    const mask = r.bits === 0 ? 0 : (0xffffffff << (32 - r.bits)) >>> 0;
    if ((value & mask) >>> 0 === (r.base & mask) >>> 0) {
      return { scope: 'internal', category: r.category, label: r.label };
    }
  }
  return PUBLIC;
}

interface Range6 {
  /** Eight 16-bit groups. */
  base: readonly number[];
  bits: number;
  category: Exclude<AddressCategory, 'public'>;
  label: string;
}

const v6 = (text: string): number[] => {
  const groups = parseIpv6(text);
  if (!groups) throw new Error(`bad IPv6 range base ${text}`);
  return groups;
};

/** Most specific first. Embedded-IPv4 forms are handled before this table. */
const IPV6_RANGES: readonly Range6[] = [
  { base: v6('::'), bits: 128, category: 'unspecified', label: 'the unspecified address' },
  { base: v6('::1'), bits: 128, category: 'loopback', label: 'a loopback address' },
  // SECURITY: AWS IMDS over IPv6 (inside fc00::/7, listed first so it is named as metadata).
  { base: v6('fd00:ec2::254'), bits: 128, category: 'metadata', label: 'a cloud metadata address' },
  { base: v6('fd00:ec2::23'), bits: 128, category: 'metadata', label: 'a cloud metadata address' },
  { base: v6('::'), bits: 96, category: 'reserved', label: 'a reserved (IPv4-compatible) address' },
  {
    base: v6('64:ff9b:1::'),
    bits: 48,
    category: 'private',
    label: 'a private (local NAT64) address',
  },
  { base: v6('100::'), bits: 64, category: 'reserved', label: 'a reserved (discard-only) address' },
  { base: v6('2001:2::'), bits: 48, category: 'benchmarking', label: 'a benchmarking address' },
  { base: v6('2001:db8::'), bits: 32, category: 'documentation', label: 'a documentation address' },
  {
    base: v6('2001::'),
    bits: 23,
    category: 'reserved',
    label: 'a reserved (IETF protocol) address',
  },
  { base: v6('3fff::'), bits: 20, category: 'documentation', label: 'a documentation address' },
  { base: v6('5f00::'), bits: 16, category: 'reserved', label: 'a reserved (SRv6) address' },
  { base: v6('fc00::'), bits: 7, category: 'private', label: 'a private (unique local) address' },
  { base: v6('fe80::'), bits: 10, category: 'link-local', label: 'a link-local address' },
  { base: v6('fec0::'), bits: 10, category: 'private', label: 'a private (site-local) address' },
  { base: v6('ff00::'), bits: 8, category: 'multicast', label: 'a multicast address' },
];

function inRange6(groups: readonly number[], base: readonly number[], bits: number): boolean {
  let remaining = bits;
  for (let i = 0; i < 8 && remaining > 0; i++) {
    const take = Math.min(16, remaining);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((groups[i] ?? 0) & mask) !== ((base[i] ?? 0) & mask)) return false;
    remaining -= take;
  }
  return true;
}

/** Classifies an IPv6 address given as eight 16-bit groups. */
export function classifyIpv6(groups: readonly number[]): AddressClassification {
  const embedded = embeddedIpv4(groups);
  // SECURITY: ::ffff:127.0.0.1 and 64:ff9b::7f00:1 are judged by the IPv4 address they carry.
  if (embedded && embedded.kind !== 'compatible') {
    const inner = classifyIpv4(parseIpv4(embedded.ipv4) ?? 0);
    if (inner.scope === 'internal') {
      const via = embedded.kind === 'mapped' ? 'IPv4-mapped' : 'NAT64';
      return { ...inner, label: `${inner.label} (${via} ${embedded.ipv4})` };
    }
    return PUBLIC;
  }
  for (const r of IPV6_RANGES) {
    if (inRange6(groups, r.base, r.bits)) {
      return { scope: 'internal', category: r.category, label: r.label };
    }
  }
  // SECURITY: 6to4 (2002::/16) carries an IPv4 address in bits 16–47; judge that one too.
  if (groups[0] === 0x2002) {
    const inner = classifyIpv4((((groups[1] ?? 0) << 16) | (groups[2] ?? 0)) >>> 0);
    if (inner.scope === 'internal') {
      const ipv4 = formatIpv4((((groups[1] ?? 0) << 16) | (groups[2] ?? 0)) >>> 0);
      return { ...inner, label: `${inner.label} (6to4 ${ipv4})` };
    }
  }
  // SECURITY: only 2000::/3 is global unicast; everything else is not a public destination.
  if (((groups[0] ?? 0) & 0xe000) !== 0x2000) {
    return { scope: 'internal', category: 'reserved', label: 'a reserved address' };
  }
  return PUBLIC;
}

/**
 * Classifies an IP address (any text {@link parseIpv4}/{@link parseIpv6} accepts, IPv6 with or
 * without brackets). Text that is not an IP address is classified internal ('reserved'), so a
 * caller that passes something odd fails closed.
 */
export function classifyAddress(ip: string): AddressClassification {
  let text = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  if (text.includes(':')) {
    // Node reports some addresses with a zone id (fe80::1%eth0); the zone does not change the class.
    const zone = text.indexOf('%');
    if (zone >= 0) text = text.slice(0, zone);
    const groups = parseIpv6(text);
    if (groups) return classifyIpv6(groups);
  } else if (isIP(text) === 4 || /^[0-9a-fx.]+$/i.test(text)) {
    const value = parseIpv4(text);
    if (value !== undefined) return classifyIpv4(value);
  }
  // SECURITY: fail closed.
  return { scope: 'internal', category: 'reserved', label: 'not a valid IP address' };
}

/** True when {@link classifyAddress} says the address is internal. */
export function isInternalAddress(ip: string): boolean {
  return classifyAddress(ip).scope === 'internal';
}
