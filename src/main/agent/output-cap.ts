/** Pieces kept before they are joined into one (see OutputCap.push). */
const MAX_PIECES = 64;

/**
 * Keeps the head and the tail of a stream of bytes and counts the rest, so a command that prints
 * 10 MB (or 1 GB) costs a bounded amount of memory and a bounded number of tokens.
 * SECURITY: bounded in bytes *and* in pieces: the output comes from the guest, which chooses how
 * it is cut; a million one-byte chunks must not become a million kept Buffers, nor a small
 * slice keep a large buffer it came from alive.
 */
export class OutputCap {
  private head: Buffer[] = [];
  private headLen = 0;
  private tail: Buffer[] = [];
  private tailLen = 0;
  total = 0;

  constructor(
    private readonly headMax: number,
    private readonly tailMax: number,
  ) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.headLen < this.headMax) {
      const take = Math.min(chunk.length, this.headMax - this.headLen);
      this.head.push(Buffer.from(chunk.subarray(0, take)));
      this.headLen += take;
      if (this.head.length > MAX_PIECES) this.head = [Buffer.concat(this.head, this.headLen)];
      chunk = chunk.subarray(take);
      if (chunk.length === 0) return;
    }
    // Only the last tailMax bytes of a chunk can ever be kept.
    if (chunk.length > this.tailMax) chunk = chunk.subarray(chunk.length - this.tailMax);
    this.tail.push(Buffer.from(chunk));
    this.tailLen += chunk.length;
    while (this.tailLen - (this.tail[0]?.length ?? 0) >= this.tailMax) {
      this.tailLen -= this.tail.shift()!.length;
    }
    if (this.tail.length > MAX_PIECES) {
      const joined = Buffer.concat(this.tail, this.tailLen);
      const keep = joined.subarray(Math.max(0, joined.length - this.tailMax));
      this.tail = [Buffer.from(keep)];
      this.tailLen = keep.length;
    }
  }

  /** The kept text, with a note saying how much was cut from the middle when anything was. */
  text(): string {
    const head = Buffer.concat(this.head).toString('utf8');
    let tailBuf = Buffer.concat(this.tail);
    if (tailBuf.length > this.tailMax) tailBuf = tailBuf.subarray(tailBuf.length - this.tailMax);
    const cut = this.total - this.headLen - tailBuf.length;
    if (cut <= 0) return head + tailBuf.toString('utf8');
    return `${head}\n\n[… ${cut.toLocaleString('en-US')} of ${this.total.toLocaleString('en-US')} bytes cut from the middle of this output …]\n\n${tailBuf.toString('utf8')}`;
  }
}

/** Cuts a string to `max` characters, keeping both ends, with a note saying how much was cut. */
export function capText(text: string, max: number): string {
  if (text.length <= max) return text;
  const half = Math.floor(max / 2);
  const cut = text.length - 2 * half;
  return `${text.slice(0, half)}\n\n[… ${cut.toLocaleString('en-US')} of ${text.length.toLocaleString('en-US')} characters cut from the middle …]\n\n${text.slice(-half)}`;
}
