/**
 * Wire format of the host <-> guest-agent channel (see src/guest/PROTOCOL.md).
 *
 * Frame: u32 BE length L (of what follows), u8 type, u32 BE stream id, then L-5 payload bytes.
 * Kept free of I/O so both the client and tests can use it.
 */

export const PROTOCOL_VERSION = 1;
/** Largest payload a frame may carry (the channel byte of DATA included). */
export const MAX_PAYLOAD = 256 * 1024;
/** Credit each side starts with, per direction of each stream. */
export const INITIAL_WINDOW = 1024 * 1024;
/** Bytes of DATA in one frame, leaving room for the channel byte. */
export const MAX_DATA = MAX_PAYLOAD - 1;
const HEADER = 9;

/** Frame types; numbers are part of the wire format. */
export const FrameType = {
  HELLO: 1,
  REQ: 2,
  DATA: 3,
  EOF: 4,
  CREDIT: 5,
  EXIT: 6,
  RESP: 7,
  ERR: 8,
  TUNNEL_OPEN: 9,
  CLOSE: 10,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** DATA/EOF channels: 0 is stdin, file contents sent by the host, and tunnel bytes both ways. */
export const Channel = { IN: 0, STDOUT: 1, STDERR: 2 } as const;
export type Channel = (typeof Channel)[keyof typeof Channel];

/** One decoded frame; payload may share memory with the received chunk. */
export interface Frame {
  type: number;
  id: number;
  payload: Buffer;
}

/** What the agent says about itself in HELLO. */
export interface Hello {
  version: number;
  agent: string;
  pid: number;
  uname: string;
  /** TCP port of the in-guest proxy forwarder; 0 if it could not listen. */
  listenPort: number;
  /** Echo of the host's HELLO nonce; absent on the agent's unsolicited start-up HELLO. */
  nonce?: string;
  /**
   * The limits every command runs under (cgroup v2 in the VM), or null when the agent runs
   * without them (host tests, a guest kernel without cgroup2). Absent from older agents.
   */
  limits?: { cgroup: string; memoryMaxBytes: number; pidsMax: number } | null;
}

/** Requests the host sends in REQ frames. */
export type GuestRequest =
  | {
      op: 'exec';
      argv?: string[];
      shell?: string;
      cwd?: string;
      env?: Record<string, string>;
      stdin: boolean;
      timeoutMs?: number;
    }
  | { op: 'read'; path: string }
  | { op: 'write'; path: string; mode?: number }
  | { op: 'stat'; path: string }
  | { op: 'list'; path: string }
  | { op: 'ping' }
  | { op: 'kill'; target: number; signal: string };

/** Payload of an ERR frame. */
export interface ErrPayload {
  code: string;
  message: string;
}

/** The channel carried something that is not this protocol. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

/** Encodes one frame. */
export function encodeFrame(
  type: number,
  id: number,
  payload: Uint8Array = Buffer.alloc(0),
): Buffer {
  if (payload.length > MAX_PAYLOAD)
    throw new RangeError(`frame payload ${payload.length} exceeds ${MAX_PAYLOAD}`);
  const buf = Buffer.allocUnsafe(HEADER + payload.length);
  buf.writeUInt32BE(5 + payload.length, 0);
  buf.writeUInt8(type, 4);
  buf.writeUInt32BE(id >>> 0, 5);
  buf.set(payload, HEADER);
  return buf;
}

/** Encodes a frame whose payload is JSON. */
export function encodeJson(type: number, id: number, value: unknown): Buffer {
  return encodeFrame(type, id, Buffer.from(JSON.stringify(value), 'utf8'));
}

/** Encodes DATA: channel byte then bytes (at most MAX_DATA of them). */
export function encodeData(id: number, channel: number, data: Uint8Array): Buffer {
  if (data.length > MAX_DATA)
    throw new RangeError(`DATA of ${data.length} bytes exceeds ${MAX_DATA}`);
  const buf = Buffer.allocUnsafe(HEADER + 1 + data.length);
  buf.writeUInt32BE(6 + data.length, 0);
  buf.writeUInt8(FrameType.DATA, 4);
  buf.writeUInt32BE(id >>> 0, 5);
  buf.writeUInt8(channel, 9);
  buf.set(data, 10);
  return buf;
}

/** Encodes EOF for one channel. */
export function encodeEof(id: number, channel: number): Buffer {
  return encodeFrame(FrameType.EOF, id, Buffer.from([channel]));
}

/** Encodes CREDIT: u32 BE count of further DATA bytes the peer may send on this stream. */
export function encodeCredit(id: number, bytes: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32BE(bytes >>> 0, 0);
  return encodeFrame(FrameType.CREDIT, id, p);
}

/**
 * Largest JSON the guest sends in a control frame (HELLO, EXIT, RESP, ERR): the biggest real one
 * is an ERR naming a 4 KiB path. A listing travels as DATA and has its own cap (client.ts).
 */
export const MAX_CONTROL_JSON = 64 * 1024;

/**
 * Parses a JSON payload of at most `maxBytes`, or throws ProtocolError.
 * SECURITY: the size is checked before parsing, so a guest cannot make the host build an object
 * graph many times the size of a sensible answer.
 */
export function parseJson(payload: Buffer, maxBytes = MAX_CONTROL_JSON): unknown {
  if (payload.length > maxBytes)
    throw new ProtocolError(`the guest sent ${payload.length} bytes of JSON (at most ${maxBytes})`);
  try {
    return JSON.parse(payload.toString('utf8')) as unknown;
  } catch {
    throw new ProtocolError('the guest sent a frame whose JSON does not parse');
  }
}

// C0 and C1 control characters, DEL, and the bidirectional overrides that reorder what is shown.
// eslint-disable-next-line no-control-regex
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A string from the guest made fit to show a person: control characters (terminal escapes among
 * them) become spaces, and it is cut to `max` characters with an ellipsis.
 * SECURITY: guest text reaches terminals (the CLI), logs and the model; none of it may carry
 * escape sequences or be of a length the guest chose.
 */
export function guestText(s: string, max: number): string {
  const head = s.length > max * 2 ? s.slice(0, max * 2) : s;
  const clean = head.replace(UNPRINTABLE, ' ');
  if (clean.length <= max) return clean;
  let cut = clean.slice(0, Math.max(0, max - 1));
  // Never end on half of a surrogate pair.
  if (/[\ud800-\udbff]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

function isGuestHello(type: number, id: number, payload: Buffer): boolean {
  if (type !== FrameType.HELLO || id !== 0) return false;
  try {
    const v = JSON.parse(payload.toString('utf8')) as { agent?: unknown };
    return typeof v === 'object' && v !== null && v.agent === 'paddock-agent';
  } catch {
    return false;
  }
}

/**
 * Splits a byte stream into frames. Until the first HELLO from the agent it skips any bytes
 * before a well-formed HELLO, because a virtio port hands over whatever tail of data was
 * written while no host listened.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private total = 0;
  private synced: boolean;

  constructor(opts: { syncOnHello: boolean } = { syncOnHello: true }) {
    this.synced = !opts.syncOnHello;
  }

  /** Adds bytes and returns every frame now complete. Throws ProtocolError on a bad length. */
  push(chunk: Buffer): Frame[] {
    if (chunk.length === 0) return [];
    this.chunks.push(chunk);
    this.total += chunk.length;
    const out: Frame[] = [];
    if (!this.synced && !this.sync(out)) return out;
    for (;;) {
      if (this.total < HEADER) return out;
      const head = this.peek(HEADER);
      const len = head.readUInt32BE(0);
      if (len < 5 || len > 5 + MAX_PAYLOAD)
        throw new ProtocolError(`the guest sent a frame of bad length ${len}`);
      if (this.total < 4 + len) return out;
      const frame = this.take(4 + len);
      out.push({
        type: frame.readUInt8(4),
        id: frame.readUInt32BE(5),
        payload: frame.subarray(HEADER),
      });
    }
  }

  private sync(out: Frame[]): boolean {
    const buf = Buffer.concat(this.chunks, this.total);
    let i = 0;
    for (; i + HEADER <= buf.length; i++) {
      const len = buf.readUInt32BE(i);
      if (
        len < 7 ||
        len > 5 + 4096 ||
        buf[i + 4] !== FrameType.HELLO ||
        buf.readUInt32BE(i + 5) !== 0
      )
        continue;
      if (i + 4 + len > buf.length) break;
      const payload = buf.subarray(i + HEADER, i + 4 + len);
      if (!isGuestHello(FrameType.HELLO, 0, payload)) continue;
      out.push({ type: FrameType.HELLO, id: 0, payload });
      this.synced = true;
      this.reset(buf.subarray(i + 4 + len));
      return true;
    }
    // Keep at most the candidate tail; a HELLO is small.
    const keep = buf.subarray(Math.max(i, buf.length - (4 + 5 + 4096)));
    this.reset(keep);
    return false;
  }

  private reset(rest: Buffer): void {
    this.chunks = rest.length ? [rest] : [];
    this.total = rest.length;
  }

  private peek(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) return first;
    return Buffer.concat(this.chunks, this.total).subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.total -= n;
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      if (!c) throw new ProtocolError('frame decoder underflow');
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.total -= n;
    return out;
  }
}
