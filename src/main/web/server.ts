import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { pipeline } from 'node:stream';
import path from 'node:path';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { err, type Result } from '../../shared/result.js';
import type { Core } from '../core/core.js';
import { dispatch, type Handlers } from '../core/dispatch.js';
import { startFrameServer } from './frame-server.js';
import {
  BAD_REQUEST,
  closeOnce,
  closeServer,
  hostRefusal,
  listenOnLoopback,
  refuse,
  targetRefusal,
  type Refusal,
} from './loopback.js';

/** What `paddock serve` needs to start: the core it exposes and where the renderer bundle is. */
export interface WebHostOptions {
  core: Core;
  /** 0 picks a free port. */
  port: number;
  /** The built renderer (index.html, app.js, app.css). */
  staticDir: string;
  /** Fixed token for tests (16 to 256 of `[A-Za-z0-9_-]`); a random one per launch otherwise. */
  token?: string;
}

/** A running web host: the address to open (with its token), and how to stop it. */
export interface WebHost {
  url: string;
  port: number;
  token: string;
  /** The artifact frame's origin (its own loopback port), reported by `app:info`. */
  artifactOrigin: string;
  /** Closes every socket and stops listening; safe to call more than once. */
  close(): Promise<void>;
}

/** Longest request target (path and query) we read; the renderer's are a few dozen characters. */
const MAX_URL_CHARS = 2048;
/** Request line plus all headers (Node's default, stated so it cannot drift). */
const MAX_HEADER_BYTES = 16 * 1024;
/** One API message; the contract's requests are small JSON objects. */
const MAX_MESSAGE_BYTES = 1024 * 1024;
/** Longest request id echoed back; the renderer sends small integers. */
const MAX_ID_CHARS = 128;
/** Longest channel name looked up (the contract's are `domain:verb`). */
const MAX_CHANNEL_CHARS = 64;

/**
 * The cookie's name carries the port. Browsers scope cookies by host, not port, so every server on
 * 127.0.0.1 is sent every 127.0.0.1 cookie; with the port in the name each `paddock serve` reads
 * only its own, and a second launch cannot overwrite or stand in for the first one's. It does not
 * hide the value from another port's server, whose backend can replay it with any Origin it likes:
 * so the cookie opens only the static files, never the API socket (see `SUBPROTOCOL`).
 */
function cookieName(port: number): string {
  return `paddock_token_${port}`;
}

/**
 * The WebSocket's protocol, the one subprotocol value the server echoes. The page also offers
 * `paddock.token.<token>`, from the sessionStorage of its own origin (so of this port): a channel
 * no cookie reaches, which is what the upgrade requires. The token is never echoed back.
 */
export const SUBPROTOCOL = 'paddock.v1';
const TOKEN_SUBPROTOCOL_PREFIX = 'paddock.token.';
/** A token is sent as part of a subprotocol value, so it must be an HTTP token (base64url is). */
const TOKEN_SHAPE = /^[\w-]{16,256}$/;

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

/** The page's policy as sent: the one place frames may come from is this launch's frame origin. */
export function appPagePolicy(artifactOrigin: string): string {
  return `${CONTENT_SECURITY_POLICY}; frame-src ${artifactOrigin}`;
}

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

/** A request target that parsed: the percent-decoded path and the query. */
interface Target {
  pathname: string;
  query: URLSearchParams;
}

const UNAUTHORISED: Refusal = {
  status: 401,
  message: 'Missing or wrong token: open the address that `paddock serve` printed.',
};

/**
 * `paddock serve`: the renderer and the API over a WebSocket, on 127.0.0.1 only, behind a
 * per-launch token, refusing foreign Host headers so a DNS-rebinding page cannot reach it.
 * Whatever a client sends is answered with a status; nothing it sends can end the process.
 */
export async function startWebHost(opts: WebHostOptions): Promise<WebHost> {
  const token = opts.token ?? crypto.randomBytes(24).toString('base64url');
  if (!TOKEN_SHAPE.test(token)) {
    throw new Error('The web host token must be 16 to 256 letters, digits, "-" or "_".');
  }
  const staticRoot = path.resolve(opts.staticDir);
  const realStaticRoot = fs.realpathSync(staticRoot);
  let port = 0;
  // The artifact frame: its own origin (another port), framed only by this page.
  const frame = await startFrameServer({ frameAncestors: () => [...allowedOrigins()] });
  const pagePolicy = appPagePolicy(frame.origin);
  const info = opts.core.handlers['app:info'];
  const handlers: Handlers = {
    ...opts.core.handlers,
    'app:info': async (req) => ({ ...(await info(req)), artifactOrigin: frame.origin }),
  };

  const allowedOrigins = () => new Set([`http://127.0.0.1:${port}`, `http://localhost:${port}`]);

  /** Returns a refusal, or null when a plain HTTP request (a static file) may proceed. */
  function gate(req: http.IncomingMessage, target: Target): Refusal | null {
    const refusal = hostRefusal(req, port);
    if (refusal) return refusal;
    // SECURITY: every file request must carry the per-launch token (query, this port's cookie, or
    // bearer). The cookie is enough here because the files hold no secret: they are the renderer
    // bundle, the same for every install, and no response carries the token (Set-Cookie answers
    // only a request that already showed it in the query). The API needs more: see upgradeRefusal.
    if (!presentedTokens(req, target, cookieName(port)).some((t) => sameToken(t, token))) {
      return UNAUTHORISED;
    }
    return null;
  }

  async function serveRequest(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const target = parseTarget(req.url);
    if ('status' in target) return refuse(res, target);
    const refusal = gate(req, target);
    if (refusal) return refuse(res, refusal);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const rel = target.pathname === '/' ? 'index.html' : target.pathname.slice(1);
    const file = await openInside(realStaticRoot, path.resolve(staticRoot, rel));
    if (!file) return refuse(res, { status: 404, message: 'Not found.' });
    const headers: Record<string, string | number> = {
      'Content-Type': MIME[path.extname(file.path)] ?? 'application/octet-stream',
      'Content-Length': file.size,
      'Content-Security-Policy': pagePolicy,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    const queryToken = target.query.get('token');
    if (queryToken !== null && sameToken(queryToken, token)) {
      headers['Set-Cookie'] = `${cookieName(port)}=${token}; HttpOnly; SameSite=Strict; Path=/`;
    }
    res.writeHead(200, headers);
    if (req.method === 'HEAD') {
      await file.handle.close();
      res.end();
      return;
    }
    // SECURITY: a read error after the headers went out ends this response, not the process.
    pipeline(file.handle.createReadStream(), res, (e) => {
      if (e) res.destroy();
    });
  }

  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    // SECURITY: every request is answered inside this catch; a throw becomes a 400, never a crash.
    const fail = (e: unknown) => {
      console.error('[paddock] web host: a request failed:', e);
      if (res.headersSent) res.destroy();
      else refuse(res, BAD_REQUEST);
    };
    serveRequest(req, res).catch(fail);
  });

  // SECURITY: no compression, so a small frame cannot inflate; maxPayload bounds every message.
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_MESSAGE_BYTES,
    perMessageDeflate: false,
    // SECURITY: echo only our protocol, never the token value the client offered beside it
    // (ws's default would echo the first value offered). upgradeRefusal has checked it is there.
    handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
  });

  function upgradeRefusal(req: http.IncomingMessage): Refusal | null {
    const target = parseTarget(req.url);
    if ('status' in target) return target;
    const refusal = hostRefusal(req, port);
    if (refusal) return refusal;
    const offered = offeredSubprotocols(req);
    // SECURITY: the API socket takes the token only as a subprotocol value, which the page reads
    // from its own sessionStorage. The cookie, query and bearer are ignored here: the cookie
    // reaches every server on 127.0.0.1 whatever its port, and one that received it could replay
    // it from its backend with a forged Origin. Compared in constant time.
    const tokens = offered.filter((p) => p.startsWith(TOKEN_SUBPROTOCOL_PREFIX));
    if (!tokens.some((p) => sameToken(p.slice(TOKEN_SUBPROTOCOL_PREFIX.length), token))) {
      return UNAUTHORISED;
    }
    if (!offered.includes(SUBPROTOCOL)) {
      return { status: 400, message: `Refused: the socket speaks only ${SUBPROTOCOL}.` };
    }
    const origin = req.headers.origin;
    // SECURITY: a browser page from another origin (another port included) must not drive the
    // API, even one that got hold of the token; a second wall behind the subprotocol token.
    if (origin !== undefined && !allowedOrigins().has(origin)) {
      return { status: 403, message: 'Refused: a page from another origin.' };
    }
    if (target.pathname !== '/api') return { status: 404, message: 'Not found.' };
    return null;
  }

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // SECURITY: Node takes its own error handler off an upgrading socket; without this one a
    // client that resets the connection while we answer would crash the process.
    socket.on('error', () => socket.destroy());
    try {
      const refusal = upgradeRefusal(req);
      if (refusal) return refuseUpgrade(socket, refusal.status);
      wss.handleUpgrade(req, socket, head, (ws) => serveSocket(ws, opts.core, handlers));
    } catch (e) {
      // SECURITY: every upgrade is answered inside this catch; a throw becomes a 400.
      console.error('[paddock] web host: an upgrade failed:', e);
      refuseUpgrade(socket, 400);
    }
  });

  port = await listenOnLoopback(server, opts.port).catch(async (e: unknown) => {
    await frame.close();
    throw e;
  });
  // SECURITY: a failed accept (EMFILE under a connection flood) is emitted here; unheard, it would
  // end the process.
  server.on('error', (e) => console.error('[paddock] web host:', e));

  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    artifactOrigin: frame.origin,
    close: closeOnce(async () => {
      const stopped = frame.close();
      for (const c of wss.clients) c.terminate();
      wss.close();
      await Promise.all([stopped, closeServer(server)]);
    }),
  };
}

/**
 * Reads an origin-form request target (`/path?query`) without ever throwing: anything else, an
 * overlong one, bad percent-encoding, or a decoded path holding a control character or a
 * backslash is a refusal.
 */
function parseTarget(raw: string | undefined): Target | Refusal {
  // SECURITY: only a bounded `/path`; this bounds everything decoded from the URL below.
  const refusal = targetRefusal(raw, MAX_URL_CHARS);
  if (refusal || raw === undefined) return refusal ?? BAD_REQUEST;
  const q = raw.indexOf('?');
  const pathname = safeDecode(q < 0 ? raw : raw.slice(0, q));
  // SECURITY: NUL and other control characters (Cc), and backslashes (a separator on Windows), never
  // name a file in the bundle.
  if (pathname === null || /[\p{Cc}\\]/u.test(pathname)) return BAD_REQUEST;
  // URLSearchParams decodes leniently: bad percent-encoding stays as text instead of throwing.
  return { pathname, query: new URLSearchParams(q < 0 ? '' : raw.slice(q + 1)) };
}

/** decodeURIComponent that answers null instead of throwing a URIError. */
function safeDecode(s: string): string | null {
  try {
    return decodeURIComponent(s);
  } catch {
    return null;
  }
}

/** Every token the request presents: query, this port's cookie, bearer. None is decoded. */
function presentedTokens(req: http.IncomingMessage, target: Target, cookie: string): string[] {
  const found: string[] = [];
  const q = target.query.get('token');
  if (q) found.push(q);
  // Header values are bounded by maxHeaderSize; Node joins repeated Cookie headers with "; ".
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    // SECURITY: only the cookie named for this port; another port's cookie is not ours.
    if (eq > 0 && part.slice(0, eq).trim() === cookie) found.push(part.slice(eq + 1).trim());
  }
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) found.push(auth.slice(7));
  return found;
}

/**
 * The values of Sec-WebSocket-Protocol, trimmed (Node joins repeated headers with ", "; the value
 * is bounded by maxHeaderSize). ws parses the header again, strictly, before it accepts.
 */
function offeredSubprotocols(req: http.IncomingMessage): string[] {
  const header = req.headers['sec-websocket-protocol'];
  if (typeof header !== 'string') return [];
  return header.split(',').map((p) => p.trim());
}

/** Constant-time comparison of a presented token with ours. */
function sameToken(got: string, want: string): boolean {
  const a = Buffer.from(got);
  const b = Buffer.from(want);
  // SECURITY: timingSafeEqual needs equal lengths; the length alone is not secret.
  return a.length === b.length && crypto.timingSafeEqual(a, b);
}

/**
 * Opens `file` if it is a regular file whose real path (symlinks resolved) lies inside the bundle;
 * null otherwise. Opening first and asking the open file for its size leaves no gap between the
 * check and the read.
 */
async function openInside(
  realRoot: string,
  file: string,
): Promise<{ handle: fs.promises.FileHandle; path: string; size: number } | null> {
  let real: string;
  try {
    real = await fs.promises.realpath(file);
  } catch {
    return null;
  }
  // SECURITY: never serve anything outside the renderer bundle (`..`, encoded or via symlink).
  if (!real.startsWith(realRoot + path.sep)) return null;
  let handle: fs.promises.FileHandle | undefined;
  try {
    handle = await fs.promises.open(real, 'r');
    const stat = await handle.stat();
    if (stat.isFile()) return { handle, path: real, size: stat.size };
  } catch {
    // Gone or unreadable: the same answer as missing.
  }
  await handle?.close();
  return null;
}

function refuseUpgrade(socket: Duplex, status: number): void {
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\n` +
      'Connection: close\r\nContent-Length: 0\r\n\r\n',
  );
}

/** One connected page: requests in, results and events out, in the contract's shapes. */
function serveSocket(ws: WebSocket, core: Core, handlers: Handlers): void {
  /** Sends if the page is still there; never throws (it runs inside event and promise handlers). */
  const send = (msg: object) => {
    if (ws.readyState !== ws.OPEN) return;
    try {
      ws.send(JSON.stringify(msg));
    } catch (e) {
      console.error('[paddock] web host: could not send a message:', e);
    }
  };
  const unsubscribe = core.events.onAny((event, payload) => send({ event, payload }));
  ws.on('close', unsubscribe);
  // SECURITY: ws reports a bad frame (invalid UTF-8, over maxPayload) as 'error' and closes the
  // connection itself (1007, 1009); an 'error' with no listener would throw and end the process.
  ws.on('error', () => undefined);
  ws.on('message', (data, isBinary) => {
    // SECURITY: every message is answered inside this catch; a throw becomes an INTERNAL result.
    answer(handlers, data, isBinary).then(send, (e: unknown) => {
      console.error('[paddock] web host: a message failed:', e);
      send({ id: null, result: err('INTERNAL', 'Paddock could not handle that message.') });
    });
  });
}

/** Parses one message as `{ id, channel, req }` and runs it; a malformed one gets BAD_REQUEST. */
async function answer(
  handlers: Handlers,
  data: RawData,
  isBinary: boolean,
): Promise<{ id: string | number | null; result: Result<unknown> }> {
  const bad = (message: string) => ({ id: null, result: err('BAD_REQUEST', message) });
  // SECURITY: text frames only; ws has checked their UTF-8, and maxPayload their size.
  if (isBinary || !Buffer.isBuffer(data)) return bad('Send requests as text WebSocket messages.');
  let msg: unknown;
  try {
    msg = JSON.parse(data.toString('utf8'));
  } catch {
    return bad('The message was not valid JSON.');
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return bad('A request must be a JSON object: { "id", "channel", "req" }.');
  }
  const { id: rawId, channel, req } = msg as { id?: unknown; channel?: unknown; req?: unknown };
  let id: string | number | null = null;
  if ((typeof rawId === 'string' && rawId.length <= MAX_ID_CHARS) || typeof rawId === 'number') {
    id = rawId;
  } else if (rawId !== undefined && rawId !== null) {
    return bad(`The id must be a number or a string of at most ${MAX_ID_CHARS} characters.`);
  }
  // SECURITY: only a short string is looked up (and would be quoted back in the error).
  if (typeof channel !== 'string' || channel.length > MAX_CHANNEL_CHARS) {
    return {
      id,
      result: err('UNKNOWN_CHANNEL', 'The channel must be the name of an API call, like app:info.'),
    };
  }
  return { id, result: await dispatch(handlers, channel, req) };
}
