import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Core } from '../../src/main/core/core.js';
import { startWebHost, type WebHost } from '../../src/main/web/server.js';
import { request } from '../helpers/http.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A raw GET so the test controls the Host header exactly. */
const get = (port: number, urlPath: string, headers: Record<string, string> = {}) =>
  request(port, urlPath, { headers });
import { LATEST_SCHEMA_VERSION } from '../../src/main/store/migrations/index.js';

/**
 * Bytes straight onto a TCP socket, for request lines and headers that `http.request` would
 * refuse to send. Resolves with the status line, or with how the connection ended.
 */
function raw(port: number, text: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(text));
    let out = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve(out.split('\r\n')[0] || 'no answer');
    }, 3_000);
    s.on('data', (d: Buffer) => {
      out += d.toString('latin1');
      if (out.includes('\r\n')) s.destroy();
    });
    s.on('error', (e: NodeJS.ErrnoException) => out || (out = `error ${e.code}`));
    s.on('close', () => {
      clearTimeout(timer);
      resolve(out.split('\r\n')[0] || 'closed');
    });
  });
}

const UPGRADE_HEADERS =
  'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
  'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

/** What the renderer offers on the upgrade: the protocol, and the token as a second value. */
const protocols = (token: string) => ['paddock.v1', `paddock.token.${token}`];

function openSocket(
  port: number,
  headers: Record<string, string>,
  query = '',
  subprotocols: string[] = [],
) {
  return new Promise<{ ws?: WebSocket; status?: number }>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api${query}`, subprotocols, { headers });
    ws.on('open', () => resolve({ ws }));
    ws.on('unexpected-response', (_req, res) => resolve({ status: res.statusCode }));
    ws.on('error', () => undefined);
  });
}

function call(
  ws: WebSocket,
  msg: unknown,
): Promise<{
  id: unknown;
  result: { ok: boolean; value?: unknown; error?: { code: string; message: string } };
}> {
  const id = typeof msg === 'string' ? null : (msg as { id: unknown }).id;
  return new Promise((resolve) => {
    const onMessage = (d: WebSocket.RawData) => {
      const m = JSON.parse(d.toString());
      if ('event' in m || m.id !== id) return; // events and other replies are not ours
      ws.off('message', onMessage);
      resolve(m);
    };
    ws.on('message', onMessage);
    ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  });
}

/** The next message on the socket, or how it closed, or 'silence' when nothing comes in time. */
function next(
  ws: WebSocket,
  ms = 3_000,
): Promise<{ reply?: unknown; closed?: number; silence?: true }> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ silence: true }), ms);
    ws.once('message', (d) => {
      clearTimeout(timer);
      resolve({ reply: JSON.parse(d.toString()) });
    });
    ws.once('close', (code) => {
      clearTimeout(timer);
      resolve({ closed: code });
    });
  });
}

describe('paddock serve (web host)', () => {
  let home: { dir: string; cleanup(): void };
  let core: Core;
  let host: WebHost;
  const TOKEN = 'test-token-0123456789abcdef';
  const cookieName = () => `paddock_token_${host.port}`;
  // What would have killed `paddock serve`: vitest keeps its worker alive through an uncaught
  // exception, so the tests record them here to see what the real process would have died of.
  const crashes: unknown[] = [];
  const recordCrash = (e: unknown) => crashes.push(e);
  /** The process did not crash, and the server still answers a good request. */
  const stillServes = async () => {
    expect(crashes.map(String)).toEqual([]);
    expect((await get(host.port, `/?token=${TOKEN}`)).status).toBe(200);
  };

  beforeAll(async () => {
    process.on('uncaughtException', recordCrash);
    process.on('unhandledRejection', recordCrash);
    home = tempDir();
    const staticDir = path.join(home.dir, 'renderer');
    fs.mkdirSync(staticDir);
    fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Paddock</title>');
    fs.writeFileSync(path.join(home.dir, 'secret.txt'), 'outside the bundle');
    fs.symlinkSync(path.join(home.dir, 'secret.txt'), path.join(staticDir, 'link.txt'));
    core = new Core({ dataDir: path.join(home.dir, 'data'), host: 'web', env: {} });
    host = await startWebHost({ core, port: 0, staticDir, token: TOKEN });
  });
  afterAll(async () => {
    process.off('uncaughtException', recordCrash);
    process.off('unhandledRejection', recordCrash);
    await host.close();
    core.dispose();
    home.cleanup();
  });

  it('listens on 127.0.0.1 and prints a tokened URL', () => {
    expect(host.url).toBe(`http://127.0.0.1:${host.port}/?token=${TOKEN}`);
  });

  it('refuses a request without the token', async () => {
    const r = await get(host.port, '/');
    expect(r.status).toBe(401);
    expect(r.body).toMatch(/open the address that `paddock serve` printed/);
  });

  it('refuses a wrong token, including one that differs only in length', async () => {
    expect((await get(host.port, '/?token=wrong')).status).toBe(401);
    expect((await get(host.port, `/?token=${TOKEN}x`)).status).toBe(401);
    expect((await get(host.port, '/', { cookie: `${cookieName()}=nope` })).status).toBe(401);
  });

  it('refuses a foreign Host header even with the right token (DNS rebinding)', async () => {
    const r = await get(host.port, `/?token=${TOKEN}`, { host: `evil.example:${host.port}` });
    expect(r.status).toBe(403);
    expect((await get(host.port, `/?token=${TOKEN}`, { host: '127.0.0.1:1' })).status).toBe(403);
  });

  it('serves the UI with the right token, sets an HttpOnly cookie and a strict CSP', async () => {
    const r = await get(host.port, `/?token=${TOKEN}`);
    expect(r.status).toBe(200);
    expect(r.body).toContain('<title>Paddock</title>');
    expect(String(r.headers['set-cookie'])).toMatch(
      new RegExp(`^${cookieName()}=${TOKEN}; HttpOnly; SameSite=Strict`),
    );
    expect(r.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(r.headers['content-security-policy']).not.toMatch(/unsafe-inline/);
    const viaLocalhost = await get(host.port, '/', {
      host: `localhost:${host.port}`,
      cookie: `${cookieName()}=${TOKEN}`,
    });
    expect(viaLocalhost.status).toBe(200);
  });

  it('never serves files outside the renderer bundle', async () => {
    const r = await get(host.port, `/..%2Fsecret.txt?token=${TOKEN}`);
    expect(r.status).toBe(404);
    expect(r.body).not.toContain('outside the bundle');
  });

  it('refuses WebSocket upgrades without the token, with a wrong one, or from another origin', async () => {
    expect((await openSocket(host.port, {})).status).toBe(401);
    expect((await openSocket(host.port, { cookie: `${cookieName()}=wrong` })).status).toBe(401);
    expect(
      (await openSocket(host.port, { host: `evil.example:${host.port}` }, `?token=${TOKEN}`))
        .status,
    ).toBe(403);
    expect(
      (await openSocket(host.port, { origin: 'http://evil.example' }, '', protocols(TOKEN))).status,
    ).toBe(403);
  });

  it('answers the contract over an authorised WebSocket and survives malformed requests', async () => {
    const { ws } = await openSocket(
      host.port,
      { origin: `http://127.0.0.1:${host.port}` },
      '',
      protocols(TOKEN),
    );
    expect(ws).toBeDefined();
    const info = await call(ws!, { id: 1, channel: 'app:info', req: {} });
    expect(info).toMatchObject({
      id: 1,
      result: { ok: true, value: { host: 'web', schemaVersion: LATEST_SCHEMA_VERSION } },
    });

    const notJson = await call(ws!, '{nope');
    expect(notJson.result).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });

    const badShape = await call(ws!, {
      id: 2,
      channel: 'settings:update',
      req: { vmCpus: 'many' },
    });
    expect(badShape.result).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    expect(badShape.result.error?.message).toMatch(/vmCpus/);

    const unknownField = await call(ws!, {
      id: 3,
      channel: 'settings:update',
      req: { apiKey: 'x' },
    });
    expect(unknownField.result).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });

    const unknown = await call(ws!, {
      id: 4,
      channel: 'fs:readFile',
      req: { path: '/etc/passwd' },
    });
    expect(unknown.result).toMatchObject({ ok: false, error: { code: 'UNKNOWN_CHANNEL' } });

    // Still alive, and events reach the page.
    const changed = new Promise((resolve) =>
      ws!.on('message', (d) => {
        const m = JSON.parse(d.toString());
        if (m.event) resolve(m);
      }),
    );
    const upd = await call(ws!, { id: 5, channel: 'settings:update', req: { vmCpus: 1 } });
    expect(upd.result).toMatchObject({ ok: true, value: { vmCpus: 1 } });
    expect(await changed).toMatchObject({ event: 'settings:changed', payload: { vmCpus: 1 } });
    ws!.close();
  });

  // Hostile input, class 1: nothing a client sends may take the process down; bad input gets a 4xx.

  it('answers 400 to a path with bad percent-encoding, and keeps serving', async () => {
    const r = await raw(
      host.port,
      `GET /%E0%A4%A?token=${TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\n\r\n`,
    );
    expect(r).toBe('HTTP/1.1 400 Bad Request');
    await stillServes();
  });

  it('answers 400 before any token check to a request target that is not a path', async () => {
    for (const target of ['http://[/', 'http://a:99999/', '*', '//evil.example/x']) {
      const r = await raw(
        host.port,
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\n\r\n`,
      );
      expect(r, target).toBe('HTTP/1.1 400 Bad Request');
    }
    const upgrade = await raw(
      host.port,
      `GET http://[/api HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\n${UPGRADE_HEADERS}\r\n`,
    );
    expect(upgrade).toBe('HTTP/1.1 400 Bad Request');
    await stillServes();
  });

  it('bounds the URL and refuses NUL bytes, backslashes and traversal out of the bundle', async () => {
    const long = await get(host.port, `/${'a'.repeat(4_000)}?token=${TOKEN}`);
    expect(long.status).toBe(414);
    expect((await get(host.port, `/index.html%00.png?token=${TOKEN}`)).status).toBe(400);
    expect((await get(host.port, `/..%5Csecret.txt?token=${TOKEN}`)).status).toBe(400);
    for (const p of ['/..%2f..%2fetc/passwd', '/%2e%2e/secret.txt', '/link.txt']) {
      const r = await get(host.port, `${p}?token=${TOKEN}`);
      expect(r.status, p).toBe(404);
      expect(r.body, p).not.toContain('outside the bundle');
    }
    await stillServes();
  });

  it('refuses malformed Host headers and survives odd Cookie headers', async () => {
    const hosts = [`127.0.0.1:${host.port}@evil.example`, `127.0.0.1:${host.port}.`, '127.0.0.1'];
    for (const h of hosts) {
      expect((await get(host.port, `/?token=${TOKEN}`, { host: h })).status, h).toBe(403);
    }
    const noHost = await raw(host.port, `GET /?token=${TOKEN} HTTP/1.1\r\n\r\n`);
    expect(noHost).toBe('HTTP/1.1 400 Bad Request');
    const hugeHost = await raw(
      host.port,
      `GET /?token=${TOKEN} HTTP/1.1\r\nHost: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(hugeHost).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    const badPct = await get(host.port, '/', { cookie: `${cookieName()}=%E0%A4%A` });
    expect(badPct.status).toBe(401);
    const messy = await get(host.port, '/', {
      cookie: `=;;; a=b=c; %ZZ=%E0; ${cookieName()}=${TOKEN}`,
    });
    expect(messy.status).toBe(200);
    await stillServes();
  });

  it('survives a client that resets a refused WebSocket upgrade', async () => {
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve) => {
        const s = net.connect(host.port, '127.0.0.1', () => {
          s.write(`GET /api HTTP/1.1\r\nHost: 127.0.0.1:${host.port}\r\n${UPGRADE_HEADERS}\r\n`);
          s.resetAndDestroy();
          resolve();
        });
        s.on('error', () => undefined);
      });
    }
    await new Promise((r) => setTimeout(r, 200));
    await stillServes();
  });

  it('answers BAD_REQUEST to WebSocket messages that are JSON but not a request object', async () => {
    const { ws } = await openSocket(host.port, {}, '', protocols(TOKEN));
    expect(ws).toBeDefined();
    for (const m of ['null', '5', 'true', '"app:info"', '[1,2]']) {
      const r = await call(ws!, m);
      expect(r.result, m).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    }
    ws!.send(Buffer.from(JSON.stringify({ id: 7, channel: 'app:info', req: {} })));
    expect((await next(ws!)).reply).toMatchObject({
      id: null,
      result: { ok: false, error: { code: 'BAD_REQUEST' } },
    });
    // Still usable afterwards.
    const info = await call(ws!, { id: 8, channel: 'app:info', req: {} });
    expect(info.result.ok).toBe(true);
    ws!.close();
    await stillServes();
  });

  it('keeps replies bounded when a message carries an enormous channel or id', async () => {
    const { ws } = await openSocket(host.port, {}, '', protocols(TOKEN));
    ws!.send(JSON.stringify({ id: 9, channel: 'x'.repeat(100_000), req: {} }));
    const longChannel = await next(ws!);
    expect(longChannel.reply).toMatchObject({
      id: 9,
      result: { ok: false, error: { code: 'UNKNOWN_CHANNEL' } },
    });
    expect(JSON.stringify(longChannel.reply).length).toBeLessThan(1_000);
    ws!.send(JSON.stringify({ id: 'i'.repeat(100_000), channel: 'app:info', req: {} }));
    const longId = await next(ws!);
    expect(longId.reply).toMatchObject({
      id: null,
      result: { ok: false, error: { code: 'BAD_REQUEST' } },
    });
    expect(JSON.stringify(longId.reply).length).toBeLessThan(1_000);
    ws!.close();
  });

  it('closes a WebSocket that sends invalid UTF-8, and keeps serving', async () => {
    const { ws } = await openSocket(host.port, {}, '', protocols(TOKEN));
    ws!.send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { binary: false });
    expect(await next(ws!)).toEqual({ closed: 1007 });
    await stillServes();
  });

  it('closes a WebSocket that sends a message over 1 MiB, and keeps serving', async () => {
    const { ws } = await openSocket(host.port, {}, '', protocols(TOKEN));
    ws!.send('x'.repeat(1024 * 1024 + 1));
    expect(await next(ws!)).toEqual({ closed: 1009 });
    await stillServes();
  });

  // Class 2: the cookie is bound to this server's port, over HTTP and on the WebSocket upgrade.

  it('refuses the token in a cookie named for no port or for another port', async () => {
    const origin = `http://127.0.0.1:${host.port}`;
    for (const name of ['paddock_token', `paddock_token_${host.port + 1}`, `paddock_token_0`]) {
      const cookie = `${name}=${TOKEN}`;
      expect((await get(host.port, '/', { cookie })).status, name).toBe(401);
      expect((await openSocket(host.port, { cookie, origin })).status, name).toBe(401);
    }
    // The right token from a page on another local port is still refused (the Origin check).
    const otherPort = `http://127.0.0.1:${host.port + 1}`;
    const withToken = await openSocket(host.port, { origin: otherPort }, '', protocols(TOKEN));
    expect(withToken.status).toBe(403);
    const cookie = `${cookieName()}=${TOKEN}`;
    expect((await get(host.port, '/', { cookie })).status).toBe(200);
  });

  // Class 3: cookies are shared by every port on 127.0.0.1, so another local server the browser
  // visits receives ours; its backend can forge any Origin. The socket wants the token elsewhere.

  it('refuses a WebSocket that holds only the cookie, even with our own Origin', async () => {
    const origin = `http://127.0.0.1:${host.port}`;
    const cookie = `${cookieName()}=${TOKEN}`;
    expect((await openSocket(host.port, { cookie, origin })).status).toBe(401);
    expect((await openSocket(host.port, { cookie, origin }, '', ['paddock.v1'])).status).toBe(401);
    // Nor does the token anywhere but the subprotocol open it: the query or a bearer header.
    expect((await openSocket(host.port, { origin }, `?token=${TOKEN}`)).status).toBe(401);
    const bearer = { origin, authorization: `Bearer ${TOKEN}` };
    expect((await openSocket(host.port, bearer, '', ['paddock.v1'])).status).toBe(401);
  });

  it('refuses a wrong token in the WebSocket subprotocol', async () => {
    const origin = `http://127.0.0.1:${host.port}`;
    const cookie = `${cookieName()}=${TOKEN}`;
    const sameLength = TOKEN.slice(0, -1) + (TOKEN.endsWith('x') ? 'y' : 'x');
    for (const t of ['wrong', sameLength, `${TOKEN}x`, '']) {
      const r = await openSocket(host.port, { cookie, origin }, '', protocols(t));
      expect(r.status, t).toBe(401);
    }
    // The right token with no protocol to speak is not a Paddock client.
    const noVersion = await openSocket(host.port, { origin }, '', [`paddock.token.${TOKEN}`]);
    expect(noVersion.status).toBe(400);
  });

  it('opens the WebSocket with the token as a subprotocol, and echoes only paddock.v1', async () => {
    const origin = `http://127.0.0.1:${host.port}`;
    const { ws } = await openSocket(host.port, { origin }, '', protocols(TOKEN));
    expect(ws).toBeDefined();
    expect(ws!.protocol).toBe('paddock.v1');
    const info = await call(ws!, { id: 1, channel: 'app:info', req: {} });
    expect(info.result.ok).toBe(true);
    ws!.close();
  });
});

describe('paddock serve after close()', () => {
  const CLOSE_TOKEN = 'close-token-0123456789';
  it('refuses to start with a token that could not travel as a subprotocol value', async () => {
    for (const token of ['short', 'has a space in it, and a comma', 'x'.repeat(300)]) {
      await expect(
        startWebHost({ core: {} as Core, port: 0, staticDir: '/nonexistent', token }),
      ).rejects.toThrow(/token/);
    }
  });

  it('closes open sockets, refuses new connections and can be closed twice', async () => {
    const home = tempDir();
    const staticDir = path.join(home.dir, 'renderer');
    fs.mkdirSync(staticDir);
    fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html>');
    const core = new Core({ dataDir: path.join(home.dir, 'data'), host: 'web', env: {} });
    const host = await startWebHost({ core, port: 0, staticDir, token: CLOSE_TOKEN });
    try {
      const { ws } = await openSocket(host.port, {}, '', protocols(CLOSE_TOKEN));
      const closed = next(ws!, 5_000);
      await host.close();
      expect((await closed).closed).toBeDefined();
      await host.close();
      await expect(get(host.port, `/?token=${CLOSE_TOKEN}`)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      core.dispose();
      home.cleanup();
    }
  });
});
