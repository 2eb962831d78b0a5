import http from 'node:http';
import { ARTIFACT_SHELL_PATH } from '../../shared/artifact-policy.js';
import { ARTIFACT_CSP, artifactFrameFile } from '../core/artifact-frame.js';
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

  function answer(req: http.IncomingMessage, res: http.ServerResponse): void {
    const refusal =
      hostRefusal(req, port, FOREIGN_HOST) ??
      // SECURITY: only `/path` of bounded length; absolute-form and `//host` are refused.
      targetRefusal(req.url, MAX_URL_CHARS, BAD_REQUEST);
    if (refusal) return plain(res, refusal);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { Allow: 'GET, HEAD' }).end();
      return;
    }
    const pathname = (req.url ?? '').split('?')[0]!;
    const file = artifactFrameFile(pathname);
    if (!file) return plain(res, NOT_FOUND);
    const isShell = pathname === ARTIFACT_SHELL_PATH;
    const ancestors = opts.frameAncestors().join(' ') || "'none'";
    res.writeHead(200, {
      'Content-Length': file.body.length,
      ...file.headers,
      // The shell may be framed only by the app page (a header-only directive).
      ...(isShell
        ? { 'Content-Security-Policy': `${ARTIFACT_CSP}; frame-ancestors ${ancestors}` }
        : {}),
      'Cache-Control': isShell ? 'no-store' : 'max-age=3600',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  }

  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES }, (req, res) => {
    // SECURITY: every request is answered inside this catch; a throw becomes a 500, never a crash.
    try {
      answer(req, res);
    } catch (e) {
      console.error('[paddock] artifact frame server: a request failed:', e);
      if (res.headersSent) res.destroy();
      else plain(res, { status: 500, message: 'The artifact frame could not be served.' });
    }
  });
  // SECURITY: the frame origin speaks plain HTTP only; no upgrade is ever accepted.
  server.on('upgrade', (_req, socket) => socket.destroy());

  port = await listenOnLoopback(server, 0);
  server.on('error', (e) => console.error('[paddock] artifact frame server:', e));

  return {
    origin: `http://127.0.0.1:${port}`,
    port,
    close: closeOnce(() => closeServer(server)),
  };
}

const FOREIGN_HOST: Refusal = { status: 403, message: 'Refused.' };
const NOT_FOUND: Refusal = { status: 404, message: 'Not found.' };

function plain(res: http.ServerResponse, refusal: Refusal): void {
  refuse(res, refusal, { 'X-Content-Type-Options': 'nosniff' });
}
