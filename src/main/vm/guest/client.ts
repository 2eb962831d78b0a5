/**
 * Host side of the guest-agent channel: turns one byte stream (QEMU's virtio-serial chardev
 * socket, a vsock, or a unix socket in tests) into exec/file/tunnel operations.
 *
 * SECURITY: the guest is the sandbox. Everything it sends is untrusted: frame lengths are
 * bounded, JSON is shape-checked, and a guest that sends more DATA than it was granted credit
 * for is treated as broken and the channel is dropped, so it cannot grow host memory at will.
 */
import { randomBytes } from 'node:crypto';
import { Duplex, Readable, Writable } from 'node:stream';
import type { ExecHandle, ExecRequest, ExecResult, FileStat } from '../backend.js';
import { VmGoneError } from '../backend.js';
import {
  Channel,
  FrameDecoder,
  FrameType,
  INITIAL_WINDOW,
  MAX_DATA,
  PROTOCOL_VERSION,
  ProtocolError,
  encodeCredit,
  encodeData,
  encodeEof,
  encodeFrame,
  encodeJson,
  parseJson,
  type ErrPayload,
  type Frame,
  type GuestRequest,
  type Hello,
} from './protocol.js';

/** Credit is granted back in batches of at least this many bytes (or when the reader asks). */
const GRANT_BATCH = 64 * 1024;
/** How often hello() repeats its HELLO while the guest is silent. */
const HELLO_INTERVAL_MS = 250;
/** hello() budget used when an operation is started before anyone called hello(). */
const DEFAULT_HELLO_TIMEOUT_MS = 60_000;
/** SECURITY: cap on guest-opened tunnels alive at once. */
const MAX_TUNNELS = 512;
/**
 * The host's own deadline for a command with timeoutMs, after the guest's: the guest clock can
 * lag the host's by seconds when a TCG guest is overloaded (a fork bomb), so the host kills the
 * command itself (CLOSE) if the guest has not by then.
 */
const HOST_TIMEOUT_SLACK_MS = 500;

/** An operation failed inside the guest (file missing, permission denied, ...). */
export class GuestError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'GuestError';
    this.code = code;
  }
}

interface StreamHandler {
  onFrame(frame: Frame): void;
  onGone(err: Error): void;
}

type Send = (buf: Buffer) => void;

/**
 * Tracks DATA the guest sends us on one stream and the credit we give back: credit returns
 * only once our consumer has taken the bytes, which is what bounds memory.
 */
class InboundCredit {
  private allowed = INITIAL_WINDOW;
  /** Received but still sitting in a full Readable buffer. */
  private held = 0;
  /** Taken by the consumer, not yet granted back. */
  private pending = 0;
  constructor(
    private readonly grant: (n: number) => void,
    private readonly violation: () => void,
  ) {}

  /** Accounts for received bytes; false (after reporting) if the guest overran its credit. */
  received(n: number): boolean {
    this.allowed -= n;
    if (this.allowed < 0) {
      this.violation();
      return false;
    }
    this.held += n;
    return true;
  }

  /** The consumer has taken everything received so far; grant it back (batched unless force). */
  release(force: boolean): void {
    this.pending += this.held;
    this.held = 0;
    if (this.pending > 0 && (force || this.pending >= GRANT_BATCH)) {
      const n = this.pending;
      this.pending = 0;
      this.allowed += n;
      this.grant(n);
    }
  }
}

/** A Readable fed by DATA frames; its consumer's pace decides when credit goes back. */
class CreditReadable extends Readable {
  constructor(private readonly credit: InboundCredit) {
    super();
  }

  deliver(chunk: Buffer): void {
    if (!this.credit.received(chunk.length)) return;
    if (this.destroyed || this.readableEnded) {
      // Nobody will read it: drop, but keep the command from blocking.
      this.credit.release(true);
      return;
    }
    // Below the high-water mark the bytes count as taken; above it they wait for _read().
    if (this.push(chunk)) this.credit.release(false);
  }

  finish(): void {
    if (!this.readableEnded && !this.destroyed) this.push(null);
  }

  override _read(): void {
    this.credit.release(true);
  }
}

/** Outgoing DATA on one channel of one stream, limited by the credit the guest grants. */
class OutFlow {
  private credit = INITIAL_WINDOW;
  private queue: { buf: Buffer; cb: (err?: Error | null) => void }[] = [];
  private endCb: ((err?: Error | null) => void) | null = null;
  private ended = false;
  /** false until the REQ that opens the stream has been sent. */
  open = false;
  /** true once the stream is over: writes are then discarded. */
  closed = false;

  constructor(
    private readonly send: Send,
    private readonly id: number,
    private readonly channel: number,
  ) {}

  write(buf: Buffer, cb: (err?: Error | null) => void): void {
    if (this.closed) return cb();
    this.queue.push({ buf, cb });
    this.pump();
  }

  end(cb: (err?: Error | null) => void): void {
    if (this.closed) return cb();
    this.endCb = cb;
    this.pump();
  }

  grant(n: number): void {
    this.credit += n;
    this.pump();
  }

  start(): void {
    this.open = true;
    this.pump();
  }

  /** Stops the flow; pending writes complete (with err if given). */
  close(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    const q = this.queue;
    this.queue = [];
    for (const item of q) item.cb(err ?? null);
    const e = this.endCb;
    this.endCb = null;
    e?.(err ?? null);
  }

  private pump(): void {
    if (!this.open || this.closed) return;
    while (this.queue.length > 0 && this.credit > 0) {
      const item = this.queue[0];
      if (!item) break;
      const n = Math.min(this.credit, MAX_DATA, item.buf.length);
      this.send(encodeData(this.id, this.channel, item.buf.subarray(0, n)));
      this.credit -= n;
      if (n === item.buf.length) {
        this.queue.shift();
        item.cb(null);
      } else {
        item.buf = item.buf.subarray(n);
      }
    }
    if (this.queue.length === 0 && this.endCb && !this.ended) {
      this.ended = true;
      this.send(encodeEof(this.id, this.channel));
      const e = this.endCb;
      this.endCb = null;
      e(null);
    }
  }
}

/** A Writable over an OutFlow (exec stdin). */
class FlowWritable extends Writable {
  constructor(private readonly flow: OutFlow) {
    super();
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.flow.write(chunk, cb);
  }
  override _final(cb: (err?: Error | null) => void): void {
    this.flow.end(cb);
  }
}

/** Errors a stream only if someone listens; otherwise an 'error' event would crash the host. */
function failStream(s: Readable | Writable, err: Error): void {
  if (s.destroyed) return;
  if (s instanceof Readable && s.readableEnded) return;
  if (s.listenerCount('error') > 0) s.destroy(err);
  else s.destroy();
}

function errFromPayload(payload: Buffer): GuestError {
  try {
    const v = parseJson(payload) as Partial<ErrPayload> | null;
    const code = typeof v?.code === 'string' ? v.code : 'EIO';
    const message = typeof v?.message === 'string' ? v.message : 'The guest reported an error.';
    return new GuestError(code, message);
  } catch {
    return new GuestError('EPROTO', 'The guest reported an unreadable error.');
  }
}

function toExecResult(v: unknown): ExecResult {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (typeof o.exitCode !== 'number') throw new ProtocolError('EXIT without an exitCode');
  return {
    exitCode: o.exitCode,
    signal: typeof o.signal === 'string' ? o.signal : null,
    timedOut: o.timedOut === true,
    ...(o.oomKilled === true ? { oomKilled: true } : {}),
    durationMs: typeof o.durationMs === 'number' ? o.durationMs : 0,
  };
}

function toFileStat(v: unknown): FileStat {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  const type = o.type;
  if (
    typeof o.path !== 'string' ||
    (type !== 'file' && type !== 'dir' && type !== 'symlink' && type !== 'other')
  )
    throw new ProtocolError('malformed file information from the guest');
  return {
    path: o.path,
    type,
    size: typeof o.size === 'number' ? o.size : 0,
    mode: typeof o.mode === 'number' ? o.mode : 0,
    mtimeMs: typeof o.mtimeMs === 'number' ? o.mtimeMs : 0,
  };
}

/**
 * Speaks the Paddock guest protocol over one connected Duplex. Multiplexes any number of
 * concurrent execs, file operations and guest-opened tunnels, with per-stream credit so that
 * neither side buffers more than a window per stream. When the Duplex closes or errors, every
 * pending operation rejects with VmGoneError.
 */
export class GuestClient {
  private readonly decoder = new FrameDecoder({ syncOnHello: true });
  private readonly streams = new Map<number, StreamHandler>();
  private readonly helloWaiters = new Map<string, (outcome: Hello | Error) => void>();
  private nextId = 1;
  private gone: Error | null = null;

  /** Whether the channel is lost (closed, broken or closed by us); operations then fail. */
  get isGone(): boolean {
    return this.gone !== null;
  }
  private handshake: Promise<Hello> | null = null;
  private tunnelHandler: ((d: Duplex) => void) | null = null;
  private tunnelCount = 0;
  /** The most recent HELLO from the agent (unsolicited or answered). */
  lastHello: Hello | null = null;

  constructor(private readonly conn: Duplex) {
    conn.on('data', (chunk: Buffer) => this.onData(chunk));
    conn.on('error', (err: Error) =>
      this.fail(new VmGoneError(`The sandbox VM channel failed: ${err.message}`)),
    );
    conn.on('close', () => this.fail(new VmGoneError()));
    conn.on('end', () => this.fail(new VmGoneError()));
  }

  /**
   * Waits until the agent answers: sends HELLO (with a fresh nonce) every 250 ms, since the
   * guest port drops what is sent before the agent opens it. Resolves with the agent's HELLO.
   */
  hello(timeoutMs: number): Promise<Hello> {
    const p = new Promise<Hello>((resolve, reject) => {
      if (this.gone) return reject(this.gone);
      const nonce = randomBytes(12).toString('hex');
      const send = (): void =>
        this.send(encodeJson(FrameType.HELLO, 0, { version: PROTOCOL_VERSION, nonce }));
      const timer = setInterval(send, HELLO_INTERVAL_MS);
      const deadline = setTimeout(
        () => settle(new Error(`The guest agent did not answer within ${timeoutMs} ms.`)),
        timeoutMs,
      );
      const settle = (outcome: Hello | Error): void => {
        clearInterval(timer);
        clearTimeout(deadline);
        this.helloWaiters.delete(nonce);
        if (outcome instanceof Error) reject(outcome);
        else if (outcome.version !== PROTOCOL_VERSION)
          reject(
            new Error(
              `The guest agent speaks protocol ${outcome.version}; this app needs ${PROTOCOL_VERSION}.`,
            ),
          );
        else resolve(outcome);
      };
      this.helloWaiters.set(nonce, settle);
      send();
    });
    if (!this.handshake) {
      this.handshake = p;
      p.catch(() => {
        if (this.handshake === p) this.handshake = null;
      });
    }
    return p;
  }

  /** Runs a command in the guest. Consume stdout and stderr: unread output blocks the command. */
  exec(req: ExecRequest): ExecHandle {
    if ((req.argv === undefined) === (req.shell === undefined))
      throw new TypeError('exec needs exactly one of argv or shell');
    const id = this.allocId();
    const send: Send = (b) => this.send(b);
    const violation = (): void =>
      this.fail(new VmGoneError('The guest broke the flow-control protocol.'));
    const outCredit = new InboundCredit((n) => send(encodeCredit(id, n)), violation);
    const errCredit = new InboundCredit((n) => send(encodeCredit(id, n)), violation);
    const stdout = new CreditReadable(outCredit);
    const stderr = new CreditReadable(errCredit);
    const stdinFlow = new OutFlow(send, id, Channel.IN);
    const stdin: Writable = req.stdin
      ? new FlowWritable(stdinFlow)
      : new Writable({ write: (_c, _e, cb: (err?: Error | null) => void) => cb() });
    let resolve!: (r: ExecResult) => void;
    let reject!: (e: Error) => void;
    const result = new Promise<ExecResult>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that only watches the streams must not crash the host with an unhandled rejection.
    result.catch(() => undefined);

    let finished = false;
    let hostTimer: NodeJS.Timeout | undefined;
    let hostTimedOut = false;
    const finish = (): void => {
      finished = true;
      clearTimeout(hostTimer);
      this.streams.delete(id);
      stdout.finish();
      stderr.finish();
      stdinFlow.close();
    };
    const handler: StreamHandler = {
      onFrame: (f) => {
        switch (f.type) {
          case FrameType.DATA: {
            const ch = f.payload[0];
            const data = f.payload.subarray(1);
            if (ch === Channel.STDOUT) stdout.deliver(data);
            else if (ch === Channel.STDERR) stderr.deliver(data);
            break;
          }
          case FrameType.EOF:
            if (f.payload[0] === Channel.STDOUT) stdout.finish();
            else if (f.payload[0] === Channel.STDERR) stderr.finish();
            break;
          case FrameType.CREDIT:
            if (f.payload.length >= 4) stdinFlow.grant(f.payload.readUInt32BE(0));
            break;
          case FrameType.EXIT: {
            finish();
            const r = toExecResult(parseJson(f.payload));
            // Killed by the host's deadline: report it as the timeout it is.
            const killed = hostTimedOut && !r.timedOut && r.signal === 'SIGKILL';
            resolve(killed ? { ...r, exitCode: 124, timedOut: true } : r);
            break;
          }
          case FrameType.ERR:
            finish();
            reject(errFromPayload(f.payload));
            break;
          default:
            break;
        }
      },
      onGone: (err) => {
        finished = true;
        clearTimeout(hostTimer);
        stdinFlow.close(err);
        failStream(stdout, err);
        failStream(stderr, err);
        failStream(stdin, err);
        reject(err);
      },
    };

    const wire: GuestRequest = {
      op: 'exec',
      stdin: req.stdin === true,
      ...(req.argv !== undefined ? { argv: req.argv } : {}),
      ...(req.shell !== undefined ? { shell: req.shell } : {}),
      ...(req.cwd !== undefined ? { cwd: req.cwd } : {}),
      ...(req.env !== undefined ? { env: req.env } : {}),
      ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}),
    };
    this.whenReady(
      () => {
        if (finished) return;
        this.streams.set(id, handler);
        this.send(encodeJson(FrameType.REQ, id, wire));
        stdinFlow.start();
        if (req.timeoutMs !== undefined && req.timeoutMs > 0) {
          hostTimer = setTimeout(() => {
            if (finished || !this.streams.has(id)) return;
            hostTimedOut = true;
            // The agent kills the command's cgroup; EXIT follows as usual.
            this.send(encodeFrame(FrameType.CLOSE, id));
          }, req.timeoutMs + HOST_TIMEOUT_SLACK_MS);
          hostTimer.unref();
        }
      },
      (err) => handler.onGone(err),
    );

    return {
      stdout,
      stderr,
      stdin,
      result,
      kill: (signal: NodeJS.Signals = 'SIGTERM') => {
        this.whenReady(
          () => {
            if (finished || !this.streams.has(id)) return;
            // The answer (ok, or ESRCH if it already ended) does not matter to the caller.
            this.request({ op: 'kill', target: id, signal: signal.replace(/^SIG/, '') }).catch(
              () => undefined,
            );
          },
          () => undefined,
        );
      },
    };
  }

  /** Reads a whole regular file from the guest. */
  async readFile(path: string): Promise<Buffer> {
    const { data } = await this.request({ op: 'read', path });
    return data;
  }

  /** Creates or replaces a file in the guest with data; mode (e.g. 0o755) if given. */
  async writeFile(path: string, data: Buffer, opts: { mode?: number } = {}): Promise<void> {
    await this.request(
      { op: 'write', path, ...(opts.mode !== undefined ? { mode: opts.mode } : {}) },
      data,
    );
  }

  /** Information about one path (symlinks are not followed). */
  async stat(path: string): Promise<FileStat> {
    const { resp } = await this.request({ op: 'stat', path });
    return toFileStat(resp);
  }

  /** Entries of a folder, sorted by name, without . and .. (symlinks are not followed). */
  async list(path: string): Promise<FileStat[]> {
    const { data } = await this.request({ op: 'list', path });
    const v = parseJson(data);
    if (!Array.isArray(v)) throw new ProtocolError('list did not return an array');
    return v.map(toFileStat);
  }

  /** Round trip to the agent in milliseconds. */
  async ping(): Promise<number> {
    const t0 = performance.now();
    await this.request({ op: 'ping' });
    return performance.now() - t0;
  }

  /**
   * Receives tunnels the guest opens: one Duplex per TCP connection accepted by the in-guest
   * proxy forwarder. Without a handler, tunnels are refused.
   * SECURITY: the handler (the egress proxy) must decide what the bytes may reach.
   */
  onTunnel(handler: (d: Duplex) => void): void {
    this.tunnelHandler = handler;
  }

  /** Closes the channel; pending operations reject with VmGoneError. */
  close(): void {
    this.fail(new VmGoneError('The sandbox VM channel was closed.'));
  }

  // ---------- internals ----------

  private allocId(): number {
    const id = this.nextId;
    this.nextId += 2;
    if (this.nextId >= 0x80000000) this.nextId = 1;
    return id;
  }

  private send(buf: Buffer): void {
    if (this.gone) return;
    this.conn.write(buf);
  }

  private whenReady(fn: () => void, onErr: (e: Error) => void): void {
    if (this.gone) {
      const g = this.gone;
      queueMicrotask(() => onErr(g));
      return;
    }
    const hs = this.handshake ?? this.hello(DEFAULT_HELLO_TIMEOUT_MS);
    hs.then(
      () => (this.gone ? onErr(this.gone) : fn()),
      (e: unknown) => onErr(this.gone ?? (e instanceof Error ? e : new Error(String(e)))),
    );
  }

  /** One REQ; collects channel-1 DATA; resolves on RESP, rejects on ERR. */
  private request(req: GuestRequest, upload?: Buffer): Promise<{ resp: unknown; data: Buffer }> {
    return new Promise((resolve, reject) => {
      const id = this.allocId();
      const chunks: Buffer[] = [];
      const credit = new InboundCredit(
        (n) => this.send(encodeCredit(id, n)),
        () => this.fail(new VmGoneError('The guest broke the flow-control protocol.')),
      );
      const flow = new OutFlow((b) => this.send(b), id, Channel.IN);
      let settled = false;
      const handler: StreamHandler = {
        onFrame: (f) => {
          switch (f.type) {
            case FrameType.DATA:
              if (f.payload[0] === Channel.STDOUT) {
                const data = f.payload.subarray(1);
                if (!credit.received(data.length)) return;
                chunks.push(data);
                credit.release(false);
              }
              break;
            case FrameType.CREDIT:
              if (f.payload.length >= 4) flow.grant(f.payload.readUInt32BE(0));
              break;
            case FrameType.RESP:
              this.streams.delete(id);
              flow.close();
              settled = true;
              try {
                resolve({ resp: parseJson(f.payload), data: Buffer.concat(chunks) });
              } catch (e) {
                reject(e as Error);
              }
              break;
            case FrameType.ERR:
              this.streams.delete(id);
              flow.close();
              settled = true;
              reject(errFromPayload(f.payload));
              break;
            default:
              break;
          }
        },
        onGone: (err) => {
          flow.close(err);
          if (!settled) reject(err);
          settled = true;
        },
      };
      this.whenReady(
        () => {
          this.streams.set(id, handler);
          this.send(encodeJson(FrameType.REQ, id, req));
          if (upload) {
            flow.start();
            for (let off = 0; off < upload.length; off += MAX_DATA)
              flow.write(upload.subarray(off, off + MAX_DATA), () => undefined);
            flow.end(() => undefined);
          }
        },
        (err) => handler.onGone(err),
      );
    });
  }

  private openTunnel(id: number): void {
    const handler = this.tunnelHandler;
    if (!handler || this.tunnelCount >= MAX_TUNNELS || this.streams.has(id) || id % 2 !== 0) {
      this.send(encodeFrame(FrameType.CLOSE, id));
      return;
    }
    const tunnel = new GuestTunnel(
      id,
      (b) => this.send(b),
      () => {
        if (this.streams.delete(id)) this.tunnelCount--;
      },
      () => this.fail(new VmGoneError('The guest broke the flow-control protocol.')),
    );
    this.streams.set(id, tunnel);
    this.tunnelCount++;
    try {
      handler(tunnel);
    } catch {
      tunnel.destroy();
    }
  }

  private onData(chunk: Buffer): void {
    if (this.gone) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.fail(new VmGoneError(`The sandbox VM channel broke: ${(e as Error).message}`));
      return;
    }
    for (const f of frames) {
      if (this.gone) return;
      try {
        this.dispatch(f);
      } catch (e) {
        this.fail(new VmGoneError(`The sandbox VM channel broke: ${(e as Error).message}`));
        return;
      }
    }
  }

  private dispatch(f: Frame): void {
    if (f.type === FrameType.HELLO) {
      const h = parseJson(f.payload) as Hello;
      if (typeof h !== 'object' || h === null) return;
      this.lastHello = h;
      const waiter = typeof h.nonce === 'string' ? this.helloWaiters.get(h.nonce) : undefined;
      waiter?.(h);
      return;
    }
    if (f.type === FrameType.TUNNEL_OPEN) {
      this.openTunnel(f.id);
      return;
    }
    this.streams.get(f.id)?.onFrame(f);
  }

  private fail(err: Error): void {
    if (this.gone) return;
    this.gone = err;
    for (const settle of [...this.helloWaiters.values()]) settle(err);
    const handlers = [...this.streams.values()];
    this.streams.clear();
    for (const h of handlers) h.onGone(err);
    this.conn.destroy();
  }
}

/** One guest-opened TCP connection, as a Duplex on the host. */
class GuestTunnel extends Duplex implements StreamHandler {
  private readonly credit: InboundCredit;
  private readonly flow: OutFlow;
  private closedByGuest = false;

  constructor(
    readonly id: number,
    private readonly sendFn: Send,
    private readonly onDone: () => void,
    violation: () => void,
  ) {
    super();
    this.credit = new InboundCredit((n) => sendFn(encodeCredit(id, n)), violation);
    this.flow = new OutFlow(sendFn, id, Channel.IN);
    this.flow.start();
  }

  onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.DATA: {
        const data = f.payload.subarray(1);
        if (!this.credit.received(data.length)) return;
        if (this.destroyed || this.readableEnded) {
          this.credit.release(true);
          return;
        }
        if (this.push(data)) this.credit.release(false);
        break;
      }
      case FrameType.EOF:
        if (!this.readableEnded && !this.destroyed) this.push(null);
        break;
      case FrameType.CREDIT:
        if (f.payload.length >= 4) this.flow.grant(f.payload.readUInt32BE(0));
        break;
      case FrameType.CLOSE:
        this.closedByGuest = true;
        this.onDone();
        this.flow.close();
        if (!this.readableEnded && !this.destroyed) this.push(null);
        break;
      default:
        break;
    }
  }

  onGone(err: Error): void {
    this.closedByGuest = true;
    this.flow.close(err);
    failStream(this, err);
  }

  override _read(): void {
    this.credit.release(true);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.flow.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.flow.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (!this.closedByGuest) {
      this.closedByGuest = true;
      this.sendFn(encodeFrame(FrameType.CLOSE, this.id));
      this.onDone();
    }
    this.flow.close();
    cb(err);
  }
}
