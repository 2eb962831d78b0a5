/**
 * The host-side egress proxy: the only way a task's VM reaches the network.
 *
 * The guest has no network device; its forwarder tunnels each connection to 127.0.0.1:3128 over
 * the host channel to this proxy, which decides every request against the task's allowlist
 * (allowlist.ts), logs the decision, and then tunnels (CONNECT) or forwards (absolute-form plain
 * HTTP) to the address it checked — never to a fresh DNS answer. CONNECTs to the hosts of a
 * session's secrets and to pinned hosts are intercepted instead (intercept.ts).
 */

import { createServer, request as httpRequest, STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { connect as netConnect, type LookupFunction, type Socket } from 'node:net';
import { pipeline, type Duplex } from 'node:stream';
import { classifyAddress } from './address-class.js';
import {
  describeRefusal,
  isLoopbackName,
  parseAllowlistEntry,
  systemResolver,
  type Allowlist,
  type AllowlistEntry,
  type EgressVerdict,
  type Resolver,
} from './allowlist.js';
import {
  canonicalizeHost,
  InvalidTargetError,
  printable,
  splitHostPort,
} from './canonical-host.js';
import { interceptionFor, pinRefusal, TlsInterceptor, type InterceptOptions } from './intercept.js';
import type { ProxyCa } from './proxy-ca.js';

/** One decision, as handed to `onDecision` (and stored in the egress log). */
export interface EgressDecision {
  /** Canonical host (no IPv6 brackets), or the printable text as given when it was invalid. */
  host: string;
  /** 0 when the request named no usable port. */
  port: number;
  /** `CONNECT`, `GET`, … */
  method: string;
  allowed: boolean;
  reason: string;
  /** The allowlist entry that allowed it, if any. */
  rule?: string;
  /** Names (never values) of the secrets swapped into this request. */
  secrets?: string[];
  /** Refused because a pinned host was sent a credential that is not one of the person's. */
  pinRefused?: boolean;
  /** A CONNECT the proxy terminates TLS for, or a request inside such a tunnel. */
  intercepted?: boolean;
  /** Milliseconds since the epoch. */
  at: number;
}

/** A person's answer to "allow this host?". The proxy treats 'always' like 'session'; the
 * `askPerson` implementation is the one that persists an 'always', and it must keep it as an
 * answer to a prompt (`promptAllowlist`), which never opens internal addresses. */
export type PersonAnswer = 'once' | 'session' | 'always' | 'deny';

/** Opens a byte stream to a checked address (injectable for tests; default: TCP). */
export type UpstreamConnector = (target: {
  /** The IP address that was checked. */
  address: string;
  port: number;
  /** Canonical host, for logs only; must not be resolved again. */
  host: string;
  timeoutMs: number;
}) => Promise<Duplex>;

/** Options of {@link EgressProxy}. */
export interface EgressProxyOptions {
  /** Consulted on every request; may be changed while the proxy runs. */
  allowlist: Allowlist;
  /** Called exactly once per decision. If it throws, an allowed request is refused instead. */
  onDecision: (decision: EgressDecision) => void;
  /** Name → addresses; default the system resolver. */
  resolve?: Resolver;
  /** Asked when a well-formed target is not on the allowlist (never for internal addresses,
   * host.paddock.internal included). Grants never open internal addresses (those need an exact
   * host:port entry a person configured). */
  askPerson?: (
    host: string,
    port: number,
    context: { target: string; reason: string },
  ) => Promise<PersonAnswer>;
  /** Default 10 s per upstream connect (all of a name's addresses share it). */
  connectTimeoutMs?: number;
  /** Default 10 s for the name lookup. */
  resolveTimeoutMs?: number;
  /** Default: TCP to the checked address. */
  connect?: UpstreamConnector;
  /** The CLI option named in refusals; default `--allow-host`. */
  cliFlag?: string;
  /** Secrets and pinned hosts: the only CONNECTs the proxy terminates TLS for. */
  intercept?: InterceptOptions;
}

/** What {@link EgressProxy} adds to an allowed verdict before it records it. */
interface Refinement {
  /** Intercept this CONNECT (a secret's host or a pinned host), with this CA. */
  intercepting?: { ca: ProxyCa };
  /** Refuse this request: the pin check failed. */
  pinRefusal?: { text: string; reason: string };
}

/** Headers that belong to one hop and are never forwarded (RFC 9110 §7.6.1, plus proxy ones). */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'host',
]);

const NOOP = (): void => {};

/** An upstream failure with a sentence for the 502 body. */
class UpstreamError extends Error {}

/**
 * The egress proxy server. Listens on 127.0.0.1 only, or takes guest tunnels directly through
 * {@link EgressProxy.handleSocket}.
 */
export class EgressProxy {
  #allowlist: Allowlist;
  readonly #onDecision: (decision: EgressDecision) => void;
  readonly #resolve: Resolver;
  readonly #askPerson: EgressProxyOptions['askPerson'];
  readonly #connectTimeoutMs: number;
  readonly #resolveTimeoutMs: number;
  readonly #connect: UpstreamConnector;
  readonly #cliFlag: string;
  readonly #server: Server;
  /** Client connections and upstream streams, destroyed on close. */
  readonly #streams = new Set<Duplex>();
  readonly #pendingAsks = new Map<string, Promise<PersonAnswer>>();
  #intercept: InterceptOptions | undefined;
  readonly #interceptor: TlsInterceptor;
  #port: number | undefined;
  #closed = false;

  constructor(options: EgressProxyOptions) {
    this.#allowlist = options.allowlist;
    this.#onDecision = options.onDecision;
    this.#resolve = options.resolve ?? systemResolver;
    this.#askPerson = options.askPerson;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#resolveTimeoutMs = options.resolveTimeoutMs ?? 10_000;
    this.#connect = options.connect ?? connectTcp;
    this.#cliFlag = options.cliFlag ?? '--allow-host';
    this.#intercept = options.intercept;
    this.#interceptor = new TlsInterceptor({
      openUpstream: (verdict) => this.#openUpstream(verdict),
      record: (decision) => this.#record(decision),
      track: (stream) => this.#track(stream),
      options: () => this.#intercept,
      forwardableHeaders,
      sendText,
      upstreamSentence,
      handshakeTimeoutMs: this.#connectTimeoutMs,
    });
    this.#server = createServer({
      // Long uploads are fine; slow headers are not.
      requestTimeout: 0,
      headersTimeout: 30_000,
      keepAliveTimeout: 5_000,
    });
    this.#server.on('connection', (socket: Duplex) => {
      if (this.#closed) {
        socket.destroy();
        return;
      }
      socket.on('error', NOOP);
      this.#track(socket);
    });
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.#onRequest(req, res).catch((err: unknown) => this.#fail(res, err));
    });
    this.#server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      this.#onConnect(req, socket, head).catch(() => socket.destroy());
    });
    this.#server.on('upgrade', (_req: IncomingMessage, socket: Duplex) => {
      writeRaw(
        socket,
        400,
        "Paddock's network proxy does not forward protocol upgrades over plain HTTP; connect with CONNECT instead (wss:// and https:// do).",
      );
    });
    this.#server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy();
        return;
      }
      const status =
        err.code === 'HPE_HEADER_OVERFLOW'
          ? 431
          : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
            ? 408
            : 400;
      writeRaw(socket, status, "Paddock's network proxy could not parse this request as HTTP.");
    });
  }

  /** The allowlist in force; entries added to it apply to the next request. */
  get allowlist(): Allowlist {
    return this.#allowlist;
  }

  /** Replaces the allowlist (e.g. after the task's settings changed). */
  setAllowlist(allowlist: Allowlist): void {
    this.#allowlist = allowlist;
  }

  /** Replaces the interception settings (a session's secrets changed); undefined: none. */
  setIntercept(intercept: InterceptOptions | undefined): void {
    this.#intercept = intercept;
  }

  /** The listening port, once {@link listen} resolved. */
  get port(): number | undefined {
    return this.#port;
  }

  /** Starts listening on 127.0.0.1 (`port` 0 picks a free one). */
  listen(port = 0): Promise<{ port: number }> {
    if (this.#closed) return Promise.reject(new Error('The egress proxy is closed.'));
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      this.#server.once('error', onError);
      // SECURITY: loopback only; the guest reaches this through its tunnel, nobody else may.
      this.#server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
        this.#server.removeListener('error', onError);
        const address = this.#server.address();
        this.#port = typeof address === 'object' && address ? address.port : port;
        resolve({ port: this.#port });
      });
    });
  }

  /**
   * Serves one client connection that did not come through the listening socket, e.g. a guest
   * tunnel stream (any Duplex). Works without {@link listen}.
   */
  handleSocket(socket: Duplex): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#server.emit('connection', socket);
  }

  /** Stops listening and destroys every open client connection and tunnel. */
  async close(): Promise<void> {
    this.#closed = true;
    const listening = this.#server.listening;
    const closed = listening
      ? new Promise<void>((resolve) => this.#server.close(() => resolve()))
      : Promise.resolve();
    for (const s of this.#streams) s.destroy();
    this.#streams.clear();
    this.#server.closeAllConnections();
    this.#interceptor.close();
    await closed;
  }

  #track(stream: Duplex): void {
    this.#streams.add(stream);
    stream.once('close', () => this.#streams.delete(stream));
  }

  async #onConnect(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', NOOP);
    // Hold bytes the client sends before 200 (e.g. an eager TLS ClientHello) until the tunnel.
    socket.pause();
    const target = req.url ?? '';
    let hostText: string;
    let port: number;
    try {
      const split = splitHostPort(target, { portRequired: true });
      hostText = split.hostText;
      port = split.port ?? 0;
    } catch (err) {
      if (!(err instanceof InvalidTargetError)) throw err;
      this.#record({
        host: printable(target),
        port: 0,
        method: 'CONNECT',
        allowed: false,
        reason: err.message,
      });
      writeRaw(socket, 400, `Paddock refused a CONNECT request: ${err.message}`);
      return;
    }
    const verdict = await this.#decide(hostText, port, 'CONNECT', (checked) => {
      const intercept = this.#intercept;
      if (!intercept || !checked.canonical) return {};
      const interception = interceptionFor(intercept.policy, checked.canonical, checked.port);
      return interception ? { intercepting: { ca: intercept.ca } } : {};
    });
    if (socket.destroyed) return;
    if (!verdict.allowed) {
      writeRaw(socket, statusFor(verdict), this.#refusalText(verdict));
      return;
    }
    if (verdict.intercepting) {
      if (this.#closed) {
        socket.destroy();
        return;
      }
      // Each request inside gets its own checks and its own upstream connection (intercept.ts).
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      this.#interceptor.serve(socket, head, verdict, verdict.intercepting.ca);
      return;
    }
    let upstream: Duplex;
    try {
      upstream = await this.#openUpstream(verdict);
    } catch (err) {
      writeRaw(socket, 502, upstreamSentence(verdict, err));
      return;
    }
    if (socket.destroyed || this.#closed) {
      upstream.destroy();
      return;
    }
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head.length > 0) upstream.write(head);
    tunnel(socket, upstream);
  }

  async #onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    const url = req.url ?? '';
    const absolute = /^([a-z][a-z0-9+.-]*):\/\/([^/?#]*)([^#]*)/i.exec(url);
    if (!absolute) {
      // Origin-form ("GET /"): someone talked to the proxy as if it were a web server.
      sendText(
        res,
        400,
        "This is Paddock's network proxy. It only forwards proxy requests (an absolute URL such as http://example.com/, or CONNECT for https).",
      );
      return;
    }
    const scheme = (absolute[1] ?? '').toLowerCase();
    const authority = absolute[2] ?? '';
    const rest = absolute[3] ?? '';
    if (scheme !== 'http') {
      sendText(
        res,
        400,
        scheme === 'https'
          ? 'Paddock\'s network proxy forwards https only through CONNECT; send "CONNECT host:443" instead.'
          : `Paddock's network proxy forwards only http:// requests (and CONNECT), not ${printable(scheme)}://.`,
      );
      return;
    }
    // SECURITY: no userinfo; "http://allowed.com@evil.com/" must not be read two ways.
    if (authority.includes('@')) {
      this.#record({
        host: printable(authority),
        port: 0,
        method,
        allowed: false,
        reason: 'credentials in the URL are not supported',
      });
      sendText(
        res,
        400,
        'Paddock refused a request with credentials in the URL (user:password@host); send them in a header instead.',
      );
      return;
    }
    let hostText: string;
    let port: number;
    try {
      const split = splitHostPort(authority);
      hostText = split.hostText;
      port = split.port ?? 80;
    } catch (err) {
      if (!(err instanceof InvalidTargetError)) throw err;
      this.#record({
        host: printable(authority),
        port: 0,
        method,
        allowed: false,
        reason: err.message,
      });
      sendText(res, 400, `Paddock refused a request: ${err.message}`);
      return;
    }
    // SECURITY: plain HTTP never carries a secret (no swap), but a pinned host keeps its pin.
    const verdict = await this.#decide(hostText, port, method, (checked) => {
      const intercept = this.#intercept;
      if (!intercept || !checked.canonical) return {};
      const interception = interceptionFor(intercept.policy, checked.canonical, checked.port);
      const refusal = pinRefusal(
        interception,
        checked.canonical,
        checked.port,
        req.rawHeaders,
        rest,
      );
      return refusal ? { pinRefusal: refusal } : {};
    });
    if (verdict.pinRefusal) {
      sendText(res, 403, verdict.pinRefusal.text);
      return;
    }
    if (!verdict.allowed) {
      sendText(res, statusFor(verdict), this.#refusalText(verdict));
      return;
    }
    const canonical = verdict.canonical ?? canonicalizeHost(hostText);
    let upstream: Duplex;
    try {
      upstream = await this.#openUpstream(verdict);
    } catch (err) {
      sendText(res, 502, upstreamSentence(verdict, err));
      return;
    }
    if (req.destroyed || res.destroyed) {
      upstream.destroy();
      return;
    }
    const path = rest.length === 0 ? '/' : rest.startsWith('/') ? rest : `/${rest}`;
    const hostHeader =
      port === 80
        ? hostForHeader(canonical.kind, canonical.host)
        : `${hostForHeader(canonical.kind, canonical.host)}:${port}`;
    const headers = forwardableHeaders(req.rawHeaders);
    headers.unshift('Host', hostHeader);
    const upstreamReq = httpRequest({
      method,
      path,
      headers,
      // SECURITY: the socket is already connected to the checked address; no agent, no lookup.
      createConnection: () => upstream as Socket,
    });
    upstreamReq.on('error', (err) => {
      upstream.destroy();
      if (!res.headersSent) sendText(res, 502, upstreamSentence(verdict, err));
      else res.destroy();
    });
    upstreamReq.on('response', (upstreamRes) => {
      res.writeHead(
        upstreamRes.statusCode ?? 502,
        upstreamRes.statusMessage,
        forwardableHeaders(upstreamRes.rawHeaders),
      );
      // Streams with backpressure; nothing is buffered beyond the stream high-water marks.
      pipeline(upstreamRes, res, (err) => {
        if (err) {
          res.destroy();
          upstream.destroy();
        }
      });
    });
    res.on('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    pipeline(req, upstreamReq, (err) => {
      if (err) upstream.destroy();
    });
  }

  /**
   * Decides, asks the person if allowed to, lets `refine` intercept or refuse an allowed
   * verdict, records exactly once, returns the verdict.
   */
  async #decide(
    hostText: string,
    port: number,
    method: string,
    refine?: (verdict: EgressVerdict) => Refinement,
  ): Promise<EgressVerdict & Refinement> {
    const resolve = this.#resolveWithTimeout;
    let verdict = await this.#allowlist.decide(hostText, port, resolve);
    if (!verdict.allowed && verdict.problem === 'not-allowed' && this.#askPerson && !this.#closed) {
      const answer = await this.#ask(verdict);
      if (answer === 'once') {
        // SECURITY: a prompt grant is exact host:port and never opens internal addresses.
        const once: AllowlistEntry = parseAllowlistEntry(verdict.target, { source: 'prompt' });
        verdict = await this.#allowlist.decide(hostText, port, resolve, [once]);
        if (verdict.allowed)
          verdict = { ...verdict, reason: `allowed once by the person (${verdict.target})` };
      } else if (answer === 'session' || answer === 'always') {
        this.#allowlist.add(verdict.target, { source: 'prompt' });
        verdict = await this.#allowlist.decide(hostText, port, resolve);
        if (verdict.allowed)
          verdict = {
            ...verdict,
            reason: `allowed by the person for this ${answer === 'always' ? 'task' : 'session'} (${verdict.target})`,
          };
      } else {
        verdict = { ...verdict, reason: `${verdict.reason}, and the person refused it` };
      }
    }
    // SECURITY: the proxy never forwards to itself (a loop, and a way around its own checks).
    if (this.#port !== undefined && port === this.#port && this.#pointsAtThisHost(verdict)) {
      const { suggestion: _unused, rule: _rule, ...rest } = verdict;
      verdict = {
        ...rest,
        allowed: false,
        reason: "it is Paddock's own network proxy",
        problem: 'self',
        addresses: [],
      };
    }
    const refinement = verdict.allowed && refine ? refine(verdict) : {};
    if (refinement.pinRefusal) {
      const { rule: _rule, ...rest } = verdict;
      verdict = { ...rest, allowed: false, reason: refinement.pinRefusal.reason, addresses: [] };
    }
    const recorded = this.#record({
      host: verdict.host,
      port: verdict.port,
      method,
      allowed: verdict.allowed,
      reason: verdict.reason,
      ...(verdict.rule === undefined ? {} : { rule: verdict.rule }),
      ...(refinement.intercepting ? { intercepted: true } : {}),
      ...(refinement.pinRefusal ? { pinRefused: true } : {}),
    });
    // SECURITY: an allowed connection that could not be logged is not made.
    if (!recorded && verdict.allowed) {
      return {
        ...verdict,
        allowed: false,
        reason: 'the decision could not be recorded',
        problem: 'unresolvable',
        addresses: [],
      };
    }
    return { ...verdict, ...refinement };
  }

  #pointsAtThisHost(verdict: EgressVerdict): boolean {
    const addresses =
      verdict.addresses.length > 0
        ? verdict.addresses
        : verdict.canonical && verdict.canonical.kind !== 'name'
          ? [verdict.canonical.ipv4 ?? verdict.canonical.host]
          : verdict.canonical && isLoopbackName(verdict.canonical.host)
            ? ['127.0.0.1']
            : [];
    return addresses.some((a) => {
      const c = classifyAddress(a).category;
      return c === 'loopback' || c === 'unspecified';
    });
  }

  #ask(verdict: EgressVerdict): Promise<PersonAnswer> {
    const ask = this.#askPerson;
    if (!ask) return Promise.resolve('deny');
    const key = verdict.target;
    const pending = this.#pendingAsks.get(key);
    if (pending) return pending;
    const promise = (async (): Promise<PersonAnswer> => {
      try {
        const answer = await ask(verdict.host, verdict.port, {
          target: verdict.target,
          reason: verdict.reason,
        });
        return answer === 'once' || answer === 'session' || answer === 'always' ? answer : 'deny';
      } catch {
        return 'deny';
      } finally {
        this.#pendingAsks.delete(key);
      }
    })();
    this.#pendingAsks.set(key, promise);
    return promise;
  }

  #record(decision: Omit<EgressDecision, 'at'>): boolean {
    try {
      this.#onDecision({ ...decision, at: Date.now() });
      return true;
    } catch {
      return false;
    }
  }

  readonly #resolveWithTimeout: Resolver = (host) =>
    new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(Object.assign(new Error('lookup timed out'), { code: 'ETIMEOUT' })),
        this.#resolveTimeoutMs,
      );
      this.#resolve(host).then(
        (addresses) => {
          clearTimeout(timer);
          resolve(addresses);
        },
        (err: unknown) => {
          clearTimeout(timer);
          reject(err instanceof Error ? err : new Error(String(err)));
        },
      );
    });

  /** Connects to the checked addresses in order, sharing one timeout. */
  async #openUpstream(verdict: EgressVerdict): Promise<Duplex> {
    const deadline = Date.now() + this.#connectTimeoutMs;
    let lastError: unknown = new UpstreamError('no address to connect to');
    for (const address of verdict.addresses) {
      const timeoutMs = deadline - Date.now();
      if (timeoutMs <= 0) {
        lastError = new UpstreamError(
          `the connection timed out after ${formatSeconds(this.#connectTimeoutMs)}`,
        );
        break;
      }
      try {
        const stream = await withTimeout(
          this.#connect({ address, port: verdict.port, host: verdict.host, timeoutMs }),
          timeoutMs,
          `the connection timed out after ${formatSeconds(this.#connectTimeoutMs)}`,
        );
        if (this.#closed) {
          stream.destroy();
          throw new UpstreamError('the proxy is shutting down');
        }
        stream.on('error', NOOP);
        this.#track(stream);
        return stream;
      } catch (err) {
        lastError = err;
      }
    }
    throw lastError;
  }

  #refusalText(verdict: EgressVerdict): string {
    return describeRefusal(verdict, this.#cliFlag);
  }

  #fail(res: ServerResponse, err: unknown): void {
    if (!res.headersSent) {
      sendText(
        res,
        500,
        `Paddock's network proxy failed on this request: ${printable(err instanceof Error ? err.message : String(err))}.`,
      );
    } else {
      res.destroy();
    }
  }
}

/**
 * Races a connect against a timeout; a stream that arrives after the timeout is destroyed, so a
 * connector that ignores its `timeoutMs` cannot hang a request.
 */
function withTimeout(pending: Promise<Duplex>, ms: number, message: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(new UpstreamError(message));
    }, ms);
    pending.then(
      (stream) => {
        clearTimeout(timer);
        if (expired) stream.destroy();
        else resolve(stream);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

function formatSeconds(ms: number): string {
  return ms >= 1000 ? `${Math.round(ms / 100) / 10} s` : `${ms} ms`;
}

// SECURITY: the upstream connect never resolves a name; only checked IP addresses get here.
const refuseLookup: LookupFunction = (hostname, _options, callback) => {
  callback(
    Object.assign(new Error(`refusing to resolve ${hostname}`), { code: 'ENOTFOUND' }),
    '',
    4,
  );
};

/** Default {@link UpstreamConnector}: TCP to the IP address, with a connect timeout. */
function connectTcp(target: { address: string; port: number; timeoutMs: number }): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: target.address, port: target.port, lookup: refuseLookup });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new UpstreamError(`the connection timed out after ${formatSeconds(target.timeoutMs)}`),
      );
    }, target.timeoutMs);
    const onError = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeListener('error', onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}

function hostForHeader(kind: string, host: string): string {
  return kind === 'ipv6' ? `[${host}]` : host;
}

/** Raw header pairs minus hop-by-hop ones and whatever `Connection` lists. */
function forwardableHeaders(raw: readonly string[]): string[] {
  const listed = new Set<string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if ((raw[i] ?? '').toLowerCase() === 'connection') {
      for (const token of (raw[i + 1] ?? '').split(',')) listed.add(token.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] ?? '';
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    out.push(name, raw[i + 1] ?? '');
  }
  return out;
}

function statusFor(verdict: EgressVerdict): number {
  switch (verdict.problem) {
    case 'invalid-host':
    case 'self':
      return 400;
    case 'unresolvable':
      return 502;
    default:
      return 403;
  }
}

function upstreamSentence(verdict: EgressVerdict, err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  const why =
    err instanceof UpstreamError
      ? err.message
      : code === 'ECONNREFUSED'
        ? 'the connection was refused'
        : code === 'ECONNRESET'
          ? 'the connection was reset'
          : code === 'EHOSTUNREACH' || code === 'ENETUNREACH'
            ? 'the host is unreachable'
            : `the connection failed (${printable(typeof code === 'string' ? code : err instanceof Error ? err.message : String(err))})`;
  return `Paddock could not connect to ${verdict.target}: ${why}.`;
}

function sendText(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(`${text}\n`, 'utf8');
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': body.length,
    'Cache-Control': 'no-store',
  });
  res.end(body);
}

/** A whole HTTP response on a raw socket (CONNECT and parse errors), then close. */
function writeRaw(socket: Duplex, status: number, text: string): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = Buffer.from(`${text}\n`, 'utf8');
  const head =
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
    'Content-Type: text/plain; charset=utf-8\r\n' +
    `Content-Length: ${body.length}\r\n` +
    'Connection: close\r\n\r\n';
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  // Drain whatever the client still sends, and make sure the socket goes away.
  socket.resume();
  setTimeout(() => socket.destroy(), 5_000).unref();
}

/** Pipes two streams into each other; an error on either side tears both down. */
function tunnel(client: Duplex, upstream: Duplex): void {
  const destroyBoth = (): void => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', destroyBoth);
  upstream.on('error', destroyBoth);
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => {
    if (!client.writableEnded) client.end();
    setTimeout(() => client.destroy(), 5_000).unref();
  });
  client.pipe(upstream);
  upstream.pipe(client);
}
