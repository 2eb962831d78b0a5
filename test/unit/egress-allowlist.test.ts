import { describe, expect, it, vi } from 'vitest';
import {
  Allowlist,
  describeRefusal,
  InvalidAllowlistEntryError,
  parseAllowlistEntry,
  type Resolver,
} from '../../src/main/vm/egress/allowlist.js';
import { tableResolver } from '../helpers/table-resolver.js';

const PUBLIC_IP = '93.184.215.14';

describe('parseAllowlistEntry', () => {
  const valid: [string, string, boolean][] = [
    ['example.com', 'example.com', false],
    ['Example.COM.', 'example.com', false],
    ['  example.com  ', 'example.com', false],
    ['example.com:8443', 'example.com:8443', true],
    ['*.example.com', '*.example.com', false],
    ['*.Example.com:8443', '*.example.com:8443', false],
    ['127.0.0.1:8080', '127.0.0.1:8080', true],
    ['127.1:8080', '127.0.0.1:8080', true],
    ['0x7f000001:8080', '127.0.0.1:8080', true],
    ['[::1]:8080', '[::1]:8080', true],
    ['[::ffff:7f00:1]:8080', '[::ffff:127.0.0.1]:8080', true],
    ['localhost:3000', 'localhost:3000', true],
    [PUBLIC_IP, PUBLIC_IP, false],
    ['2606:4700:4700::1111', '[2606:4700:4700::1111]', false],
    ['xn--bcher-kva.example', 'xn--bcher-kva.example', false],
  ];
  it.each(valid)('%j → %s', (input, text, opensInternal) => {
    const e = parseAllowlistEntry(input);
    expect(e.text).toBe(text);
    expect(e.opensInternal).toBe(opensInternal);
  });

  const invalid: [string, RegExp][] = [
    ['', /empty/],
    ['*', /switch the allowlist off/],
    ['*.com', /top-level domain/],
    ['*example.com', /"\*" may only appear/],
    ['foo.*.example.com', /"\*" may only appear/],
    ['*.*.example.com', /"\*" may only appear/],
    ['*.127.0.0.1', /names, not IP addresses/],
    ['*.localhost', /localhost/],
    ['https://example.com', /not a URL/],
    ['example.com/path', /only the host/],
    ['user@example.com', /only the host/],
    ['exa mple.com', /only the host/],
    ['evil_host.com', /"_"/],
    ['example.com:0', /1 to 65535/],
    ['example.com:99999', /1 to 65535/],
    ['127.0.0.1', /only be allowed together with a port, e\.g\. 127\.0\.0\.1:8080/],
    ['127.1', /loopback/],
    ['10.0.0.1', /private/],
    ['169.254.169.254', /metadata/],
    ['[::1]', /loopback/],
    ['::ffff:127.0.0.1', /loopback/],
    ['localhost', /together with a port/],
    ['fe80::1%eth0', /zone id/],
  ];
  it.each(invalid)('%j is refused with a sentence', (input, why) => {
    let error: unknown;
    try {
      parseAllowlistEntry(input);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidAllowlistEntryError);
    expect((error as Error).message).toMatch(why);
    expect((error as Error).message).toMatch(/is not a valid network allowlist entry/);
  });
});

describe('Allowlist', () => {
  it('dedupes by canonical text and can be changed', () => {
    const list = new Allowlist(['example.com', 'EXAMPLE.com.', '127.1:8080']);
    expect(list.toStrings()).toEqual(['example.com', '127.0.0.1:8080']);
    expect(list.has('127.0.0.1:8080')).toBe(true);
    expect(list.remove('0x7f000001:8080')).toBe(true);
    expect(list.toStrings()).toEqual(['example.com']);
    list.add('*.example.com');
    expect(list.toStrings()).toEqual(['example.com', '*.example.com']);
    expect(list.remove('not valid!')).toBe(false);
  });

  it('a prompt grant does not downgrade a configured entry', () => {
    const list = new Allowlist(['127.0.0.1:8080']);
    list.add('127.0.0.1:8080', { opensInternal: false });
    expect(list.entries()[0]?.opensInternal).toBe(true);
  });
});

describe('Allowlist.decide', () => {
  const resolver = tableResolver({
    'example.com': [PUBLIC_IP],
    'api.example.com': [PUBLIC_IP],
    'a.b.example.com': ['2606:4700:4700::1111'],
    'evilexample.com': [PUBLIC_IP],
    'internal.example.com': ['10.0.0.8'],
    'mixed.example.com': [PUBLIC_IP, '169.254.169.254'],
    'localtest.me': ['127.0.0.1'],
    'v6loop.example.com': ['::1'],
    'mapped.example.com': ['::ffff:127.0.0.1'],
    localhost: [PUBLIC_IP], // a lying resolver must not matter for localhost
    'weird.example.com': ['not-an-ip'],
    'empty.example.com': [],
  });

  const decide = (list: Allowlist, host: string, port: number) => list.decide(host, port, resolver);

  it('wildcards match subdomains only, at any depth, on 80/443', async () => {
    const list = new Allowlist(['*.example.com']);
    expect((await decide(list, 'api.example.com', 443)).allowed).toBe(true);
    expect((await decide(list, 'API.EXAMPLE.COM.', 80)).allowed).toBe(true);
    const deep = await decide(list, 'a.b.example.com', 443);
    expect(deep).toMatchObject({
      allowed: true,
      rule: '*.example.com',
      addresses: ['2606:4700:4700::1111'],
    });
    expect((await decide(list, 'example.com', 443)).allowed).toBe(false);
    expect((await decide(list, 'evilexample.com', 443)).allowed).toBe(false);
    expect((await decide(list, 'api.example.com.evil.net', 443)).allowed).toBe(false);
    expect((await decide(list, 'api.example.com', 8443)).allowed).toBe(false);
  });

  it('port rules: no port means 80 and 443 only; a port means only that port', async () => {
    const list = new Allowlist(['example.com', 'api.example.com:8443']);
    expect((await decide(list, 'example.com', 80)).allowed).toBe(true);
    expect((await decide(list, 'example.com', 443)).allowed).toBe(true);
    for (const port of [22, 8080, 8443, 1, 65535]) {
      const v = await decide(list, 'example.com', port);
      expect(v.allowed).toBe(false);
      expect(v.reason).toMatch(/only ports 80, 443 of example\.com are allowed/);
      expect(v.suggestion).toBe(`example.com:${port}`);
    }
    expect((await decide(list, 'api.example.com', 8443)).allowed).toBe(true);
    expect((await decide(list, 'api.example.com', 443)).allowed).toBe(false);
  });

  it('does not resolve a name that no entry allows', async () => {
    const list = new Allowlist(['*.example.com']);
    resolver.calls.length = 0;
    await decide(list, 'example.com', 443);
    await decide(list, 'exfiltrate-secret.attacker.test', 443);
    expect(resolver.calls).toEqual([]);
    await decide(list, 'api.example.com', 443);
    expect(resolver.calls).toEqual(['api.example.com']);
  });

  it('refuses names that resolve to internal addresses unless host:port was allowed', async () => {
    const list = new Allowlist(['*.example.com', 'localtest.me', 'example.com']);
    const cases: [string, RegExp][] = [
      ['internal.example.com', /resolves to 10\.0\.0\.8, a private address/],
      ['mixed.example.com', /resolves to 169\.254\.169\.254, a cloud metadata address/],
      ['v6loop.example.com', /resolves to ::1, a loopback address/],
      ['mapped.example.com', /resolves to ::ffff:127\.0\.0\.1, a loopback address/],
      ['localtest.me', /resolves to 127\.0\.0\.1, a loopback address/],
    ];
    for (const [host, why] of cases) {
      const v = await decide(list, host, 443);
      expect(v.allowed, host).toBe(false);
      expect(v.problem).toBe('internal');
      expect(v.reason).toMatch(why);
      expect(v.suggestion).toBe(`${host}:443`);
      expect(v.addresses).toEqual([]);
    }
    // A wildcard with a port still never opens an internal address.
    list.add('*.example.com:443');
    expect((await decide(list, 'internal.example.com', 443)).allowed).toBe(false);
    // The exact host:port does.
    list.add('internal.example.com:443');
    list.add('localtest.me:443');
    expect(await decide(list, 'internal.example.com', 443)).toMatchObject({
      allowed: true,
      rule: 'internal.example.com:443',
      addresses: ['10.0.0.8'],
    });
    expect((await decide(list, 'localtest.me', 443)).allowed).toBe(true);
    expect((await decide(list, 'localtest.me', 80)).allowed).toBe(false);
  });

  it('a prompt-granted exact entry does not open internal addresses', async () => {
    const list = new Allowlist();
    list.add('internal.example.com:443', { opensInternal: false });
    expect((await decide(list, 'internal.example.com', 443)).problem).toBe('internal');
  });

  it('literal internal addresses need an exact host:port entry; every spelling is one host', async () => {
    const list = new Allowlist(['*.example.com', 'example.com', '127.0.0.1:8080']);
    for (const spelling of ['127.0.0.1', '127.1', '0x7f.0.0.1', '2130706433', '[::ffff:7f00:1]']) {
      expect((await decide(list, spelling, 8080)).allowed, spelling).toBe(true);
      const other = await decide(list, spelling, 8081);
      expect(other.allowed).toBe(false);
      expect(other.problem).toBe('internal');
    }
    expect((await decide(list, '[::1]', 8080)).allowed).toBe(false);
    expect((await decide(list, 'localhost', 8080)).allowed).toBe(false);
    expect((await decide(list, '127.0.0.2', 8080)).allowed).toBe(false);
    // NAT64 of 127.0.0.1 is a different destination, and internal.
    expect((await decide(list, '64:ff9b::7f00:1', 8080)).allowed).toBe(false);
  });

  it('localhost is loopback whatever the resolver says', async () => {
    const list = new Allowlist(['localhost:3000']);
    resolver.calls.length = 0;
    const v = await decide(list, 'LOCALHOST.', 3000);
    expect(v).toMatchObject({ allowed: true, addresses: ['127.0.0.1', '::1'] });
    expect(resolver.calls).toEqual([]);
    const denied = await decide(new Allowlist(), 'app.localhost', 80);
    expect(denied.problem).toBe('internal');
    expect(denied.reason).toMatch(/loopback/);
  });

  it('public IP literals are allowed only when listed', async () => {
    const list = new Allowlist([PUBLIC_IP]);
    expect((await decide(list, PUBLIC_IP, 443)).addresses).toEqual([PUBLIC_IP]);
    expect((await decide(list, '93.184.215.15', 443)).allowed).toBe(false);
    expect((await decide(list, PUBLIC_IP, 22)).allowed).toBe(false);
  });

  it('fails closed on resolver failures and odd answers', async () => {
    const list = new Allowlist(['*.example.com']);
    for (const host of ['missing.example.com', 'weird.example.com', 'empty.example.com']) {
      const v = await decide(list, host, 443);
      expect(v.allowed, host).toBe(false);
      expect(v.problem).toBe('unresolvable');
    }
    const failing: Resolver = vi.fn(() => Promise.reject(new Error('boom')));
    expect((await list.decide('api.example.com', 443, failing)).reason).toMatch(/boom/);
  });

  it('refuses invalid hosts with the reason', async () => {
    const v = await new Allowlist(['*.example.com']).decide('bad_host.example.com', 443, resolver);
    expect(v).toMatchObject({ allowed: false, problem: 'invalid-host' });
    expect(v.reason).toMatch(/"_"/);
  });

  it('describeRefusal names the canonical target and how to allow it', async () => {
    const list = new Allowlist();
    const plain = await decide(list, 'EVIL.example.', 443);
    expect(describeRefusal(plain)).toBe(
      "Paddock blocked a connection to evil.example:443: it is not on this task's network allowlist. To allow it, add --allow-host evil.example (CLI) or add evil.example in the task's Network settings.",
    );
    const internal = await decide(list, '0x7f000001', 5432);
    expect(describeRefusal(internal)).toMatch(
      /^Paddock blocked a connection to 127\.0\.0\.1:5432: it is a loopback address, .* add --allow-host 127\.0\.0\.1:5432 \(CLI\)/,
    );
    const v6 = await decide(list, '[::1]', 80);
    expect(describeRefusal(v6, '--net')).toMatch(/\[::1\]:80: .* add --net \[::1\]:80 \(CLI\)/);
  });
});
