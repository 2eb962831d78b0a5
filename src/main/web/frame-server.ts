import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ARTIFACT_SHELL_PATH } from '../../shared/artifact-policy.js';
import { ARTIFACT_CSP, artifactFrameFile } from '../core/artifact-frame.js';

/** How the frame server is started: which pages may embed the shell. */
export interface FrameServerOptions {
  /** Origins allowed to frame the shell (`frame-ancestors`); the web host passes its own. */
  frameAncestors: () => string[];
}

/** A running frame origin: where it is (for `frame-src` and `app:info`), and how to stop it. */
export interface FrameServer {
  /** `http://127.0.0.1:<port>`, with no trailing slash. */
  origin: string;
  port: number;
  /** Closes every socket and stops listening; safe to call more than once. */
  close(): Promise<void>;
}

/** The longest request target read; ours are `/frame.html` and `/lib/<name>`. */
const MAX_URL_CHARS = 256;
/** Request line plus headers; a browser's are a few hundred bytes. */
const MAX_HEADER_BYTES = 16 * 1024;

/**
 * The artifact frame's origin for `paddock serve`: a second loopback listener that serves only the
 * frame shell and the bundled libraries. It holds no app data, needs no token, sets no cookie and
 * reads none (a browser may attach the app's 127.0.0.1 cookie, since cookies ignore the port; it
 * is never looked at), and answers 404 to every other path. What it renders arrives by
 * postMessage from the embedding page, never in a request.
 */
export async function startFrameServer(opts: FrameServerOptions): Promise<FrameServer> {
  let port = 0;
  const allowedHosts = () => new Set([`127.0.0.1:${port}`, `localhost:${port}`]);

  function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = req.url ?? '';
    // SECURITY: DNS rebinding — a page on evil.example resolving to 127.0.0.1 sends its own Host.
    if (!allowedHosts().has(req.headers.host ?? '')) return plain(res, 403, 'Refused.');
    // SECURITY: only `/path` of bounded length; absolute-form and `//host` are refused.
    if (!url.startsWith('/') || url.startsWith('//') || url.length > MAX_URL_CHARS) {
      return plain(res, 400, 'Bad request.');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const pathname = url.split('?')[0]!;
    const file = artifactFrameFile(pathname);
    if (!file) return plain(res, 404, 'Not found.');
    const body = Buffer.from(file.body);
    const isShell = pathname === ARTIFACT_SHELL_PATH;
    const ancestors = opts.frameAncestors().join(' ') || "'none'";
    res.writeHead(200, {
      'Content-Type': file.type,
      'Content-Length': body.length,
      // The shell may be framed only by the app page (a header-only directive).
      'Content-Security-Policy': isShell
        ? `${ARTIFACT_CSP}; frame-ancestors ${ancestors}`
        : ARTIFACT_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      // SECURITY: no DNS prefetch of names an artifact mentions.
      'X-DNS-Prefetch-Control': 'off',
      // The sandboxed frame's origin is opaque, so even its own /lib/* loads are cross-origin:
      // `same-origin` would block them. Nothing here is secret (public libraries and a shell).
      'Cross-Origin-Resource-Policy': 'cross-origin',
      'Cache-Control': isShell ? 'no-store' : 'max-age=3600',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    // SECURITY: every request is answered inside this catch; a throw becomes a 500, never a crash.
    try {
      answer(req, res);
    } catch (e) {
      console.error('[paddock] artifact frame server: a request failed:', e);
      if (res.headersSent) res.destroy();
      else plain(res, 500, 'The artifact frame could not be served.');
    }
  });
  // SECURITY: the frame origin speaks plain HTTP only; no upgrade is ever accepted.
  server.on('upgrade', (_req, socket) => socket.destroy());

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // SECURITY: loopback only; never 0.0.0.0.
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.on('error', (e) => console.error('[paddock] artifact frame server:', e));
  port = (server.address() as AddressInfo).port;

  let closed: Promise<void> | undefined;
  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      })),
  };
}

function plain(res: http.ServerResponse, status: number, message: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end(message + '\n');
}
