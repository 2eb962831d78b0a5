/**
 * TLS interception in the egress proxy, for the hosts of a session's secrets and its pinned
 * hosts only (issue 16). Every other CONNECT stays an opaque tunnel.
 *
 * For an intercepted CONNECT the proxy answers 200, speaks TLS to the guest with a leaf from the
 * per-install CA (proxy-ca.ts) and serves HTTP/1.1 on it. Each request inside must name the
 * CONNECT target in its Host header; on a pinned host it may carry no credential that is not a
 * placeholder of the host's own secrets; then the placeholders are swapped for the values
 * (secret-swap.ts) and the request goes over a new, fully verified TLS connection to the address
 * the allowlist checked for the CONNECT. Values that come back are swapped for the placeholders.
 */

import {
  createServer,
  request as httpRequest,
  type ClientRequest,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { Socket } from 'node:net';
import { pipeline, type Duplex } from 'node:stream';
import { connect as tlsConnect, TLSSocket } from 'node:tls';
import { Allowlist, DEFAULT_PORTS, matchKey, type EgressVerdict } from './allowlist.js';
import { formatTarget, parseHostPort, printable, type CanonicalHost } from './canonical-host.js';
import type { EgressDecision } from './proxy.js';
import type { ProxyCa } from './proxy-ca.js';
import {
  createReplaceStream,
  foreignCredential,
  replaceInBuffer,
  scrubHeaders,
  swapHeaders,
  swapTarget,
  toPlaceholders,
  toValues,
} from './secret-swap.js';
import type { InterceptPolicy, ProxySecret } from './secret-types.js';

/** The proxy's interception settings; the policy may be replaced while the proxy runs. */
export interface InterceptOptions {
  ca: ProxyCa;
  policy: InterceptPolicy;
  /** PEM roots trusted for upstream connections instead of Node's default trust (tests). */
  upstreamCa?: string[];
}

/** What the policy says about one host:port. */
export interface Interception {
  /** The secrets that may be sent to it. */
  secrets: ProxySecret[];
  /** Whether credentials there must come from a placeholder swap. */
  pinned: boolean;
}

/** Request bodies up to this size are swapped whole and sent with their new Content-Length. */
const MAX_BUFFERED_BODY = 8 * 1024 * 1024;
/** As the proxy's own server: slow headers (and TLS handshakes) are not allowed. */
const HEADERS_TIMEOUT_MS = 30_000;

const NOOP = (): void => {};

/** Whether allowlist-syntax `patterns` match host:port (invalid patterns match nothing). */
function patternsMatch(patterns: readonly string[], host: CanonicalHost, port: number): boolean {
  const list = new Allowlist();
  for (const p of patterns) {
    try {
      list.add(p);
    } catch {
      // The secrets service checks patterns when they are saved; one that cannot be parsed here
      // names no host this request could be for.
    }
  }
  return list.matching(host, port).length > 0;
}

/**
 * Whether the proxy intercepts host:port under `policy`, and with which secrets: null unless a
 * secret's hosts match it or it is pinned (a `pinHosts` pattern, or a host of a secret with
 * `pin`). Matching is the allowlist's: exact names, `*.suffix` strictly below, ports 80/443 when
 * a pattern has none.
 */
export function interceptionFor(
  policy: InterceptPolicy,
  host: CanonicalHost,
  port: number,
): Interception | null {
  const secrets = policy.secrets.filter((s) => patternsMatch(s.hosts, host, port));
  const pinned = secrets.some((s) => s.pin) || patternsMatch(policy.pinHosts, host, port);
  return secrets.length > 0 || pinned ? { secrets, pinned } : null;
}

function shownHost(host: CanonicalHost, port: number): string {
  return DEFAULT_PORTS.includes(port) ? formatTarget(host) : formatTarget(host, port);
}

function orList(items: readonly string[]): string {
  if (items.length <= 1) return items.join('');
  return `${items.slice(0, -1).join(', ')} or ${items.at(-1) ?? ''}`;
}

/**
 * The pin check: null if the request may go to host:port, else the 403 sentence for the model
 * and the clause for the log (neither holds a value or a placeholder).
 */
export function pinRefusal(
  interception: Interception | null,
  host: CanonicalHost,
  port: number,
  raw: readonly string[],
  target: string,
): { text: string; reason: string } | null {
  if (!interception?.pinned) return null;
  const found = foreignCredential(raw, target, interception.secrets);
  if (found === null) return null;
  const what = printable(found);
  const shown = shownHost(host, port);
  const envs = [...new Set(interception.secrets.map((s) => `$${s.envName}`))];
  if (envs.length === 0) {
    return {
      text: `Paddock refused this request to ${shown}: its ${what} carries a credential, and ${shown} is pinned so that no credentials may be sent to it.`,
      reason: `its ${what} carries a credential, and the host is pinned with no credentials allowed`,
    };
  }
  return {
    text: `Paddock refused this request to ${shown}: its ${what} carries a credential that is not one of the person's secrets for this host, and ${shown} is pinned to the person's own account. Use the placeholder in ${orList(envs)} instead.`,
    reason: `its ${what} carries a credential that is not one of the person's secrets for this pinned host`,
  };
}

/** What {@link TlsInterceptor} uses of its proxy (passed in, so the two modules do not cycle). */
export interface InterceptorHost {
  /** TCP (or the injected connector) to the addresses the allowlist checked; tracked. */
  openUpstream(verdict: EgressVerdict): Promise<Duplex>;
  /** Records one decision; false if it could not be recorded. */
  record(decision: Omit<EgressDecision, 'at'>): boolean;
  /** Destroyed when the proxy closes. */
  track(stream: Duplex): void;
  /** The settings in force now. */
  options(): InterceptOptions | undefined;
  forwardableHeaders(raw: readonly string[]): string[];
  sendText(res: ServerResponse, status: number, text: string): void;
  upstreamSentence(verdict: EgressVerdict, err: unknown): string;
  /** For the upstream TLS handshake. */
  handshakeTimeoutMs: number;
}

interface Tunnel {
  verdict: EgressVerdict;
  host: CanonicalHost;
  port: number;
  timer: NodeJS.Timeout | undefined;
}

/** Why an upstream TLS connection was not made, for the 502 and the log. */
class UpstreamTlsError extends Error {}

/**
 * Serves intercepted tunnels: one internal HTTP server (it never listens) for all of them, fed
 * with the TLS side of each tunnel.
 */
export class TlsInterceptor {
  readonly #host: InterceptorHost;
  readonly #server: Server;
  readonly #tunnels = new WeakMap<Duplex, Tunnel>();

  constructor(host: InterceptorHost) {
    this.#host = host;
    this.#server = createServer({ requestTimeout: 0, keepAliveTimeout: 5_000 });
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#onRequest(req, res).catch((err: unknown) => {
        if (!res.headersSent) {
          this.#host.sendText(
            res,
            500,
            `Paddock's network proxy failed on this request: ${printable(err instanceof Error ? err.message : String(err))}.`,
          );
        } else {
          res.destroy();
        }
      });
    });
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      const tunnel = this.#tunnels.get(req.socket);
      if (tunnel) {
        this.#host.record({
          host: tunnel.verdict.host,
          port: tunnel.port,
          method: req.method ?? 'GET',
          allowed: false,
          reason: 'protocol upgrades (WebSocket) are not forwarded to hosts with secrets or pins',
          intercepted: true,
        });
      }
      const body =
        "Paddock's network proxy does not forward protocol upgrades (WebSocket) to a host with secrets or a pin.\n";
      socket.end(
        `HTTP/1.1 501 Not Implemented\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
      );
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (!socket.writable || !err.code?.startsWith('HPE_')) {
        socket.destroy();
        return;
      }
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      socket.end(
        `HTTP/1.1 ${status} Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
      );
    });
  }

  /**
   * Takes over a CONNECT's client socket after the 200 was written: TLS with a leaf for the
   * checked host, then HTTP/1.1 (keep-alive) on it. `head` is what the client sent early.
   */
  serve(socket: Duplex, head: Buffer, verdict: EgressVerdict, ca: ProxyCa): void {
    const host = verdict.canonical;
    if (!host) {
      socket.destroy();
      return;
    }
    if (head.length > 0) socket.unshift(head);
    const secure = new TLSSocket(socket, {
      isServer: true,
      secureContext: ca.secureContextFor(host),
      ALPNProtocols: ['http/1.1'],
    });
    const tunnel: Tunnel = { verdict, host, port: verdict.port, timer: undefined };
    this.#tunnels.set(secure, tunnel);
    secure.on('error', () => {
      secure.destroy();
      socket.destroy();
    });
    secure.once('close', () => {
      clearTimeout(tunnel.timer);
      socket.destroy();
    });
    this.#host.track(secure);
    this.#arm(tunnel, secure);
    this.#server.emit('connection', secure);
  }

  /** Ends every intercepted connection. */
  close(): void {
    this.#server.closeAllConnections();
  }

  /**
   * Bounds the time to the next request's headers (the TLS handshake included). Node enforces
   * its own headersTimeout only on servers that listen; this one is fed sockets instead.
   */
  #arm(tunnel: Tunnel, socket: Duplex): void {
    clearTimeout(tunnel.timer);
    tunnel.timer = setTimeout(() => socket.destroy(), HEADERS_TIMEOUT_MS);
    tunnel.timer.unref();
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const tunnel = this.#tunnels.get(req.socket);
    if (!tunnel) {
      res.destroy();
      return;
    }
    clearTimeout(tunnel.timer);
    res.once('close', () => {
      if (!req.socket.destroyed) this.#arm(tunnel, req.socket);
    });
    const { verdict, host, port } = tunnel;
    const method = req.method ?? 'GET';
    const base = { host: verdict.host, port, method, intercepted: true };
    const refuse = (status: number, text: string, reason: string, pinRefused = false): void => {
      this.#host.record({ ...base, allowed: false, reason, ...(pinRefused ? { pinRefused } : {}) });
      this.#host.sendText(res, status, text);
    };

    // SECURITY: one tunnel, one host; a request for another host would skip its own checks.
    const hostProblem = hostHeaderProblem(req.headers.host, host, port);
    if (hostProblem) {
      refuse(
        421,
        `Paddock refused this request: ${hostProblem}. Connect to that host with its own CONNECT.`,
        hostProblem,
      );
      return;
    }
    const target = req.url ?? '/';
    if (!target.startsWith('/') && !(method === 'OPTIONS' && target === '*')) {
      refuse(
        400,
        'Paddock refused this request: inside a CONNECT tunnel send the path only (e.g. GET /path), not a full URL.',
        'the request target was not a path',
      );
      return;
    }

    const options = this.#host.options();
    const interception = options ? interceptionFor(options.policy, host, port) : null;
    const secrets = interception?.secrets ?? [];
    const refusal = pinRefusal(interception, host, port, req.rawHeaders, target);
    if (refusal) {
      refuse(403, refusal.text, refusal.reason, true);
      return;
    }

    const headerSwap = swapHeaders(this.#host.forwardableHeaders(req.rawHeaders), secrets);
    const targetSwap = swapTarget(target, secrets);
    const bodySecrets = hasBody(req) ? secrets.filter((s) => s.inBody) : [];
    // The body is swapped while it streams, after this decision is logged: its secrets are
    // named as sent whenever there is a body they could be in.
    const names = [
      ...new Set([...headerSwap.used, ...targetSwap.used, ...bodySecrets.map((s) => s.name)]),
    ];
    const swapped = names.length > 0;

    let body: PreparedBody;
    try {
      body = await prepareBody(req, headerSwap.headers, bodySecrets);
    } catch {
      refuse(
        400,
        'Paddock did not send this request: its body was cut short.',
        'the request body was cut short',
      );
      return;
    }

    let upstream: TLSSocket;
    try {
      upstream = await this.#openTls(verdict, host, options?.upstreamCa);
    } catch (err) {
      const sentence =
        err instanceof UpstreamTlsError
          ? `Paddock could not connect to ${verdict.target} securely: ${err.message}, so the request was not sent.`
          : this.#host.upstreamSentence(verdict, err);
      refuse(
        502,
        sentence,
        err instanceof UpstreamTlsError ? err.message : 'the upstream connection failed',
      );
      return;
    }
    // SECURITY: a request that could not be logged is not sent.
    const recorded = this.#host.record({
      ...base,
      allowed: true,
      reason: `${verdict.reason}, inside an intercepted tunnel`,
      ...(verdict.rule === undefined ? {} : { rule: verdict.rule }),
      ...(swapped ? { secrets: names } : {}),
    });
    if (!recorded) {
      upstream.destroy();
      this.#host.sendText(
        res,
        500,
        'Paddock could not record this request, so it did not send it.',
      );
      return;
    }
    if (res.destroyed || req.socket.destroyed) {
      upstream.destroy();
      return;
    }

    const headers = withHeader(
      body.headers,
      'Host',
      port === 443 ? formatTarget(host) : formatTarget(host, port),
    );
    // Responses are swapped back only when they arrive uncompressed.
    const sendHeaders = [
      ...(swapped ? withHeader(headers, 'Accept-Encoding', 'identity') : headers),
      // One upstream connection per request: it ends with the response.
      'Connection',
      'close',
    ];
    const upstreamReq = httpRequest({
      method,
      path: targetSwap.target,
      headers: sendHeaders,
      // SECURITY: the socket is already connected to the checked address; no agent, no lookup.
      createConnection: () => upstream as unknown as Socket,
    });
    upstreamReq.on('error', () => {
      upstream.destroy();
      if (!res.headersSent)
        this.#host.sendText(res, 502, `Paddock lost the connection to ${verdict.target}.`);
      else res.destroy();
    });
    upstreamReq.on('response', (upstreamRes) => {
      let responseHeaders = this.#host.forwardableHeaders(upstreamRes.rawHeaders);
      if (secrets.length > 0) responseHeaders = scrubHeaders(responseHeaders, secrets);
      const encoding = (upstreamRes.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      // A compressed response (the server ignored Accept-Encoding: identity) passes as it is:
      // a value inside it cannot be found without decompressing it.
      const scrub = swapped && (encoding === 'identity' || encoding === '') && method !== 'HEAD';
      if (scrub) responseHeaders = withoutHeader(responseHeaders, 'content-length');
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, responseHeaders);
      const done = (err: Error | null | undefined): void => {
        if (err) {
          res.destroy();
          upstream.destroy();
        }
      };
      // Streams with backpressure; nothing is buffered beyond the stream high-water marks.
      if (scrub) pipeline(upstreamRes, createReplaceStream(toPlaceholders(secrets)), res, done);
      else pipeline(upstreamRes, res, done);
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    body.send(upstreamReq, (err) => {
      if (err) upstream.destroy();
    });
  }

  /** TLS to the checked address, verified against the upstream trust; never unverified. */
  async #openTls(
    verdict: EgressVerdict,
    host: CanonicalHost,
    upstreamCa: string[] | undefined,
  ): Promise<TLSSocket> {
    const raw = await this.#host.openUpstream(verdict);
    return new Promise<TLSSocket>((resolve, reject) => {
      // SECURITY: full verification (chain and name); a certificate the trust does not accept
      // fails the request, there is no unverified fallback.
      const secure = tlsConnect({
        socket: raw,
        host: host.host,
        ...(host.kind === 'name' ? { servername: host.host } : {}),
        ...(upstreamCa ? { ca: upstreamCa } : {}),
        ALPNProtocols: ['http/1.1'],
        rejectUnauthorized: true,
      });
      secure.on('error', NOOP);
      this.#host.track(secure);
      const timer = setTimeout(() => {
        secure.destroy();
        raw.destroy();
        reject(new UpstreamTlsError('the TLS handshake timed out'));
      }, this.#host.handshakeTimeoutMs);
      secure.once('secureConnect', () => {
        clearTimeout(timer);
        resolve(secure);
      });
      secure.once('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        secure.destroy();
        raw.destroy();
        reject(new UpstreamTlsError(tlsProblem(err)));
      });
    });
  }
}

/** A clause for a failed upstream TLS handshake. */
function tlsProblem(err: NodeJS.ErrnoException): string {
  const code = typeof err.code === 'string' ? err.code : '';
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID')
    return 'its certificate is not valid for this host name';
  if (code === 'CERT_HAS_EXPIRED') return 'its certificate has expired';
  if (/CERT|SELF_SIGNED|UNABLE_TO|ISSUER/.test(code))
    return `its certificate is not trusted (${printable(code)})`;
  return `the TLS handshake failed (${printable(code || err.message)})`;
}

/** Why a Host header does not name the tunnel's host:port, or null when it does. */
function hostHeaderProblem(
  header: string | undefined,
  host: CanonicalHost,
  port: number,
): string | null {
  // HTTP/1.1 without Host never gets here (Node answers 400); HTTP/1.0 may omit it.
  if (header === undefined) return null;
  const expected = formatTarget(host, port);
  let named: { host: CanonicalHost; port?: number };
  try {
    named = parseHostPort(header);
  } catch {
    return `its Host header "${printable(header)}" is not a valid host, and this tunnel is for ${expected}`;
  }
  if (matchKey(named.host) !== matchKey(host) || (named.port ?? 443) !== port) {
    return `its Host header names ${formatTarget(named.host, named.port)}, but this tunnel is for ${expected}`;
  }
  return null;
}

/** A request body on its way upstream, with the headers that describe it. */
interface PreparedBody {
  headers: string[];
  send(upstreamReq: ClientRequest, onError: (err: Error | null | undefined) => void): void;
}

/**
 * The body as it goes upstream. Without body secrets: streamed as it is. With them: a body of a
 * known length up to 8 MiB is read whole, swapped and sent with its new Content-Length (servers
 * that insist on a length keep working); a longer or chunked one is swapped while it streams
 * and sent chunked.
 */
async function prepareBody(
  req: IncomingMessage,
  headers: string[],
  bodySecrets: readonly ProxySecret[],
): Promise<PreparedBody> {
  if (bodySecrets.length === 0) {
    return { headers, send: (upstreamReq, onError) => pipeline(req, upstreamReq, onError) };
  }
  const rest = withoutHeader(withoutHeader(headers, 'content-length'), 'transfer-encoding');
  const length = contentLength(req);
  if (length !== undefined && length <= MAX_BUFFERED_BODY) {
    const body = replaceInBuffer(await readBody(req, MAX_BUFFERED_BODY), toValues(bodySecrets));
    return {
      headers: [...rest, 'Content-Length', String(body.length)],
      send: (upstreamReq) => upstreamReq.end(body),
    };
  }
  return {
    headers: [...rest, 'Transfer-Encoding', 'chunked'],
    send: (upstreamReq, onError) =>
      pipeline(req, createReplaceStream(toValues(bodySecrets)), upstreamReq, onError),
  };
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function contentLength(req: IncomingMessage): number | undefined {
  const text = req.headers['content-length'];
  if (req.headers['transfer-encoding'] !== undefined || text === undefined) return undefined;
  return /^[0-9]{1,15}$/.test(text) ? Number(text) : undefined;
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.destroy();
        reject(new Error('the request body is larger than it said'));
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('close', () => {
      if (!req.complete) reject(new Error('the request body was cut short'));
    });
  });
}

function withoutHeader(raw: readonly string[], lower: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] ?? '').toLowerCase() === lower) continue;
    out.push(raw[i] ?? '', raw[i + 1] ?? '');
  }
  return out;
}

function withHeader(raw: readonly string[], name: string, value: string): string[] {
  return [name, value, ...withoutHeader(raw, name.toLowerCase())];
}
