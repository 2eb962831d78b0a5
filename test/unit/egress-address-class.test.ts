import { describe, expect, it } from 'vitest';
import {
  classifyAddress,
  isInternalAddress,
  type AddressCategory,
} from '../../src/main/vm/egress/address-class.js';

describe('classifyAddress', () => {
  const internal: [string, AddressCategory][] = [
    // IPv4
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['0.255.255.255', 'unspecified'],
    ['10.0.0.0', 'private'],
    ['10.255.255.255', 'private'],
    ['100.64.0.0', 'private'],
    ['100.127.255.255', 'private'],
    ['100.100.100.200', 'metadata'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['127.0.0.0', 'loopback'],
    ['169.254.0.1', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['169.254.255.255', 'link-local'],
    ['172.16.0.0', 'private'],
    ['172.31.255.255', 'private'],
    ['192.0.0.1', 'reserved'],
    ['192.0.0.170', 'reserved'],
    ['192.0.2.1', 'documentation'],
    ['192.88.99.1', 'reserved'],
    ['192.168.0.1', 'private'],
    ['192.168.255.255', 'private'],
    ['198.18.0.1', 'benchmarking'],
    ['198.19.255.255', 'benchmarking'],
    ['198.51.100.7', 'documentation'],
    ['203.0.113.9', 'documentation'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['240.0.0.1', 'reserved'],
    ['254.255.255.255', 'reserved'],
    ['255.255.255.255', 'broadcast'],
    // non-canonical IPv4 spellings are classified too
    ['127.1', 'loopback'],
    ['0x7f000001', 'loopback'],
    ['2852039166', 'metadata'],
    // IPv6
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['0:0:0:0:0:0:0:1', 'loopback'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['::127.0.0.1', 'reserved'],
    ['::8.8.8.8', 'reserved'],
    ['64:ff9b::127.0.0.1', 'loopback'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['64:ff9b::192.168.1.1', 'private'],
    ['64:ff9b:1::1', 'private'],
    ['100::1', 'reserved'],
    ['2001::1', 'reserved'],
    ['2001:2::1', 'benchmarking'],
    ['2001:10::1', 'reserved'],
    ['2001:db8::1', 'documentation'],
    ['2002:7f00:1::1', 'loopback'],
    ['2002:a9fe:a9fe::', 'metadata'],
    ['2002:c0a8:101::1', 'private'],
    ['3fff::1', 'documentation'],
    ['5f00::1', 'reserved'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['fd00:ec2::254', 'metadata'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fec0::1', 'private'],
    ['ff02::1', 'multicast'],
    ['ff05::1:3', 'multicast'],
    ['4000::1', 'reserved'],
    ['1::1', 'reserved'],
    ['8000::1', 'reserved'],
    // not an address at all: fail closed
    ['example.com', 'reserved'],
    ['', 'reserved'],
    ['1.2.3.256', 'reserved'],
  ];
  it.each(internal)('%s is internal (%s)', (ip, category) => {
    const c = classifyAddress(ip);
    expect(c.scope).toBe('internal');
    expect(c.category).toBe(category);
    expect(c.label.length).toBeGreaterThan(0);
    expect(isInternalAddress(ip)).toBe(true);
  });

  const publicAddresses: string[] = [
    '1.1.1.1',
    '8.8.8.8',
    '9.255.255.255',
    '11.0.0.0',
    '93.184.215.14',
    '100.63.255.255',
    '100.128.0.0',
    '126.255.255.255',
    '128.0.0.0',
    '169.253.255.255',
    '169.255.0.0',
    '172.15.255.255',
    '172.32.0.0',
    '192.0.1.255',
    '192.0.3.0',
    '192.167.255.255',
    '192.169.0.0',
    '198.17.255.255',
    '198.20.0.0',
    '223.255.255.255',
    '::ffff:8.8.8.8',
    '64:ff9b::8.8.8.8',
    '2001:4860:4860::8888',
    '2606:4700:4700::1111',
    '2002:808:808::1',
    '2001:db9::1',
    '3ffe::1',
  ];
  it.each(publicAddresses)('%s is public', (ip) => {
    expect(classifyAddress(ip)).toEqual({
      scope: 'public',
      category: 'public',
      label: 'a public address',
    });
  });

  it('names the embedded address in the label', () => {
    expect(classifyAddress('::ffff:127.0.0.1').label).toMatch(/IPv4-mapped 127\.0\.0\.1/);
    expect(classifyAddress('64:ff9b::7f00:1').label).toMatch(/NAT64 127\.0\.0\.1/);
  });
});
