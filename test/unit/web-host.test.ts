import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Core } from '../../src/main/app/core.js';
import { startWebHost, type WebHost } from '../../src/main/web/server.js';
import { tempDir } from '../helpers/temp-dir.js';
import { LATEST_SCHEMA_VERSION } from '../../src/main/store/migrations/index.js';

/** A raw request so the test controls the Host header exactly. */
function get(port: number, urlPath: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }>(
    (resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path: urlPath,
          headers: { host: `127.0.0.1:${port}`, ...headers },
        },
        (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
}

function openSocket(port: number, headers: Record<string, string>, query = '') {
  return new Promise<{ ws?: WebSocket; status?: number }>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api${query}`, { headers });
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

describe('paddock serve (web host)', () => {
  let home: { dir: string; cleanup(): void };
  let core: Core;
  let host: WebHost;
  const TOKEN = 'test-token-0123456789abcdef';

  beforeAll(async () => {
    home = tempDir();
    const staticDir = path.join(home.dir, 'renderer');
    fs.mkdirSync(staticDir);
    fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html><title>Paddock</title>');
    fs.writeFileSync(path.join(home.dir, 'secret.txt'), 'outside the bundle');
    core = new Core({ dataDir: path.join(home.dir, 'data'), host: 'web', env: {} });
    host = await startWebHost({ core, port: 0, staticDir, token: TOKEN });
  });
  afterAll(async () => {
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
    expect((await get(host.port, '/', { cookie: 'paddock_token=nope' })).status).toBe(401);
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
    expect(String(r.headers['set-cookie'])).toMatch(/paddock_token=.*HttpOnly; SameSite=Strict/);
    expect(r.headers['content-security-policy']).toMatch(/default-src 'none'/);
    expect(r.headers['content-security-policy']).not.toMatch(/unsafe-inline/);
    const viaLocalhost = await get(host.port, '/', {
      host: `localhost:${host.port}`,
      cookie: `paddock_token=${TOKEN}`,
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
    expect((await openSocket(host.port, { cookie: 'paddock_token=wrong' })).status).toBe(401);
    expect(
      (await openSocket(host.port, { host: `evil.example:${host.port}` }, `?token=${TOKEN}`))
        .status,
    ).toBe(403);
    expect(
      (
        await openSocket(host.port, {
          cookie: `paddock_token=${TOKEN}`,
          origin: 'http://evil.example',
        })
      ).status,
    ).toBe(403);
  });

  it('answers the contract over an authorised WebSocket and survives malformed requests', async () => {
    const { ws } = await openSocket(host.port, {
      cookie: `paddock_token=${TOKEN}`,
      origin: `http://127.0.0.1:${host.port}`,
    });
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
});
