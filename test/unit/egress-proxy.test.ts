/**
 * The real proxy against real HTTP servers, all on 127.0.0.1. Names are resolved only by the
 * injected resolver, and names that "resolve" to public addresses are connected through an
 * injected connector that redirects to a loopback server — nothing leaves loopback.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { connect as netConnect, type AddressInfo, type Socket } from 'node:net';
import { Duplex } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Allowlist, type Resolver } from '../../src/main/vm/egress/allowlist.js';
import {
  EgressProxy,
  type EgressDecision,
  type PersonAnswer,
  type UpstreamConnector,
} from '../../src/main/vm/egress/proxy.js';
import { tableResolver } from '../helpers/table-resolver.js';

const PUBLIC_IP = '93.184.215.14';

interface Target {
  server: Server;
  port: number;
  requests: { method: string; url: string; headers: IncomingMessage['headers'] }[];
}

/** A small origin server on 127.0.0.1 that records what reached it. */
async function startTarget(name: string): Promise<Target> {
  const requests: Target['requests'] = [];
  const server = createServer((req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (req.url === '/echo-body') {
      const hash = createHash('sha256');
      let bytes = 0;
      req.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        hash.update(chunk);
        uploadProgress?.(bytes);
      });
      req.on('end', () => res.end(JSON.stringify({ bytes, sha256: hash.digest('hex') })));
      return;
    }
    if (req.url === '/big') {
      void streamBig(res);
      return;
    }
    res.setHeader('X-Upstream', name);
    res.setHeader('Connection', 'close, X-Secret-Hop');
    res.setHeader('X-Secret-Hop', 'must not pass');
    res.end(`hello from ${name} ${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, requests };
}

/** Hooks the streaming tests use to prove nothing is buffered whole. */
let uploadProgress: ((bytes: number) => void) | undefined;
let bigGate: Promise<void> | undefined;
const BIG_SIZE = 20 * 1024 * 1024;
const BIG_CHUNK = randomBytes(64 * 1024);
const BIG_SHA = (() => {
  const h = createHash('sha256');
  for (let i = 0; i < BIG_SIZE / BIG_CHUNK.length; i++) h.update(BIG_CHUNK);
  return h.digest('hex');
})();

async function streamBig(res: ServerResponse): Promise<void> {
  res.writeHead(200, { 'Content-Type': 'application/octet-stream' });
  const chunks = BIG_SIZE / BIG_CHUNK.length;
  for (let i = 0; i < chunks; i++) {
    // After the first 1 MB, wait until the client has seen bytes: a buffering proxy deadlocks.
    if (i === 16 && bigGate) await bigGate;
    if (!res.write(BIG_CHUNK)) await new Promise((r) => res.once('drain', r));
  }
  res.end();
}

interface RawResponse {
  status: number;
  head: string;
  body: string;
}

/** Sends raw bytes to the proxy and reads until the proxy closes the connection. */
function rawExchange(port: number, data: string | Buffer, timeoutMs = 5000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = netConnect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${Buffer.concat(chunks).toString()}`));
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(parseResponse(Buffer.concat(chunks).toString('utf8')));
    });
    socket.write(data);
  });
}

function parseResponse(text: string): RawResponse {
  const split = text.indexOf('\r\n\r\n');
  const head = split < 0 ? text : text.slice(0, split);
  const body = split < 0 ? '' : text.slice(split + 4);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
  return { status, head, body };
}

/** `GET <absolute url>` through the proxy. */
function proxyGet(proxyPort: number, url: string): Promise<RawResponse> {
  return rawExchange(
    proxyPort,
    `GET ${url} HTTP/1.1\r\nHost: ignored.example\r\nConnection: close\r\n\r\n`,
  );
}

/**
 * CONNECT through the proxy; on 200 speaks HTTP over the tunnel and returns that response as
 * `tunnelled`.
 */
function proxyConnect(
  proxyPort: number,
  target: string,
  viaSocket?: Duplex,
): Promise<{ connect: RawResponse; tunnelled?: RawResponse }> {
  return new Promise((resolve, reject) => {
    const socket = viaSocket ?? netConnect(proxyPort, '127.0.0.1');
    let buffer = Buffer.alloc(0);
    let connect: RawResponse | undefined;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`CONNECT ${target} timed out; got ${buffer.toString()}`));
    }, 5000);
    socket.on('error', () => {});
    socket.on('data', (c: Buffer) => {
      buffer = Buffer.concat([buffer, c]);
      if (!connect) {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        connect = parseResponse(buffer.subarray(0, end + 4).toString());
        buffer = buffer.subarray(end + 4);
        if (connect.status === 200) {
          buffer = Buffer.alloc(0);
          socket.write(`GET /through-tunnel HTTP/1.1\r\nHost: tunnel\r\nConnection: close\r\n\r\n`);
        }
      }
    });
    socket.on('end', () => socket.end());
    socket.on('close', () => {
      clearTimeout(timer);
      if (!connect) {
        resolve({ connect: parseResponse(buffer.toString()) });
      } else if (connect.status === 200) {
        resolve({ connect, tunnelled: parseResponse(buffer.toString()) });
      } else {
        resolve({ connect: { ...connect, body: buffer.toString() } });
      }
    });
    socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  });
}

let target: Target;
let other: Target;
const proxies: EgressProxy[] = [];

beforeAll(async () => {
  target = await startTarget('target');
  other = await startTarget('other');
});

afterAll(async () => {
  target.server.closeAllConnections();
  other.server.closeAllConnections();
  await new Promise((r) => target.server.close(r));
  await new Promise((r) => other.server.close(r));
});

afterEach(async () => {
  for (const p of proxies.splice(0)) await p.close();
  target.requests.length = 0;
  other.requests.length = 0;
  uploadProgress = undefined;
  bigGate = undefined;
});

async function startProxy(
  entries: string[],
  extra: {
    resolve?: Resolver;
    connect?: UpstreamConnector;
    askPerson?: (host: string, port: number) => Promise<PersonAnswer>;
    connectTimeoutMs?: number;
  } = {},
): Promise<{
  proxy: EgressProxy;
  port: number;
  decisions: EgressDecision[];
  allowlist: Allowlist;
}> {
  const decisions: EgressDecision[] = [];
  const allowlist = new Allowlist(entries);
  const proxy = new EgressProxy({
    allowlist,
    onDecision: (d) => decisions.push(d),
    resolve: extra.resolve ?? tableResolver({}),
    ...(extra.connect ? { connect: extra.connect } : {}),
    ...(extra.askPerson ? { askPerson: extra.askPerson } : {}),
    ...(extra.connectTimeoutMs ? { connectTimeoutMs: extra.connectTimeoutMs } : {}),
  });
  proxies.push(proxy);
  const { port } = await proxy.listen();
  return { proxy, port, decisions, allowlist };
}

/** Every spelling of loopback, with the canonical target the 403 must name. */
function loopbackSpellings(port: number): [string, string][] {
  return [
    ['127.0.0.1', `127.0.0.1:${port}`],
    ['127.1', `127.0.0.1:${port}`],
    ['0x7f.0.0.1', `127.0.0.1:${port}`],
    ['0x7f000001', `127.0.0.1:${port}`],
    ['2130706433', `127.0.0.1:${port}`],
    ['0177.0.0.1', `127.0.0.1:${port}`],
    ['017700000001', `127.0.0.1:${port}`],
    ['[::1]', `[::1]:${port}`],
    ['[::ffff:127.0.0.1]', `[::ffff:127.0.0.1]:${port}`],
    ['[::ffff:7f00:1]', `[::ffff:127.0.0.1]:${port}`],
    ['localhost', `localhost:${port}`],
    ['LOCALHOST.', `localhost:${port}`],
    ['loopback.test', `loopback.test:${port}`],
    ['sub.wild.test', `sub.wild.test:${port}`],
  ];
}

describe('EgressProxy: loopback is refused in every spelling', () => {
  it('plain HTTP and CONNECT get 403 naming the canonical host', async () => {
    const resolver = tableResolver({
      'loopback.test': ['127.0.0.1'],
      'sub.wild.test': ['127.0.0.1'],
    });
    // Entries that make the names resolvable, but never open loopback: a port-less name, a
    // wildcard with the port, and the exact address on a different port.
    const { port, decisions } = await startProxy(
      ['loopback.test', `*.wild.test:${target.port}`, `127.0.0.1:${other.port}`],
      { resolve: resolver },
    );
    // loopback.test has no port in its entry, so it is checked on 80; give it its own case.
    const cases = loopbackSpellings(target.port).filter(([h]) => h !== 'loopback.test');
    for (const [spelling, canonical] of cases) {
      const res = await proxyGet(port, `http://${spelling}:${target.port}/secret`);
      expect(res.status, spelling).toBe(403);
      expect(res.body, spelling).toContain(`Paddock blocked a connection to ${canonical}:`);
      expect(res.body).toContain(`--allow-host ${canonical} (CLI)`);
      const tunnel = await proxyConnect(port, `${spelling}:${target.port}`);
      expect(tunnel.connect.status, spelling).toBe(403);
      expect(tunnel.connect.body).toContain(`Paddock blocked a connection to ${canonical}:`);
      expect(tunnel.tunnelled).toBeUndefined();
    }
    const viaName = await proxyGet(port, 'http://loopback.test/secret');
    expect(viaName.status).toBe(403);
    expect(viaName.body).toContain(
      'loopback.test:80: it resolves to 127.0.0.1, a loopback address',
    );
    const viaNameConnect = await proxyConnect(port, 'loopback.test:443');
    expect(viaNameConnect.connect.status).toBe(403);
    expect(target.requests).toEqual([]);
    expect(decisions.every((d) => !d.allowed)).toBe(true);
    expect(decisions).toHaveLength(cases.length * 2 + 2);
  });

  it('an exact 127.0.0.1:PORT entry opens that port only', async () => {
    const { port } = await startProxy([`127.0.0.1:${target.port}`]);
    for (const spelling of [
      '127.0.0.1',
      '127.1',
      '0x7f.0.0.1',
      '0x7f000001',
      '2130706433',
      '0177.0.0.1',
      '017700000001',
      '[::ffff:127.0.0.1]',
      '[::ffff:7f00:1]',
    ]) {
      const res = await proxyGet(port, `http://${spelling}:${target.port}/hi`);
      expect(res.status, spelling).toBe(200);
      expect(res.body).toBe('hello from target GET /hi');
      const tunnel = await proxyConnect(port, `${spelling}:${target.port}`);
      expect(tunnel.connect.status, spelling).toBe(200);
      expect(tunnel.connect.head).toMatch(/^HTTP\/1\.1 200 Connection Established/);
      expect(tunnel.tunnelled?.body).toBe('hello from target GET /through-tunnel');
    }
    // Same host, another port: refused, and the other server never sees a request.
    const res = await proxyGet(port, `http://127.0.0.1:${other.port}/`);
    expect(res.status).toBe(403);
    expect(res.body).toContain(`127.0.0.1:${other.port}`);
    expect((await proxyConnect(port, `127.1:${other.port}`)).connect.status).toBe(403);
    expect(other.requests).toEqual([]);
    // Different spellings of *other* loopback hosts stay refused.
    for (const spelling of ['[::1]', 'localhost', '127.0.0.2']) {
      expect((await proxyGet(port, `http://${spelling}:${target.port}/`)).status, spelling).toBe(
        403,
      );
    }
  });

  it('a name allowed with its exact port connects to the address it checked, without re-resolving', async () => {
    const resolver = tableResolver({ 'svc.test': ['127.0.0.1'] });
    const { port, decisions } = await startProxy([`svc.test:${target.port}`], {
      resolve: resolver,
    });
    const res = await proxyGet(port, `http://svc.test:${target.port}/x`);
    expect(res.status).toBe(200);
    // The origin sees the canonical Host, not the one the client sent to the proxy.
    expect(target.requests[0]?.headers.host).toBe(`svc.test:${target.port}`);
    const tunnel = await proxyConnect(port, `SVC.TEST.:${target.port}`);
    expect(tunnel.tunnelled?.body).toBe('hello from target GET /through-tunnel');
    // One lookup per request; "svc.test" does not exist in real DNS, so success proves the
    // connection went to the checked address.
    expect(resolver.calls).toEqual(['svc.test', 'svc.test']);
    expect(decisions.map((d) => [d.method, d.host, d.port, d.allowed, d.rule])).toEqual([
      ['GET', 'svc.test', target.port, true, `svc.test:${target.port}`],
      ['CONNECT', 'svc.test', target.port, true, `svc.test:${target.port}`],
    ]);
  });
});

describe('EgressProxy: allowlist semantics through the proxy', () => {
  /** Redirects every upstream connect to a loopback target while recording the checked address. */
  function redirectingConnector(to: Target): UpstreamConnector & { seen: string[] } {
    const seen: string[] = [];
    const fn: UpstreamConnector = async ({ address, port }) => {
      seen.push(`${address}:${port}`);
      return await new Promise<Duplex>((resolve, reject) => {
        const s: Socket = netConnect(to.port, '127.0.0.1', () => resolve(s));
        s.once('error', reject);
      });
    };
    return Object.assign(fn, { seen });
  }

  it('*.example.com matches subdomains, not the apex; ports 80/443 only', async () => {
    const resolver = tableResolver({
      'api.example.com': [PUBLIC_IP],
      'a.b.example.com': [PUBLIC_IP],
      'example.com': [PUBLIC_IP],
      'evilexample.com': [PUBLIC_IP],
      'internal.example.com': ['10.0.0.8'],
      'mixed.example.com': [PUBLIC_IP, '169.254.169.254'],
    });
    const connector = redirectingConnector(target);
    const { port, decisions } = await startProxy(['*.example.com'], {
      resolve: resolver,
      connect: connector,
    });

    const ok = await proxyConnect(port, 'api.example.com:443');
    expect(ok.connect.status).toBe(200);
    expect(ok.tunnelled?.body).toBe('hello from target GET /through-tunnel');
    const plain = await proxyGet(port, 'http://a.b.example.com/page?q=1');
    expect(plain.status).toBe(200);
    expect(plain.body).toBe('hello from target GET /page?q=1');
    expect(connector.seen).toEqual([`${PUBLIC_IP}:443`, `${PUBLIC_IP}:80`]);

    resolver.calls.length = 0;
    for (const t of [
      'example.com:443',
      'evilexample.com:443',
      'api.example.com:8443',
      'api.example.com:22',
    ]) {
      const res = await proxyConnect(port, t);
      expect(res.connect.status, t).toBe(403);
      expect(res.connect.body).toContain(`Paddock blocked a connection to ${t}:`);
    }
    // Refused names were never looked up.
    expect(resolver.calls).toEqual([]);
    const internal = await proxyConnect(port, 'internal.example.com:443');
    expect(internal.connect.body).toContain('resolves to 10.0.0.8, a private address');
    const mixed = await proxyGet(port, 'http://mixed.example.com/');
    expect(mixed.status).toBe(403);
    expect(mixed.body).toContain('169.254.169.254, a cloud metadata address');
    expect(connector.seen).toHaveLength(2);
    expect(decisions.filter((d) => d.allowed)).toHaveLength(2);
    expect(decisions).toHaveLength(8);
  });

  it('an unresolvable allowed name is a 502 with a sentence, recorded as refused', async () => {
    const { port, decisions } = await startProxy(['*.example.com']);
    const res = await proxyGet(port, 'http://nowhere.example.com/');
    expect(res.status).toBe(502);
    expect(res.body).toMatch(
      /could not connect to nowhere\.example\.com:80: its name could not be resolved \(ENOTFOUND\)/,
    );
    expect(decisions).toMatchObject([{ host: 'nowhere.example.com', allowed: false }]);
  });

  it('upstream failures are 502 with a sentence', async () => {
    const closed = await startTarget('closed');
    const closedPort = closed.port;
    await new Promise((r) => closed.server.close(r));
    const { port } = await startProxy([`127.0.0.1:${closedPort}`]);
    const res = await proxyGet(port, `http://127.0.0.1:${closedPort}/`);
    expect(res.status).toBe(502);
    expect(res.body).toBe(
      `Paddock could not connect to 127.0.0.1:${closedPort}: the connection was refused.\n`,
    );
    const tunnel = await proxyConnect(port, `127.0.0.1:${closedPort}`);
    expect(tunnel.connect.status).toBe(502);
  });

  it('an upstream connect that hangs times out', async () => {
    const hanging: UpstreamConnector = () => new Promise<Duplex>(() => {});
    const resolver = tableResolver({ 'slow.example.com': [PUBLIC_IP] });
    const { port } = await startProxy(['slow.example.com'], {
      resolve: resolver,
      connect: hanging,
      connectTimeoutMs: 200,
    });
    const started = Date.now();
    const res = await proxyConnect(port, 'slow.example.com:443');
    expect(res.connect.status).toBe(502);
    expect(res.connect.body).toMatch(/timed out after 200 ms/);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('the allowlist can change while the proxy runs', async () => {
    const { port, allowlist } = await startProxy([]);
    expect((await proxyGet(port, `http://127.0.0.1:${target.port}/`)).status).toBe(403);
    allowlist.add(`127.0.0.1:${target.port}`);
    expect((await proxyGet(port, `http://127.0.0.1:${target.port}/`)).status).toBe(200);
    allowlist.remove(`127.0.0.1:${target.port}`);
    expect((await proxyGet(port, `http://127.0.0.1:${target.port}/`)).status).toBe(403);
  });

  it('asks the person: once, session, deny; grants never open internal addresses', async () => {
    const answers: PersonAnswer[] = [];
    const asked: string[] = [];
    const resolver = tableResolver({
      'once.example.com': [PUBLIC_IP],
      'session.example.com': [PUBLIC_IP],
      'deny.example.com': [PUBLIC_IP],
      'sneaky.example.com': ['169.254.169.254'],
    });
    const connector = redirectingConnector(target);
    const { port, allowlist, decisions } = await startProxy([], {
      resolve: resolver,
      connect: connector,
      askPerson: async (host, p) => {
        asked.push(`${host}:${p}`);
        return answers.shift() ?? 'deny';
      },
    });
    answers.push('once');
    expect((await proxyConnect(port, 'once.example.com:443')).connect.status).toBe(200);
    expect(allowlist.toStrings()).toEqual([]);
    answers.push('session');
    expect((await proxyConnect(port, 'session.example.com:443')).connect.status).toBe(200);
    expect(allowlist.toStrings()).toEqual(['session.example.com:443']);
    // Now allowed without asking.
    expect((await proxyConnect(port, 'session.example.com:443')).connect.status).toBe(200);
    answers.push('deny');
    const denied = await proxyConnect(port, 'deny.example.com:443');
    expect(denied.connect.status).toBe(403);
    expect(denied.connect.body).toContain('the person refused it');
    answers.push('always');
    const sneaky = await proxyConnect(port, 'sneaky.example.com:443');
    expect(sneaky.connect.status).toBe(403);
    expect(sneaky.connect.body).toContain('169.254.169.254, a cloud metadata address');
    // Literal internal addresses are refused without asking.
    expect((await proxyConnect(port, `127.0.0.1:${target.port}`)).connect.status).toBe(403);
    expect(asked).toEqual([
      'once.example.com:443',
      'session.example.com:443',
      'deny.example.com:443',
      'sneaky.example.com:443',
    ]);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false, false]);
    expect(decisions[0]?.reason).toMatch(/allowed once by the person/);
  });
});

describe('EgressProxy: decisions', () => {
  it('records exactly one decision per request with its fields', async () => {
    const { port, decisions } = await startProxy([`127.0.0.1:${target.port}`]);
    const before = Date.now();
    await proxyGet(port, `http://127.1:${target.port}/a`);
    await proxyConnect(port, `0x7f000001:${target.port}`);
    await proxyGet(port, 'http://evil.example/');
    await proxyConnect(port, 'bad_host.example:443');
    await proxyConnect(port, 'no-port.example');
    expect(decisions).toHaveLength(5);
    expect(decisions[0]).toEqual({
      host: '127.0.0.1',
      port: target.port,
      method: 'GET',
      allowed: true,
      reason: `allowed by 127.0.0.1:${target.port}`,
      rule: `127.0.0.1:${target.port}`,
      at: expect.any(Number) as number,
    });
    expect(decisions[0]?.at).toBeGreaterThanOrEqual(before);
    expect(decisions[1]).toMatchObject({ method: 'CONNECT', allowed: true });
    expect(decisions[2]).toMatchObject({
      host: 'evil.example',
      port: 80,
      method: 'GET',
      allowed: false,
      reason: "it is not on this task's network allowlist",
    });
    expect(decisions[3]).toMatchObject({ host: 'bad_host.example', port: 443, allowed: false });
    expect(decisions[4]).toMatchObject({ host: 'no-port.example', port: 0, allowed: false });
  });

  it('the 403 body says how to allow it', async () => {
    const { port } = await startProxy([]);
    const res = await proxyConnect(port, 'evil.example:443');
    expect(res.connect.status).toBe(403);
    expect(res.connect.body).toBe(
      "Paddock blocked a connection to evil.example:443: it is not on this task's network allowlist. To allow it, add --allow-host evil.example (CLI) or add evil.example in the task's Network settings.\n",
    );
    const odd = await proxyGet(port, 'http://evil.example:8443/');
    expect(odd.body).toContain('add --allow-host evil.example:8443 (CLI)');
  });

  it('refuses to allow a connection it could not record', async () => {
    const proxy = new EgressProxy({
      allowlist: new Allowlist([`127.0.0.1:${target.port}`]),
      onDecision: () => {
        throw new Error('disk full');
      },
    });
    proxies.push(proxy);
    const { port } = await proxy.listen();
    const res = await proxyGet(port, `http://127.0.0.1:${target.port}/`);
    expect(res.status).not.toBe(200);
    expect(target.requests).toEqual([]);
  });
});

describe('EgressProxy: forwarding', () => {
  it('removes hop-by-hop headers both ways and keeps end-to-end ones', async () => {
    const { port } = await startProxy([`127.0.0.1:${target.port}`]);
    const res = await rawExchange(
      port,
      `GET http://127.0.0.1:${target.port}/h HTTP/1.1\r\nHost: elsewhere\r\nProxy-Authorization: Basic c2VjcmV0\r\n` +
        `Proxy-Connection: keep-alive\r\nConnection: close, X-Drop-Me\r\nX-Drop-Me: 1\r\nX-Keep: 2\r\nTE: trailers\r\n\r\n`,
    );
    expect(res.status).toBe(200);
    const seen = target.requests[0]?.headers ?? {};
    expect(seen.host).toBe(`127.0.0.1:${target.port}`);
    expect(seen['x-keep']).toBe('2');
    for (const h of ['proxy-authorization', 'proxy-connection', 'x-drop-me', 'te'])
      expect(seen[h], h).toBeUndefined();
    expect(res.head).toMatch(/X-Upstream: target/i);
    expect(res.head).not.toMatch(/X-Secret-Hop/i);
  });

  it('streams a 20 MB response without buffering it whole', async () => {
    const { port } = await startProxy([`127.0.0.1:${target.port}`]);
    let release!: () => void;
    bigGate = new Promise<void>((r) => (release = r));
    const result = await new Promise<{
      bytes: number;
      sha256: string;
      firstBytesBeforeGate: boolean;
    }>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        path: `http://127.0.0.1:${target.port}/big`,
        headers: { Host: `127.0.0.1:${target.port}` },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        let firstBytesBeforeGate = false;
        res.on('data', (c: Buffer) => {
          if (bytes === 0) {
            // The origin is still holding back 19 MB: the proxy forwards as data arrives.
            firstBytesBeforeGate = true;
            release();
          }
          bytes += c.length;
          hash.update(c);
        });
        res.on('end', () => resolve({ bytes, sha256: hash.digest('hex'), firstBytesBeforeGate }));
      });
      req.end();
    });
    expect(result.firstBytesBeforeGate).toBe(true);
    expect(result.bytes).toBe(BIG_SIZE);
    expect(result.sha256).toBe(BIG_SHA);
  });

  it('streams a 20 MB upload (chunked) without buffering it whole', async () => {
    const { port } = await startProxy([`127.0.0.1:${target.port}`]);
    let seenByOrigin!: () => void;
    const originGotBytes = new Promise<void>((r) => (seenByOrigin = r));
    uploadProgress = (bytes) => {
      if (bytes > 0) seenByOrigin();
    };
    const hash = createHash('sha256');
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `http://127.0.0.1:${target.port}/echo-body`,
        headers: { Host: `127.0.0.1:${target.port}`, 'Transfer-Encoding': 'chunked' },
      });
      req.on('error', reject);
      req.on('response', (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      });
      void (async () => {
        for (let i = 0; i < BIG_SIZE / BIG_CHUNK.length; i++) {
          // After 1 MB, wait until the origin has received bytes.
          if (i === 16) await originGotBytes;
          hash.update(BIG_CHUNK);
          if (!req.write(BIG_CHUNK)) await new Promise((r) => req.once('drain', r));
        }
        req.end();
      })();
    });
    expect(JSON.parse(body)).toEqual({ bytes: BIG_SIZE, sha256: hash.digest('hex') });
  });

  it('forwards bytes a client sends right behind CONNECT, before the 200', async () => {
    const { port } = await startProxy([`127.0.0.1:${target.port}`]);
    const res = await rawExchange(
      port,
      `CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET /eager HTTP/1.1\r\nHost: tunnel\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(200);
    expect(res.body).toContain('hello from target GET /eager');
  });

  it('keeps a client connection alive across requests and decides each one', async () => {
    const { port, decisions } = await startProxy([`127.0.0.1:${target.port}`]);
    const res = await rawExchange(
      port,
      `GET http://127.0.0.1:${target.port}/one HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET http://127.0.0.1:${other.port}/two HTTP/1.1\r\nHost: x\r\n\r\n` +
        `GET http://127.0.0.1:${target.port}/three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
    );
    expect(res.status).toBe(200);
    expect(res.body).toContain('hello from target GET /one');
    expect(res.body).toContain(`blocked a connection to 127.0.0.1:${other.port}`);
    expect(res.body).toContain('hello from target GET /three');
    expect(decisions.map((d) => d.allowed)).toEqual([true, false, true]);
  });
});

describe('EgressProxy: bad input', () => {
  it('answers origin-form requests and requests to itself with 400', async () => {
    const { port, proxy } = await startProxy([]);
    const origin = await rawExchange(
      port,
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
    );
    expect(origin.status).toBe(400);
    expect(origin.body).toMatch(/only forwards proxy requests/);
    proxy.allowlist.add(`127.0.0.1:${port}`);
    for (const spelling of ['127.0.0.1', '127.1', '0.0.0.0', 'localhost']) {
      const self = await proxyGet(port, `http://${spelling}:${port}/`);
      expect(self.status, spelling).toBe(400);
      expect(self.body).toMatch(/Paddock's own network proxy/);
      expect((await proxyConnect(port, `${spelling}:${port}`)).connect.status, spelling).toBe(400);
    }
  });

  it('refuses https:// in a plain request, other schemes, and URL credentials', async () => {
    const { port } = await startProxy([`127.0.0.1:${target.port}`]);
    expect((await proxyGet(port, `https://127.0.0.1:${target.port}/`)).body).toMatch(/CONNECT/);
    expect((await proxyGet(port, `ftp://127.0.0.1:${target.port}/`)).status).toBe(400);
    const creds = await proxyGet(port, `http://user:pw@127.0.0.1:${target.port}/`);
    expect(creds.status).toBe(400);
    const trick = await proxyGet(port, `http://127.0.0.1:${target.port}@evil.example/`);
    expect(trick.status).toBe(400);
    expect(target.requests).toEqual([]);
  });

  it('survives garbage and keeps serving', async () => {
    const { port } = await startProxy([`127.0.0.1:${target.port}`]);
    const garbage: (string | Buffer)[] = [
      randomBytes(4096),
      'HELLO\r\n\r\n',
      '\r\n\r\nGARBAGE\r\n\r\n',
      'GET\r\n\r\n',
      'CONNECT\r\n\r\n',
      'CONNECT  HTTP/1.1\r\n\r\n',
      'CONNECT [::1 HTTP/1.1\r\n\r\n',
      'CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n',
      'CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n',
      'CONNECT evil\u0000host:443 HTTP/1.1\r\n\r\n',
      `GET http://127.0.0.1:${target.port}/ HTTP/1.1\r\nX: ${'a'.repeat(100_000)}\r\n\r\n`,
      `GET http://[::1/ HTTP/1.1\r\nConnection: close\r\n\r\n`,
      `GET http://%31%32%37.0.0.1:${target.port}/ HTTP/1.1\r\nConnection: close\r\n\r\n`,
      `GET http://127.0.0.1:${target.port}/ HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      'POST http://a.example/ HTTP/1.1\r\nContent-Length: -1\r\n\r\n',
      Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]),
    ];
    for (const g of garbage) {
      const res = await rawExchange(port, g);
      expect(
        res.status === 0 || (res.status >= 400 && res.status < 500),
        String(g).slice(0, 40),
      ).toBe(true);
    }
    // A client that goes away mid-CONNECT or mid-request does not hurt either.
    const half = netConnect(port, '127.0.0.1');
    half.on('error', () => {});
    half.write(`CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n`);
    half.destroy();
    expect(target.requests).toEqual([]);
    const ok = await proxyGet(port, `http://127.0.0.1:${target.port}/still-alive`);
    expect(ok.status).toBe(200);
  });
});

/** Two connected in-memory Duplex streams (Node 20 has no stream.duplexPair). */
function duplexPair(): [Duplex, Duplex] {
  const sides: Duplex[] = [];
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _enc, cb) {
        peer().push(chunk);
        cb();
      },
      final(cb) {
        peer().push(null);
        cb();
      },
      destroy(err, cb) {
        const p = peer();
        if (!p.destroyed) p.destroy();
        cb(err);
      },
    });
  sides.push(
    make(() => sides[1] as Duplex),
    make(() => sides[0] as Duplex),
  );
  return [sides[0] as Duplex, sides[1] as Duplex];
}

describe('EgressProxy.handleSocket', () => {
  it('serves a guest tunnel Duplex directly, without listening', async () => {
    const decisions: EgressDecision[] = [];
    const proxy = new EgressProxy({
      allowlist: new Allowlist([`127.0.0.1:${target.port}`]),
      onDecision: (d) => decisions.push(d),
      resolve: tableResolver({}),
    });
    proxies.push(proxy);

    const [guest, host] = duplexPair();
    proxy.handleSocket(host);
    const tunnel = await proxyConnect(0, `127.1:${target.port}`, guest);
    expect(tunnel.connect.status).toBe(200);
    expect(tunnel.tunnelled?.body).toBe('hello from target GET /through-tunnel');

    const [guest2, host2] = duplexPair();
    proxy.handleSocket(host2);
    const text = await new Promise<string>((resolve) => {
      let out = '';
      guest2.on('data', (c: Buffer) => (out += c.toString()));
      guest2.on('end', () => resolve(out));
      guest2.on('close', () => resolve(out));
      guest2.write(`GET http://127.0.0.1:${target.port}/dup HTTP/1.1\r\nHost: x\r\n\r\n`);
      guest2.write(
        `GET http://127.0.0.2:${target.port}/dup HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
      );
    });
    expect(text).toContain('hello from target GET /dup');
    expect(text).toContain('403 Forbidden');
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, false]);
  });

  it('close() destroys open tunnels and refuses new sockets', async () => {
    const { proxy, port } = await startProxy([`127.0.0.1:${target.port}`]);
    const socket = netConnect(port, '127.0.0.1');
    socket.on('error', () => {});
    const established = new Promise<void>((resolve) => {
      socket.once('data', (c: Buffer) => {
        expect(c.toString()).toMatch(/^HTTP\/1\.1 200/);
        resolve();
      });
    });
    socket.write(`CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`);
    await established;
    const [guest, host] = duplexPair();
    proxy.handleSocket(host);
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    await proxy.close();
    await closed;
    expect(guest.destroyed || host.destroyed).toBe(true);
    const [, late] = duplexPair();
    proxy.handleSocket(late);
    expect(late.destroyed).toBe(true);
    await expect(proxy.listen()).rejects.toThrow(/closed/);
  });
});
