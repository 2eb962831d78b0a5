import type http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * What `paddock serve`'s two loopback listeners (the app in server.ts, the artifact frame origin
 * in frame-server.ts) share: the Host check, the request-target check, the plain-text refusal,
 * listening on 127.0.0.1 and closing once.
 */

/** A request answered with a status and a one-line plain-text message. */
export interface Refusal {
  status: number;
  message: string;
}

export const BAD_REQUEST: Refusal = { status: 400, message: 'Bad request.' };
const URI_TOO_LONG: Refusal = { status: 414, message: 'The address is too long.' };
const FOREIGN_HOST: Refusal = {
  status: 403,
  message: 'Refused: this server answers only to 127.0.0.1 or localhost.',
};

/**
 * Returns `refusal` (by default a 403 naming the allowed hosts), or null when the request's Host
 * is this listener's `127.0.0.1:<port>` or `localhost:<port>`.
 */
export function hostRefusal(
  req: http.IncomingMessage,
  port: number,
  refusal: Refusal = FOREIGN_HOST,
): Refusal | null {
  const allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
  // SECURITY: DNS rebinding — a page on evil.example resolving to 127.0.0.1 sends its own Host.
  if (!allowedHosts.has(req.headers.host ?? '')) return refusal;
  return null;
}

/**
 * Returns a refusal, or null when `raw` is an origin-form request target (`/path?query`) of at
 * most `maxChars` characters. One too long is refused with `tooLong` (by default a 414).
 */
export function targetRefusal(
  raw: string | undefined,
  maxChars: number,
  tooLong: Refusal = URI_TOO_LONG,
): Refusal | null {
  // SECURITY: only `/path`; absolute-form (`http://…`), `*` and `//host` never reach a parser.
  if (raw === undefined || !raw.startsWith('/') || raw.startsWith('//')) return BAD_REQUEST;
  // SECURITY: bounds everything read from the URL afterwards.
  if (raw.length > maxChars) return tooLong;
  return null;
}

/** Answers with the refusal as plain text, plus any `headers` given. */
export function refuse(
  res: http.ServerResponse,
  refusal: Refusal,
  headers: Record<string, string> = {},
): void {
  res.writeHead(refusal.status, { 'Content-Type': 'text/plain; charset=utf-8', ...headers });
  res.end(refusal.message + '\n');
}

/** Starts `server` listening on 127.0.0.1:`port` (0 picks one); resolves with the port it got. */
export async function listenOnLoopback(server: http.Server, port: number): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // SECURITY: loopback only; never 0.0.0.0.
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Closes every connection of `server` and stops it listening. */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
}

/** `close`, run on the first call only; every call gets the same promise. */
export function closeOnce(close: () => Promise<void>): () => Promise<void> {
  let closed: Promise<void> | undefined;
  return () => (closed ??= close());
}
