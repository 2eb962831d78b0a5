/**
 * Host side of the guest-agent channel: turns one byte stream (QEMU's virtio-serial chardev
 * socket, a vsock, or a unix socket in tests) into exec/file/tunnel operations.
 *
 * SECURITY: the guest is the sandbox, and root in it can kill the agent and speak on its channel.
 * Nothing it sends is trusted: frame lengths, JSON sizes and shapes, credit (per frame and in
 * total), DATA per window and per channel, the number of tunnels, the bytes of a file or listing
 * (counted as they arrive, never taken from a size the guest reports), and every string shown to
 * a person. What the host buffers for the guest is bounded in bytes whatever the guest does
 * ({@link GUEST_LIMITS}); a guest that breaks the protocol loses its channel.
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
  guestText,
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
const MiB = 1024 * 1024;

/** The bounds the host keeps whatever the guest sends; each is a SECURITY bound. */
export interface GuestLimits {
  /**
   * Guest-opened tunnels alive at once. Each may hold up to a window (1 MiB) of guest bytes on
   * the host while its consumer is slow, so this times the window bounds what tunnels can cost.
   */
  maxTunnels: number;
  /** Bytes queued for the channel above which no more DATA is sent until it drains. */
  channelHighWater: number;
  /**
   * Bytes queued for the channel at which the guest counts as no longer reading it (replies to
   * its own frames piling up): the channel is dropped.
   */
  channelHardLimit: number;
  /** Largest file readFile accepts, counted as the bytes arrive. */
  maxReadBytes: number;
  /** Largest listing (its JSON) list accepts, counted as the bytes arrive. */
  maxListBytes: number;
}

/** The default bounds (see {@link GuestLimits}). */
export const GUEST_LIMITS: Readonly<GuestLimits> = Object.freeze({
  maxTunnels: 128,
  channelHighWater: MiB,
  channelHardLimit: 16 * MiB,
  maxReadBytes: 16 * MiB,
  maxListBytes: 8 * MiB,
});

/** Largest HELLO the host looks at (the agent's is a few hundred bytes). */
const MAX_HELLO_BYTES = 4096;
/** Longest path in a FileStat: PATH_MAX plus one name. */
const MAX_PATH_CHARS = 4096 + 256;
/** Longest error message from the guest shown to a person (its paths are cut, not its sense). */
const MAX_MESSAGE_CHARS = 1024;
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

/** What an OutFlow needs from the channel it writes to. */
interface FlowChannel {
  send: Send;
  /**
   * Whether DATA may be sent now; when not, the flow is woken once the channel drains.
   * SECURITY: this is what keeps a guest that stops reading (while granting credit, or across
   * many streams each within its window) from piling host memory up in the channel's buffer.
   */
  mayWrite(flow: OutFlow): boolean;
  /** The guest broke flow control: the channel is dropped. */
  violation(): void;
}

/**
 * Tracks DATA the guest sends us on one stream (all its channels together, as the protocol
 * counts it) and the credit we give back: credit returns only once our consumer has taken the
 * bytes, which is what bounds memory.
 */
class InboundCredit {
  /** Bytes the guest may still send. */
  private allowed = INITIAL_WINDOW;
  /** Taken by the consumer, not yet granted back. */
  private pending = 0;
  constructor(
    private readonly grant: (n: number) => void,
    private readonly violation: () => void,
  ) {}

  /** Accounts for received bytes; false (after reporting) if the guest overran its window. */
  received(n: number): boolean {
    this.allowed -= n;
    if (this.allowed < 0) {
      // SECURITY: more DATA than granted means a broken or hostile guest.
      this.violation();
      return false;
    }
    return true;
  }

  /** `n` received bytes were taken by the consumer; grant them back (batched unless force). */
  consumed(n: number, force: boolean): void {
    this.pending += n;
    if (this.pending > 0 && (force || this.pending >= GRANT_BATCH)) {
      const k = this.pending;
      this.pending = 0;
      this.allowed += k;
      this.grant(k);
    }
  }
}

/**
 * The receiving side of one channel of a guest stream, feeding a Readable. Bytes are copied out
 * of the frames; while the consumer is not asking for more they are gathered into one buffer.
 * SECURITY: what the guest makes the host hold is then bounded by the window in bytes, whatever
 * the number of frames: a million one-byte frames would otherwise be a million Buffers, each
 * perhaps keeping a whole 64 KiB socket read alive.
 */
class Inbox {
  private backlog: Buffer | null = null;
  private backlogLen = 0;
  /** Pushed while the Readable was above its high-water mark: not taken yet. */
  private held = 0;
  private wanted = false;
  private eof = false;
  private dead = false;

  constructor(
    private readonly stream: Readable,
    private readonly credit: InboundCredit,
  ) {}

  /** DATA for this channel. */
  deliver(data: Buffer): void {
    if (!this.credit.received(data.length)) return;
    const s = this.stream;
    if (this.dead || this.eof || s.destroyed || s.readableEnded) {
      // Nobody will read it: drop, but keep the guest's writer from blocking.
      this.credit.consumed(data.length, true);
      return;
    }
    if (this.wanted && this.backlogLen === 0) this.push(Buffer.from(data));
    else this.append(data);
  }

  /** The guest's EOF: the Readable ends once what is gathered has been read. */
  end(): void {
    this.eof = true;
    this.flush();
  }

  /** The consumer asks for more (Readable._read): what it held counts as taken. */
  pull(): void {
    this.wanted = true;
    const n = this.held;
    this.held = 0;
    this.credit.consumed(n, true);
    this.flush();
  }

  /**
   * The Readable is gone: what it held is dropped and, when `giveBack`, returned to the guest so
   * its writer does not block (a command whose output nobody reads any more).
   */
  discard(giveBack: boolean): void {
    if (this.dead) return;
    this.dead = true;
    const n = this.held + this.backlogLen;
    this.held = 0;
    this.backlog = null;
    this.backlogLen = 0;
    if (giveBack) this.credit.consumed(n, true);
  }

  private append(data: Buffer): void {
    const need = this.backlogLen + data.length;
    if (!this.backlog || this.backlog.length < need) {
      const next = Buffer.allocUnsafe(
        Math.min(INITIAL_WINDOW, Math.max(need, 2 * this.backlogLen)),
      );
      this.backlog?.copy(next, 0, 0, this.backlogLen);
      this.backlog = next;
    }
    data.copy(this.backlog, this.backlogLen);
    this.backlogLen = need;
    this.flush();
  }

  private flush(): void {
    if (this.wanted && this.backlogLen > 0 && this.backlog) {
      const chunk = this.backlog.subarray(0, this.backlogLen);
      this.backlog = null;
      this.backlogLen = 0;
      this.push(chunk);
    }
    const s = this.stream;
    if (this.eof && this.backlogLen === 0 && !s.readableEnded && !s.destroyed) s.push(null);
  }

  private push(chunk: Buffer): void {
    const s = this.stream;
    if (s.destroyed) return this.credit.consumed(chunk.length, true);
    // Below the high-water mark the bytes count as taken; above it they wait for _read().
    this.wanted = s.push(chunk);
    if (this.wanted) this.credit.consumed(chunk.length, false);
    else this.held += chunk.length;
  }
}

/** A Readable fed by DATA frames; its consumer's pace decides when credit goes back. */
class CreditReadable extends Readable {
  readonly inbox: Inbox;
  constructor(credit: InboundCredit) {
    super();
    this.inbox = new Inbox(this, credit);
  }

  override _read(): void {
    this.inbox.pull();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.inbox.discard(true);
    cb(err);
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
    private readonly ch: FlowChannel,
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
    if (this.closed) return;
    // SECURITY: the guest only ever returns bytes we sent, so our credit can never exceed one
    // window; a grant beyond it (one huge CREDIT, or many that add up) is a broken guest.
    if (this.credit + n > INITIAL_WINDOW) return this.ch.violation();
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

  /** Sends what credit and the channel allow; called again when either frees up. */
  pump(): void {
    if (!this.open || this.closed) return;
    while (this.queue.length > 0 && this.credit > 0) {
      const item = this.queue[0];
      if (!item) break;
      if (!this.ch.mayWrite(this)) return;
      const n = Math.min(this.credit, MAX_DATA, item.buf.length);
      this.ch.send(encodeData(this.id, this.channel, item.buf.subarray(0, n)));
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
      this.ch.send(encodeEof(this.id, this.channel));
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

/**
 * Collects the bytes of a file or listing into one buffer, refusing more than `max`.
 * SECURITY: counted as they arrive; a size the guest reports (stat, RESP) is never trusted.
 */
class ByteSink {
  private buf: Buffer = Buffer.alloc(0);
  length = 0;
  constructor(readonly max: number) {}

  /** Adds bytes (copied); false, keeping nothing more, if that would pass the maximum. */
  push(data: Buffer): boolean {
    const need = this.length + data.length;
    if (need > this.max) return false;
    if (need > this.buf.length) {
      const next = Buffer.allocUnsafe(
        Math.min(this.max, Math.max(need, 2 * this.buf.length, 65536)),
      );
      this.buf.copy(next, 0, 0, this.length);
      this.buf = next;
    }
    data.copy(this.buf, this.length);
    this.length = need;
    return true;
  }

  /** What was collected. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** Errors a stream only if someone listens; otherwise an 'error' event would crash the host. */
function failStream(s: Readable | Writable, err: Error): void {
  if (s.destroyed) return;
  if (s instanceof Readable && s.readableEnded) return;
  if (s.listenerCount('error') > 0) s.destroy(err);
  else s.destroy();
}

/** The payload of a DATA frame split into its channel and bytes; a DATA without one is broken. */
function dataOf(f: Frame): { ch: number; data: Buffer } {
  if (f.payload.length < 1) throw new ProtocolError('the guest sent DATA without a channel');
  return { ch: f.payload[0] ?? -1, data: f.payload.subarray(1) };
}

/** The count of a CREDIT frame. */
function creditOf(f: Frame): number {
  if (f.payload.length !== 4) throw new ProtocolError('the guest sent a malformed CREDIT');
  return f.payload.readUInt32BE(0);
}

const ERRNO_NAME = /^E[A-Z0-9]{1,15}$/;
const SIGNAL_NAME = /^SIG[A-Z0-9+-]{1,12}$/;

function errFromPayload(payload: Buffer): GuestError {
  try {
    const v = parseJson(payload) as Partial<ErrPayload> | null;
    // SECURITY: the code is matched against what an errno name looks like, and the message is
    // cut and cleaned before a person (or a terminal) sees it.
    const code = typeof v?.code === 'string' && ERRNO_NAME.test(v.code) ? v.code : 'EIO';
    const message =
      typeof v?.message === 'string' && v.message.length > 0
        ? guestText(v.message, MAX_MESSAGE_CHARS)
        : 'The guest reported an error.';
    return new GuestError(code, message);
  } catch {
    return new GuestError('EPROTO', 'The guest reported an unreadable error.');
  }
}

const finiteOr0 = (x: unknown): number =>
  typeof x === 'number' && Number.isFinite(x) && x >= 0 ? x : 0;

function toExecResult(v: unknown): ExecResult {
  const o = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  // SECURITY: an exit status is a byte; anything else is not an answer this host acts on.
  if (typeof o.exitCode !== 'number' || !Number.isInteger(o.exitCode))
    throw new ProtocolError('EXIT without an exitCode');
  if (o.exitCode < 0 || o.exitCode > 255)
    throw new ProtocolError(`EXIT with an impossible exit code`);
  return {
    exitCode: o.exitCode,
    signal: typeof o.signal === 'string' && SIGNAL_NAME.test(o.signal) ? o.signal : null,
    timedOut: o.timedOut === true,
    ...(o.oomKilled === true ? { oomKilled: true } : {}),
    durationMs: finiteOr0(o.durationMs),
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
  // SECURITY: no file system has paths this long; the guest does not get to pick their size.
  if (o.path.length > MAX_PATH_CHARS)
    throw new ProtocolError('the guest sent a path longer than any real one');
  return {
    path: o.path,
    type,
    size: finiteOr0(o.size),
    mode:
      typeof o.mode === 'number' && Number.isInteger(o.mode) && o.mode >= 0 ? o.mode & 0o7777 : 0,
    mtimeMs: finiteOr0(o.mtimeMs),
  };
}

/**
 * The agent's HELLO as the host keeps it, or null when it is not one.
 * SECURITY: every field is checked and every string cut and cleaned (uname is shown by doctor).
 */
function toHello(payload: Buffer): Hello | null {
  if (payload.length > MAX_HELLO_BYTES) return null;
  const v = parseJson(payload);
  if (typeof v !== 'object' || v === null) return null;
  const o = v as Record<string, unknown>;
  if (o.agent !== 'paddock-agent' || typeof o.version !== 'number') return null;
  const int = (x: unknown, max: number): number =>
    typeof x === 'number' && Number.isInteger(x) && x >= 0 && x <= max ? x : 0;
  let limits: Hello['limits'] = null;
  if (typeof o.limits === 'object' && o.limits !== null) {
    const l = o.limits as Record<string, unknown>;
    limits = {
      cgroup: typeof l.cgroup === 'string' ? guestText(l.cgroup, 256) : '',
      memoryMaxBytes: finiteOr0(l.memoryMaxBytes),
      pidsMax: int(l.pidsMax, 2 ** 31),
    };
  }
  return {
    version: o.version,
    agent: 'paddock-agent',
    pid: int(o.pid, 2 ** 31),
    uname: typeof o.uname === 'string' ? guestText(o.uname, 256) : '',
    listenPort: int(o.listenPort, 65535),
    ...(typeof o.nonce === 'string' && o.nonce.length <= 128 ? { nonce: o.nonce } : {}),
    limits,
  };
}

/**
 * Speaks the Paddock guest protocol over one connected Duplex. Multiplexes any number of
 * concurrent execs, file operations and guest-opened tunnels, with per-stream credit so that
 * neither side buffers more than a window per stream, and a bound on what waits in the channel
 * itself. When the Duplex closes or errors, or the guest breaks the protocol, every pending
 * operation rejects with VmGoneError.
 */
export class GuestClient {
  private readonly decoder = new FrameDecoder({ syncOnHello: true });
  private readonly streams = new Map<number, StreamHandler>();
  private readonly helloWaiters = new Map<string, (outcome: Hello | Error) => void>();
  private nextId = 1;
  private gone: Error | null = null;
  private readonly limits: GuestLimits;
  /** Flows waiting for the channel to drain. */
  private readonly stalled = new Set<OutFlow>();
  private stallTimer: NodeJS.Timeout | undefined;
  private readonly flowChannel: FlowChannel;

  /** Whether the channel is lost (closed, broken or closed by us); operations then fail. */
  get isGone(): boolean {
    return this.gone !== null;
  }
  private handshake: Promise<Hello> | null = null;
  private tunnelHandler: ((d: Duplex) => void) | null = null;
  private tunnelCount = 0;
  /** The most recent HELLO from the agent (unsolicited or answered), checked and cleaned. */
  lastHello: Hello | null = null;

  /** `limits` overrides {@link GUEST_LIMITS} (tests use small ones). */
  constructor(
    private readonly conn: Duplex,
    limits: Partial<GuestLimits> = {},
  ) {
    this.limits = { ...GUEST_LIMITS, ...limits };
    this.flowChannel = {
      send: (b) => this.send(b),
      mayWrite: (flow) => {
        if (this.conn.writableLength < this.limits.channelHighWater) return true;
        this.stalled.add(flow);
        // 'drain' wakes the flows; the timer covers a Duplex whose high-water mark is above ours.
        this.stallTimer ??= setInterval(() => {
          if (this.conn.writableLength < this.limits.channelHighWater) this.wake();
        }, 50).unref();
        return false;
      },
      violation: () => this.fail(new VmGoneError('The guest broke the flow-control protocol.')),
    };
    conn.on('data', (chunk: Buffer) => this.onData(chunk));
    conn.on('drain', () => this.wake());
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
    // SECURITY: one window for stdout and stderr together, as the protocol counts it.
    const credit = new InboundCredit((n) => send(encodeCredit(id, n)), this.flowChannel.violation);
    const stdout = new CreditReadable(credit);
    const stderr = new CreditReadable(credit);
    const stdinFlow = new OutFlow(this.flowChannel, id, Channel.IN);
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
      stdout.inbox.end();
      stderr.inbox.end();
      stdinFlow.close();
    };
    const handler: StreamHandler = {
      onFrame: (f) => {
        switch (f.type) {
          case FrameType.DATA: {
            const { ch, data } = dataOf(f);
            if (ch === Channel.STDOUT) stdout.inbox.deliver(data);
            else if (ch === Channel.STDERR) stderr.inbox.deliver(data);
            else throw new ProtocolError('the guest sent command output on an unknown channel');
            break;
          }
          case FrameType.EOF:
            if (f.payload[0] === Channel.STDOUT) stdout.inbox.end();
            else if (f.payload[0] === Channel.STDERR) stderr.inbox.end();
            break;
          case FrameType.CREDIT:
            stdinFlow.grant(creditOf(f));
            break;
          case FrameType.EXIT: {
            const r = toExecResult(parseJson(f.payload));
            finish();
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

  /**
   * Reads a whole regular file from the guest. More than `maxBytes` (default
   * {@link GUEST_LIMITS}.maxReadBytes) rejects with GuestError `EFBIG`, and the read is stopped.
   */
  async readFile(path: string, opts: { maxBytes?: number } = {}): Promise<Buffer> {
    const maxBytes = Math.min(opts.maxBytes ?? this.limits.maxReadBytes, this.limits.maxReadBytes);
    const { data } = await this.request({ op: 'read', path }, { maxBytes, what: path });
    return data;
  }

  /** Creates or replaces a file in the guest with data; mode (e.g. 0o755) if given. */
  async writeFile(path: string, data: Buffer, opts: { mode?: number } = {}): Promise<void> {
    await this.request(
      { op: 'write', path, ...(opts.mode !== undefined ? { mode: opts.mode } : {}) },
      { upload: data },
    );
  }

  /** Information about one path (symlinks are not followed). */
  async stat(path: string): Promise<FileStat> {
    const { resp } = await this.request({ op: 'stat', path });
    return toFileStat(resp);
  }

  /**
   * Entries of a folder, sorted by name, without . and .. (symlinks are not followed). A listing
   * of more than {@link GUEST_LIMITS}.maxListBytes rejects with GuestError `EFBIG`.
   */
  async list(path: string): Promise<FileStat[]> {
    const maxBytes = this.limits.maxListBytes;
    const { data } = await this.request(
      { op: 'list', path },
      { maxBytes, what: `The listing of ${path}` },
    );
    const v = parseJson(data, maxBytes);
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
    // SECURITY: DATA waits for the channel to drain (mayWrite), so only the guest's own frames
    // (each answered by a small one) can pile up here; a guest that lets that much pile up
    // is not reading its channel and loses it.
    if (this.conn.writableLength > this.limits.channelHardLimit)
      this.fail(new VmGoneError('The sandbox VM stopped reading its channel.'));
  }

  /** The channel drained: flows that waited for it send again. */
  private wake(): void {
    clearInterval(this.stallTimer);
    this.stallTimer = undefined;
    const flows = [...this.stalled];
    this.stalled.clear();
    for (const f of flows) {
      if (this.gone) return;
      f.pump();
    }
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

  /**
   * One REQ; collects channel-1 DATA (at most `maxBytes`, default none); resolves on RESP,
   * rejects on ERR. Past `maxBytes` the stream is closed and the call rejects with `EFBIG`.
   */
  private request(
    req: GuestRequest,
    opts: { upload?: Buffer; maxBytes?: number; what?: string } = {},
  ): Promise<{ resp: unknown; data: Buffer }> {
    return new Promise((resolve, reject) => {
      const id = this.allocId();
      const sink = new ByteSink(opts.maxBytes ?? 0);
      const credit = new InboundCredit(
        (n) => this.send(encodeCredit(id, n)),
        this.flowChannel.violation,
      );
      const flow = new OutFlow(this.flowChannel, id, Channel.IN);
      let settled = false;
      const handler: StreamHandler = {
        onFrame: (f) => {
          if (settled) return;
          switch (f.type) {
            case FrameType.DATA: {
              const { ch, data } = dataOf(f);
              if (ch !== Channel.STDOUT)
                throw new ProtocolError('the guest sent file contents on an unknown channel');
              if (!credit.received(data.length)) return;
              if (!sink.push(data)) {
                // SECURITY: stop taking bytes at the cap, whatever size the guest claimed.
                this.streams.delete(id);
                this.send(encodeFrame(FrameType.CLOSE, id));
                flow.close();
                settled = true;
                reject(
                  new GuestError(
                    'EFBIG',
                    `${guestText(opts.what ?? 'The answer', 512)} is larger than ${sink.max.toLocaleString('en-US')} bytes.`,
                  ),
                );
                return;
              }
              credit.consumed(data.length, false);
              break;
            }
            case FrameType.CREDIT:
              flow.grant(creditOf(f));
              break;
            case FrameType.RESP: {
              const resp = parseJson(f.payload);
              this.streams.delete(id);
              flow.close();
              settled = true;
              resolve({ resp, data: sink.bytes() });
              break;
            }
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
          const upload = opts.upload;
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
    // SECURITY: guest streams have even ids from 2 (0 is the connection itself), and there are
    // at most maxTunnels of them at once.
    if (
      !handler ||
      this.tunnelCount >= this.limits.maxTunnels ||
      this.streams.has(id) ||
      id === 0 ||
      id % 2 !== 0 ||
      id >= 0x80000000
    ) {
      this.send(encodeFrame(FrameType.CLOSE, id));
      return;
    }
    const tunnel = new GuestTunnel(id, this.flowChannel, () => {
      if (this.streams.delete(id)) this.tunnelCount--;
    });
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
      const h = toHello(f.payload);
      if (!h) return;
      this.lastHello = h;
      const waiter = h.nonce !== undefined ? this.helloWaiters.get(h.nonce) : undefined;
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
    this.stalled.clear();
    clearInterval(this.stallTimer);
    for (const settle of [...this.helloWaiters.values()]) settle(err);
    const handlers = [...this.streams.values()];
    this.streams.clear();
    for (const h of handlers) h.onGone(err);
    this.conn.destroy();
  }
}

/** One guest-opened TCP connection, as a Duplex on the host. */
class GuestTunnel extends Duplex implements StreamHandler {
  private readonly inbox: Inbox;
  private readonly flow: OutFlow;
  private closedByGuest = false;

  constructor(
    readonly id: number,
    private readonly ch: FlowChannel,
    private readonly onDone: () => void,
  ) {
    super();
    const credit = new InboundCredit((n) => ch.send(encodeCredit(id, n)), ch.violation);
    this.inbox = new Inbox(this, credit);
    this.flow = new OutFlow(ch, id, Channel.IN);
    this.flow.start();
  }

  onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.DATA: {
        const { ch, data } = dataOf(f);
        if (ch !== Channel.IN)
          throw new ProtocolError('the guest sent tunnel bytes on channel ' + ch);
        this.inbox.deliver(data);
        break;
      }
      case FrameType.EOF:
        this.inbox.end();
        break;
      case FrameType.CREDIT:
        this.flow.grant(creditOf(f));
        break;
      case FrameType.CLOSE:
        this.closedByGuest = true;
        this.onDone();
        this.flow.close();
        this.inbox.end();
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
    this.inbox.pull();
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
      this.ch.send(encodeFrame(FrameType.CLOSE, this.id));
      this.onDone();
    }
    this.inbox.discard(false);
    this.flow.close();
    cb(err);
  }
}
