/**
 * A per-VM log file on the host whose bytes come from the guest, kept small: `<path>` grows to
 * half the cap, then becomes `<path>.1` (replacing the older part) and a new `<path>` starts.
 * The two files together never hold more than the cap, and always the latest bytes.
 *
 * SECURITY: whatever the guest can write to (its serial console, the agent's stderr) it can
 * write as fast and as long as it likes; no host file may grow with it.
 */
import { closeSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';

/** Default cap on `<path>` and `<path>.1` together. */
export const CAPPED_LOG_MAX_BYTES = 4 * 1024 * 1024;
/** The smallest cap accepted (each part must hold a few screens of boot messages). */
const MIN_MAX_BYTES = 16 * 1024;

/** A capped, rotating log file; see the module comment. */
export class CappedLog {
  private fd: number | null = null;
  private size = 0;
  private stopped = false;
  /** Bytes given to write() so far (kept or not). */
  written = 0;

  constructor(
    readonly path: string,
    readonly maxBytes: number = CAPPED_LOG_MAX_BYTES,
    /** Keep what `path` already holds (counted against the cap) instead of starting empty. */
    private readonly append = false,
  ) {
    if (!Number.isInteger(maxBytes) || maxBytes < MIN_MAX_BYTES)
      throw new RangeError(`A log cap of ${maxBytes} bytes is too small`);
  }

  /**
   * Appends bytes, rotating at half the cap. Synchronous: writes are small (one pipe or socket
   * read), go to a local file, and keep the order and the cap exact. After a write error (a full
   * disk) the log stops and further bytes are dropped, never buffered.
   */
  write(chunk: Buffer): void {
    this.written += chunk.length;
    if (this.stopped) return;
    const part = Math.floor(this.maxBytes / 2);
    try {
      let off = 0;
      while (off < chunk.length) {
        if (this.fd === null) this.open();
        if (this.size >= part) {
          // SECURITY: the cap holds however fast the guest writes: the old part is replaced.
          this.closeFile();
          renameSync(this.path, `${this.path}.1`);
          this.fd = openSync(this.path, 'w', 0o600);
          this.size = 0;
          continue;
        }
        const n = Math.min(part - this.size, chunk.length - off);
        writeSync(this.fd!, chunk, off, n);
        this.size += n;
        off += n;
      }
    } catch {
      this.stopped = true;
      this.closeFile();
    }
  }

  /** Everything kept (both parts, oldest first), at most the cap. */
  text(): string {
    const read = (p: string): string => {
      try {
        return readFileSync(p, 'utf8');
      } catch {
        return '';
      }
    };
    return read(`${this.path}.1`) + read(this.path);
  }

  /** The last `n` lines. */
  tail(n: number): string {
    return this.text().trimEnd().split('\n').slice(-n).join('\n');
  }

  /** Closes the file; later writes are dropped (the files stay until their folder is removed). */
  close(): void {
    this.stopped = true;
    this.closeFile();
  }

  private open(): void {
    let size = 0;
    if (this.append) {
      try {
        size = statSync(this.path).size;
      } catch {
        size = 0;
      }
    }
    this.fd = openSync(this.path, this.append ? 'a' : 'w', 0o600);
    this.size = size;
  }

  private closeFile(): void {
    if (this.fd === null) return;
    try {
      closeSync(this.fd);
    } catch {
      // already gone
    }
    this.fd = null;
  }
}
