import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';
import { err } from '../../shared/result.js';
import type { Core } from '../app/core.js';
import { dispatch } from '../app/dispatch.js';

export interface WebHostOptions {
  core: Core;
  /** 0 picks a free port. */
  port: number;
  /** The built renderer (index.html, app.js, app.css). */
  staticDir: string;
  /** Fixed token for tests; a random one per launch otherwise. */
  token?: string;
}

export interface WebHost {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const COOKIE = 'paddock_token';
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/** Same policy as the Electron window: nothing but our own bundled files and our own socket. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
  '.woff2': 'font/woff2',
};

/**
 * `paddock serve`: the renderer and the API over a WebSocket, on 127.0.0.1 only, behind a
 * per-launch token, refusing foreign Host headers so a DNS-rebinding page cannot reach it.
 */
export async function startWebHost(opts: WebHostOptions): Promise<WebHost> {
  const token = opts.token ?? crypto.randomBytes(24).toString('base64url');
  const staticRoot = path.resolve(opts.staticDir);
  let port = 0;

  const allowedHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  const allowedOrigins = () => new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);

  /** Returns a refusal (status, sentence) or null when the request may proceed. */
  function gate(req: http.IncomingMessage): { status: number; message: string } | null {
    // SECURITY: DNS rebinding — a page on evil.example resolving to 127.0.0.1 sends its own Host.
    if (!allowedHosts().has(req.headers.host ?? '')) {
      return {
        status: 403,
        message: 'Refused: this server answers only to 127.0.0.1 or localhost.',
      };
    }
    // SECURITY: every request must carry the per-launch token (query, cookie or bearer).
    if (!hasToken(req, token)) {
      return {
        status: 401,
        message: 'Missing or wrong token: open the address that `paddock serve` printed.',
      };
    }
    return null;
  }

  const server = http.createServer((req, res) => {
    const refusal = gate(req);
    if (refusal) {
      res.writeHead(refusal.status, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(refusal.message + '\n');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const rel = url.pathname === '/' ? 'index.html' : decodeURIComponent(url.pathname.slice(1));
    const file = path.resolve(staticRoot, rel);
    // SECURITY: never serve anything outside the renderer bundle.
    if (
      !file.startsWith(staticRoot + path.sep) ||
      !fs.existsSync(file) ||
      !fs.statSync(file).isFile()
    ) {
      res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found\n');
      return;
    }
    const headers: Record<string, string | string[]> = {
      'Content-Type': MIME[path.extname(file)] ?? 'application/octet-stream',
      'Content-Security-Policy': CONTENT_SECURITY_POLICY,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    if (url.searchParams.get('token') === token) {
      headers['Set-Cookie'] = `${COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
    }
    res.writeHead(200, headers);
    if (req.method === 'HEAD') res.end();
    else fs.createReadStream(file).pipe(res);
  });

  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  server.on('upgrade', (req, socket, head) => {
    const refusal = gate(req);
    const origin = req.headers.origin;
    // SECURITY: a page from another origin must not drive the API with the person's cookie.
    const badOrigin = origin !== undefined && !allowedOrigins().has(origin);
    const path_ = new URL(req.url ?? '/', 'http://x').pathname;
    if (refusal || badOrigin || path_ !== '/api') {
      const status = refusal?.status ?? (badOrigin ? 403 : 404);
      socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws, opts.core));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // SECURITY: loopback only; never 0.0.0.0.
    server.listen(opts.port, '127.0.0.1', () => resolve());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function hasToken(req: http.IncomingMessage, token: string): boolean {
  const candidates: string[] = [];
  const url = new URL(req.url ?? '/', 'http://x');
  const q = url.searchParams.get('token');
  if (q) candidates.push(q);
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === COOKIE && v) candidates.push(v);
  }
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) candidates.push(auth.slice(7));
  const want = Buffer.from(token);
  return candidates.some((c) => {
    const got = Buffer.from(c);
    return got.length === want.length && crypto.timingSafeEqual(got, want);
  });
}

/** One connected page: requests in, results and events out, in the contract's shapes. */
function serveSocket(ws: WebSocket, core: Core): void {
  const unsubscribe = core.events.onAny((event, payload) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ event, payload }));
  });
  ws.on('close', unsubscribe);
  ws.on('message', async (data) => {
    let msg: { id?: unknown; channel?: unknown; req?: unknown };
    try {
      msg = JSON.parse(data.toString()) as typeof msg;
    } catch {
      ws.send(
        JSON.stringify({ id: null, result: err('BAD_REQUEST', 'The message was not valid JSON.') }),
      );
      return;
    }
    const id = typeof msg.id === 'number' || typeof msg.id === 'string' ? msg.id : null;
    const result = await dispatch(core.handlers, msg.channel, msg.req);
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ id, result }));
  });
}
