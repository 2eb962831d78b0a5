/**
 * TLS interception with secret placeholders and pinned hosts (issue 16), with real sockets and
 * real TLS on 127.0.0.1: HTTPS origin servers with certificates from their own test CA (trusted
 * by the proxy through `upstreamCa`), and a client that CONNECTs through the proxy and then
 * speaks TLS trusting only the CA it is given.
 */
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type Server as HttpServer,
} from 'node:http';
import {
  connect as netConnect,
  createServer as createNetServer,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Allowlist } from '../../src/main/vm/egress/allowlist.js';
import { canonicalizeHost, type CanonicalHost } from '../../src/main/vm/egress/canonical-host.js';
import { interceptionFor } from '../../src/main/vm/egress/intercept.js';
import { EgressProxy, type EgressDecision } from '../../src/main/vm/egress/proxy.js';
import { ProxyCa } from '../../src/main/vm/egress/proxy-ca.js';
import { Replacer, foreignCredential } from '../../src/main/vm/egress/secret-swap.js';
import type { InterceptPolicy, ProxySecret } from '../../src/main/vm/egress/secret-types.js';
import { tableResolver } from '../helpers/table-resolver.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

interface Origin {
  port: number;
  seen: Seen[];
  close(): Promise<void>;
}

/** What every origin does: record the request, echo its Authorization and body back. */
function echo(seen: Seen[]): HttpServer {
  return createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(s);
      res.setHeader('X-Echo-Authorization', req.headers.authorization ?? '');
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ url: s.url, authorization: s.headers.authorization, body: s.body }));
    });
  });
}

/** An HTTPS origin on 127.0.0.1 whose certificate for `name` comes from `ca`. */
async function startHttpsOrigin(ca: ProxyCa, name: CanonicalHost): Promise<Origin> {
  const seen: Seen[] = [];
  const http = echo(seen);
  const context = ca.secureContextFor(name);
  const sockets = new Set<Socket>();
  const server: NetServer = createNetServer((raw) => {
    sockets.add(raw);
    raw.once('close', () => sockets.delete(raw));
    const secure = new TLSSocket(raw, { isServer: true, secureContext: context });
    secure.on('error', () => raw.destroy());
    http.emit('connection', secure);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function startHttpOrigin(): Promise<Origin> {
  const seen: Seen[] = [];
  const server = echo(seen);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** CONNECT through the proxy and TLS over it, trusting `ca` only. Rejects on a non-200. */
async function tunnel(
  proxyPort: number,
  host: string,
  port: number,
  ca: string,
): Promise<TLSSocket & { peer: X509Certificate | undefined }> {
  const raw = netConnect(proxyPort, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    let head = '';
    raw.once('error', reject);
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      raw.off('data', onData);
      raw.pause();
      if (/^HTTP\/1\.1 200/.test(head)) resolve();
      else reject(new Error(head.split('\r\n')[0]));
    };
    raw.on('data', onData);
    raw.write(`CONNECT ${host}:${port} HTTP/1.1\r\nHost: ${host}:${port}\r\n\r\n`);
  });
  const isName = canonicalizeHost(host).kind === 'name';
  const secure = tlsConnect({ socket: raw, ca, host, ...(isName ? { servername: host } : {}) });
  let peer: X509Certificate | undefined;
  await new Promise<void>((resolve, reject) => {
    // Read now: OpenSSL may replace the session (and its peer certificate) on a TLS 1.3 ticket.
    secure.once('secureConnect', () => {
      peer = secure.getPeerX509Certificate();
      resolve();
    });
    secure.once('error', reject);
  });
  return Object.assign(secure, { peer });
}

/** One HTTP request on a TLS socket (then closed). `body` as an array: written chunk by chunk. */
function send(
  socket: TLSSocket,
  options: {
    path: string;
    host: string;
    method?: string;
    headers?: Record<string, string>;
    body?: string | string[];
  },
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({
      method: options.method ?? 'GET',
      path: options.path,
      headers: { Host: options.host, ...options.headers },
      createConnection: () => socket as unknown as Socket,
    });
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        }),
      );
    });
    const body = options.body;
    if (Array.isArray(body)) {
      void (async () => {
        for (const part of body) {
          req.write(part);
          await new Promise((r) => setTimeout(r, 20));
        }
        req.end();
      })();
    } else {
      req.end(body);
    }
  });
}

/** A plain-HTTP proxy request (absolute form). */
function plainGet(proxyPort: number, url: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: proxyPort, path: url, headers });
    req.on('error', reject);
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.end();
  });
}

const basic = (text: string): string => `Basic ${Buffer.from(text).toString('base64')}`;

describe('egress proxy TLS interception', () => {
  let dir: string;
  let proxyCa: ProxyCa;
  let testCa: ProxyCa;
  let strangerCa: ProxyCa;
  let secretHost: Origin; // localhost: secrets gh (headers) and bd (inBody)
  let other: Origin; // 127.0.0.1: allowed, neither secret nor pin
  let pinned: Origin; // localhost: secret pk with pin
  let pinOnly: Origin; // localhost: in pinHosts, no secret
  let untrusted: Origin; // localhost: a secret, but a certificate from a CA nobody trusts
  let plain: Origin; // plain HTTP: localhost has a secret, 127.0.0.1 is pinned
  let proxy: EgressProxy;
  let proxyPort: number;
  let intercept: { ca: ProxyCa; policy: InterceptPolicy; upstreamCa: string[] };
  const decisions: EgressDecision[] = [];
  const localhost = canonicalizeHost('localhost');
  const token = (): string => randomBytes(16).toString('hex');
  const gh: ProxySecret = {
    name: 'gh',
    envName: 'GH_TOKEN',
    placeholder: `paddock_ph_${token()}`,
    value: `ghs_REAL${token()}`,
    hosts: [],
    inBody: false,
    pin: false,
  };
  const bd: ProxySecret = {
    name: 'bd',
    envName: 'BODY_TOKEN',
    placeholder: `paddock_ph_${token()}`,
    value: `body_REAL${token()}`,
    hosts: [],
    inBody: true,
    pin: false,
  };
  const pk: ProxySecret = {
    name: 'pk',
    envName: 'PINNED_TOKEN',
    placeholder: `paddock_ph_${token()}`,
    value: `pin_REAL${token()}`,
    hosts: [],
    inBody: false,
    pin: true,
  };
  const values = [gh.value, bd.value, pk.value];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'pdk-intercept-'));
    [proxyCa, testCa, strangerCa] = await Promise.all([
      ProxyCa.open(path.join(dir, 'proxy')),
      ProxyCa.open(path.join(dir, 'test')),
      ProxyCa.open(path.join(dir, 'stranger')),
    ]);
    secretHost = await startHttpsOrigin(testCa, localhost);
    other = await startHttpsOrigin(testCa, canonicalizeHost('127.0.0.1'));
    pinned = await startHttpsOrigin(testCa, localhost);
    pinOnly = await startHttpsOrigin(testCa, localhost);
    untrusted = await startHttpsOrigin(strangerCa, localhost);
    plain = await startHttpOrigin();
    gh.hosts = [
      `localhost:${secretHost.port}`,
      `localhost:${untrusted.port}`,
      `localhost:${plain.port}`,
    ];
    bd.hosts = [`localhost:${secretHost.port}`];
    pk.hosts = [`localhost:${pinned.port}`];
    intercept = {
      ca: proxyCa,
      policy: {
        secrets: [gh, bd, pk],
        pinHosts: [`localhost:${pinOnly.port}`, `127.0.0.1:${plain.port}`],
      },
      upstreamCa: [testCa.certPem],
    };
    proxy = new EgressProxy({
      allowlist: new Allowlist([
        ...[secretHost, pinned, pinOnly, untrusted, plain].map((o) => `localhost:${o.port}`),
        `127.0.0.1:${other.port}`,
        `127.0.0.1:${plain.port}`,
      ]),
      onDecision: (d) => decisions.push(d),
      resolve: tableResolver({}),
      intercept,
    });
    proxyPort = (await proxy.listen()).port;
  }, 60_000);

  afterAll(async () => {
    await proxy?.close();
    for (const o of [secretHost, other, pinned, pinOnly, untrusted, plain]) await o?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const get = async (
    origin: Origin,
    p: string,
    headers: Record<string, string> = {},
    extra: { method?: string; body?: string | string[]; host?: string } = {},
  ): Promise<Reply> => {
    const socket = await tunnel(proxyPort, 'localhost', origin.port, proxyCa.certPem);
    return send(socket, {
      path: p,
      host: extra.host ?? `localhost:${origin.port}`,
      headers,
      ...(extra.method ? { method: extra.method } : {}),
      ...(extra.body !== undefined ? { body: extra.body } : {}),
    });
  };

  it('sends the value to the secret host in Authorization: Bearer, in Basic and in the query', async () => {
    const bearer = await get(secretHost, '/a', { Authorization: `Bearer ${gh.placeholder}` });
    expect(bearer.status).toBe(200);
    expect(secretHost.seen.at(-1)?.headers.authorization).toBe(`Bearer ${gh.value}`);
    // A swap asks for an uncompressed response, so that the value can be swapped back.
    expect(secretHost.seen.at(-1)?.headers['accept-encoding']).toBe('identity');

    await get(secretHost, '/b', { Authorization: basic(`x-access-token:${gh.placeholder}`) });
    expect(secretHost.seen.at(-1)?.headers.authorization).toBe(basic(`x-access-token:${gh.value}`));

    await get(secretHost, `/c?access_token=${gh.placeholder}&x=1`);
    expect(secretHost.seen.at(-1)?.url).toBe(`/c?access_token=${gh.value}&x=1`);
  });

  it('swaps in the body only for a secret with inBody, also split across chunks', async () => {
    const body = `a=${gh.placeholder}&b=${bd.placeholder}`;
    const reply = await get(secretHost, '/post', {}, { method: 'POST', body });
    expect(reply.status).toBe(200);
    const seen = secretHost.seen.at(-1);
    expect(seen?.body).toBe(`a=${gh.placeholder}&b=${bd.value}`);
    expect(seen?.headers['content-length']).toBe(String(Buffer.byteLength(seen?.body ?? '')));

    // Chunked, with the placeholder cut in three pieces: streamed, swapped, sent chunked.
    const p = bd.placeholder;
    await get(
      secretHost,
      '/chunked',
      {},
      { method: 'POST', body: ['k=', p.slice(0, 7), p.slice(7, 20), `${p.slice(20)}&z=1`] },
    );
    expect(secretHost.seen.at(-1)?.body).toBe(`k=${bd.value}&z=1`);
    expect(secretHost.seen.at(-1)?.headers['transfer-encoding']).toBe('chunked');
  });

  it('an echo of the value from the secret host comes back as the placeholder', async () => {
    const reply = await get(secretHost, '/echo', { Authorization: `Bearer ${gh.placeholder}` });
    expect(secretHost.seen.at(-1)?.headers.authorization).toBe(`Bearer ${gh.value}`);
    expect(reply.headers['x-echo-authorization']).toBe(`Bearer ${gh.placeholder}`);
    expect(JSON.parse(reply.body)).toMatchObject({ authorization: `Bearer ${gh.placeholder}` });
    for (const v of values) {
      expect(reply.body).not.toContain(v);
      expect(JSON.stringify(reply.headers)).not.toContain(v);
    }
  });

  it('another allowed host gets the placeholder unchanged, through an opaque tunnel', async () => {
    // The client trusts only the test CA: it sees the origin's own certificate.
    const socket = await tunnel(proxyPort, '127.0.0.1', other.port, testCa.certPem);
    expect(socket.peer?.verify(new X509Certificate(testCa.certPem).publicKey)).toBe(true);
    expect(socket.peer?.verify(new X509Certificate(proxyCa.certPem).publicKey)).toBe(false);
    const reply = await send(socket, {
      path: `/o?token=${gh.placeholder}`,
      host: `127.0.0.1:${other.port}`,
      headers: { Authorization: `Bearer ${gh.placeholder}` },
      method: 'POST',
      body: `k=${bd.placeholder}`,
    });
    expect(reply.status).toBe(200);
    expect(other.seen.at(-1)).toMatchObject({
      url: `/o?token=${gh.placeholder}`,
      body: `k=${bd.placeholder}`,
    });
    expect(other.seen.at(-1)?.headers.authorization).toBe(`Bearer ${gh.placeholder}`);
    // And the proxy CA does not verify it: nobody terminated TLS.
    await expect(tunnel(proxyPort, '127.0.0.1', other.port, proxyCa.certPem)).rejects.toThrow();
    const connects = decisions.filter((d) => d.port === other.port);
    expect(connects.length).toBeGreaterThan(0);
    expect(connects.every((d) => d.method === 'CONNECT' && !d.intercepted && !d.secrets)).toBe(
      true,
    );
  });

  it('a secret host is intercepted: only the proxy CA verifies it there', async () => {
    await expect(tunnel(proxyPort, 'localhost', secretHost.port, testCa.certPem)).rejects.toThrow();
  });

  it('a pinned host refuses credentials that are not the placeholder, and logs pinRefused', async () => {
    const before = pinned.seen.length;
    const other1 = await get(pinned, '/', { Authorization: 'Bearer ghp_attackers_own_token' });
    expect(other1.status).toBe(403);
    expect(other1.body).toContain(`localhost:${pinned.port} is pinned`);
    expect(other1.body).toContain('$PINNED_TOKEN');
    const refused = decisions.at(-1);
    expect(refused).toMatchObject({
      allowed: false,
      pinRefused: true,
      intercepted: true,
      port: pinned.port,
      method: 'GET',
    });
    expect((await get(pinned, '/', { 'X-Api-Key': 'k123' })).status).toBe(403);
    expect((await get(pinned, '/', { Cookie: 'sid=abc' })).status).toBe(403);
    expect((await get(pinned, '/', { Cookie: `a=${pk.placeholder}; sid=attacker` })).status).toBe(
      403,
    );
    expect((await get(pinned, '/?access_token=abc')).status).toBe(403);
    expect((await get(pinned, '/', { Authorization: basic('me:mine') })).status).toBe(403);
    // The placeholder beside a credential of the attacker's own is not the person's credential.
    const mixes: Record<string, string>[] = [
      { Authorization: `Bearer ghp_attackers_own_token ${pk.placeholder}` },
      { Authorization: `Bearer ${pk.placeholder}ghp_attackers_own_token` },
      { Authorization: basic(`me:attacker${pk.placeholder}`) },
      { 'X-Api-Key': `attacker,${pk.placeholder}` },
      { Cookie: `sid=attacker${pk.placeholder}` },
    ];
    for (const mixed of mixes)
      expect((await get(pinned, '/', mixed)).status, JSON.stringify(mixed)).toBe(403);
    expect((await get(pinned, `/?access_token=attacker${pk.placeholder}`)).status).toBe(403);
    // Another secret's placeholder is not this host's credential.
    expect((await get(pinned, '/', { Authorization: `Bearer ${gh.placeholder}` })).status).toBe(
      403,
    );
    expect(pinned.seen.length).toBe(before);

    const mine = await get(pinned, '/?access_token=' + pk.placeholder, {
      Authorization: `Bearer ${pk.placeholder}`,
    });
    expect(mine.status).toBe(200);
    expect(pinned.seen.at(-1)?.headers.authorization).toBe(`Bearer ${pk.value}`);
    expect(pinned.seen.at(-1)?.url).toBe(`/?access_token=${pk.value}`);
    expect((await get(pinned, '/plain')).status).toBe(200);
  });

  it('a pinned host without a secret refuses any credential and lets a plain request pass', async () => {
    const refused = await get(pinOnly, '/', { Authorization: `Bearer ${gh.placeholder}` });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('no credentials may be sent to it');
    expect((await get(pinOnly, '/', { 'Private-Token': 'x' })).status).toBe(403);
    expect((await get(pinOnly, '/', { 'X-Session-Id': 'x' })).status).toBe(403);
    expect(pinOnly.seen.length).toBe(0);
    const ok = await get(pinOnly, '/readme?page=2', { Accept: 'text/plain' });
    expect(ok.status).toBe(200);
    expect(pinOnly.seen.at(-1)?.url).toBe('/readme?page=2');
  });

  it('an upstream certificate the trust does not accept: 502, nothing forwarded', async () => {
    const reply = await get(untrusted, '/', { Authorization: `Bearer ${gh.placeholder}` });
    expect(reply.status).toBe(502);
    expect(reply.body).toMatch(/certificate is not trusted/);
    expect(untrusted.seen.length).toBe(0);
    expect(decisions.at(-1)).toMatchObject({
      allowed: false,
      intercepted: true,
      port: untrusted.port,
    });
  });

  it('a Host header naming another host: 421, logged, not forwarded', async () => {
    const before = secretHost.seen.length;
    const reply = await get(
      secretHost,
      '/',
      { Authorization: `Bearer ${gh.placeholder}` },
      { host: `127.0.0.1:${other.port}` },
    );
    expect(reply.status).toBe(421);
    expect(secretHost.seen.length).toBe(before);
    expect(decisions.at(-1)).toMatchObject({ allowed: false, intercepted: true });
    expect(decisions.at(-1)?.reason).toMatch(/Host header names 127\.0\.0\.1/);
    // The port may be left out only for 443.
    expect((await get(secretHost, '/', {}, { host: 'localhost' })).status).toBe(421);
  });

  it('keeps a tunnel alive across requests', async () => {
    const socket = await tunnel(proxyPort, 'localhost', secretHost.port, proxyCa.certPem);
    const raw = (p: string): string =>
      `GET ${p} HTTP/1.1\r\nHost: localhost:${secretHost.port}\r\nAuthorization: Bearer ${gh.placeholder}\r\n\r\n`;
    let text = '';
    socket.setEncoding('utf8').on('data', (d: string) => (text += d));
    socket.write(raw('/one'));
    await expect.poll(() => (text.match(/HTTP\/1\.1 200/g) ?? []).length).toBe(1);
    socket.write(raw('/two'));
    await expect.poll(() => (text.match(/HTTP\/1\.1 200/g) ?? []).length).toBe(2);
    expect(secretHost.seen.slice(-2).map((s) => s.url)).toEqual(['/one', '/two']);
    expect(text).not.toContain(gh.value);
    socket.destroy();
  });

  it('plain HTTP never swaps a secret, and a pinned host keeps its pin', async () => {
    const sent = await plainGet(proxyPort, `http://localhost:${plain.port}/p?t=${gh.placeholder}`, {
      Authorization: `Bearer ${gh.placeholder}`,
    });
    expect(sent.status).toBe(200);
    expect(plain.seen.at(-1)?.headers.authorization).toBe(`Bearer ${gh.placeholder}`);
    expect(plain.seen.at(-1)?.url).toBe(`/p?t=${gh.placeholder}`);

    const before = plain.seen.length;
    const refused = await plainGet(proxyPort, `http://127.0.0.1:${plain.port}/`, {
      Authorization: 'Bearer other',
    });
    expect(refused.status).toBe(403);
    expect(refused.body).toContain('pinned');
    expect(plain.seen.length).toBe(before);
    expect(decisions.at(-1)).toMatchObject({ allowed: false, pinRefused: true, method: 'GET' });
    expect(decisions.at(-1)?.rule).toBeUndefined();
    expect((await plainGet(proxyPort, `http://127.0.0.1:${plain.port}/`, {})).status).toBe(200);
  });

  it('decisions carry the secrets swapped and intercepted, and never a value', async () => {
    const connect = decisions.find((d) => d.method === 'CONNECT' && d.port === secretHost.port);
    expect(connect).toMatchObject({ allowed: true, intercepted: true });
    expect(connect?.secrets).toBeUndefined();
    const swapped = decisions.filter((d) => d.secrets?.includes('gh'));
    expect(swapped.length).toBeGreaterThanOrEqual(3);
    expect(swapped.every((d) => d.intercepted && d.port === secretHost.port)).toBe(true);
    expect(decisions.some((d) => d.secrets?.includes('bd'))).toBe(true);
    expect(decisions.some((d) => d.secrets?.includes('pk'))).toBe(true);
    const log = JSON.stringify(decisions);
    for (const v of values) expect(log).not.toContain(v);
  });

  it('a policy without the host tunnels it opaquely again (setIntercept)', async () => {
    proxy.setIntercept({ ...intercept, policy: { secrets: [], pinHosts: [] } });
    try {
      const socket = await tunnel(proxyPort, 'localhost', secretHost.port, testCa.certPem);
      await send(socket, {
        path: '/',
        host: `localhost:${secretHost.port}`,
        headers: { Authorization: `Bearer ${gh.placeholder}` },
      });
      expect(secretHost.seen.at(-1)?.headers.authorization).toBe(`Bearer ${gh.placeholder}`);
    } finally {
      proxy.setIntercept(intercept);
    }
  });
});

describe('interceptionFor', () => {
  const secret = (hosts: string[], pin = false): ProxySecret => ({
    name: 'n',
    envName: 'N',
    placeholder: 'ph',
    value: 'v',
    hosts,
    inBody: false,
    pin,
  });
  const policy: InterceptPolicy = {
    secrets: [secret(['api.example.com']), secret(['*.pinned.example'], true)],
    pinHosts: ['git.example.org:8443'],
  };
  const at = (host: string, port: number) => interceptionFor(policy, canonicalizeHost(host), port);

  it('never intercepts a host with neither a secret nor a pin', () => {
    for (const [host, port] of [
      ['example.com', 443],
      ['evilapi.example.com', 443],
      ['api.example.com.evil.test', 443],
      ['pinned.example', 443],
      ['git.example.org', 443],
      ['93.184.215.14', 443],
    ] as const) {
      expect(at(host, port), `${host}:${port}`).toBeNull();
    }
    expect(interceptionFor({ secrets: [], pinHosts: [] }, canonicalizeHost('a.b'), 443)).toBeNull();
  });

  it('uses allowlist matching: default ports, wildcards strictly below, host:port', () => {
    expect(at('api.example.com', 443)).toMatchObject({ pinned: false });
    expect(at('API.example.com.', 80)?.secrets).toHaveLength(1);
    expect(at('api.example.com', 8443)).toBeNull();
    expect(at('a.pinned.example', 443)).toMatchObject({ pinned: true });
    expect(at('a.b.pinned.example', 443)?.secrets).toHaveLength(1);
    expect(at('git.example.org', 8443)).toEqual({ secrets: [], pinned: true });
  });
});

describe('secret swap helpers', () => {
  it('replaces patterns split across chunks, byte by byte', () => {
    const replacer = new Replacer([
      { from: Buffer.from('PLACEHOLDER'), to: Buffer.from('value') },
      { from: Buffer.from('PLA'), to: Buffer.from('p') },
    ]);
    const input = Buffer.from('xPLACEHOLDERyPLAzPLACEHOLDPLACEHOLDER');
    const out: Buffer[] = [];
    for (const byte of input) out.push(...replacer.push(Buffer.from([byte])));
    out.push(replacer.end());
    expect(Buffer.concat(out).toString()).toBe('xvalueypzpCEHOLDvalue');
  });

  it('holds back nothing when the tail cannot start a pattern', () => {
    const replacer = new Replacer([{ from: Buffer.from('secret'), to: Buffer.from('x') }]);
    expect(Buffer.concat(replacer.push(Buffer.from('data: hello\n\n'))).toString()).toBe(
      'data: hello\n\n',
    );
    expect(Buffer.concat(replacer.push(Buffer.from('a sec'))).toString()).toBe('a ');
    expect(Buffer.concat(replacer.push(Buffer.from('ret!'))).toString()).toBe('x!');
  });

  it('finds foreign credentials in headers and the query', () => {
    const s = [{ placeholder: 'PH' } as ProxySecret];
    expect(foreignCredential(['Authorization', 'Bearer PH'], '/', s)).toBeNull();
    expect(foreignCredential(['Authorization', basic('u:PH')], '/', s)).toBeNull();
    expect(foreignCredential(['X-GitHub-Token', 'abc'], '/', s)).toBe('X-GitHub-Token header');
    expect(foreignCredential([], '/?client_secret=abc', s)).toBe('client_secret query parameter');
    expect(foreignCredential([], '/?my_token=PH&page=2', s)).toBeNull();
    expect(foreignCredential([], '/?sig=x', s)).toBe('sig query parameter');
    expect(foreignCredential(['Accept', 'text/html'], '/?q=token', s)).toBeNull();
  });
});
