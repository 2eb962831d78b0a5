import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fsyncDir, pump } from './host-fs.js';

const SHA = /^[0-9a-f]{64}$/;

/** A stored copy no longer has the content its name promises (disk damage, a hand edit). */
export class BlobDamaged extends Error {
  constructor(sha256: string) {
    super(
      `The stored copy ${sha256.slice(0, 12)}… of this file is damaged; Paddock will not write it.`,
    );
    this.name = 'BlobDamaged';
  }
}

/**
 * Content-addressed copies of files, deduplicated by sha256, under `<dataDir>/changes/objects`:
 * what a session staged (so a pending changeset survives a restart and the VM stopping) and what
 * applying overwrote or deleted (the journal undo restores from). Written atomically (temp file,
 * fsync, rename) and checked against their hash whenever they are read back.
 */
export class BlobStore {
  readonly dir: string;
  private readonly tmpDir: string;

  constructor(dataDir: string) {
    this.dir = path.join(dataDir, 'changes', 'objects');
    this.tmpDir = path.join(this.dir, 'tmp');
    fs.mkdirSync(this.tmpDir, { recursive: true, mode: 0o700 });
  }

  pathOf(sha256: string): string {
    if (!SHA.test(sha256)) throw new Error(`not a sha256: ${sha256}`);
    return path.join(this.dir, sha256.slice(0, 2), sha256);
  }

  has(sha256: string): boolean {
    return SHA.test(sha256) && fs.existsSync(this.pathOf(sha256));
  }

  /** Stores `data`; returns its sha256. */
  put(data: Buffer): string {
    return this.write((fd) => {
      fs.writeSync(fd, data);
      return createHash('sha256').update(data).digest('hex');
    });
  }

  /** Stores what remains of an open file, hashing as it copies; returns its sha256 and size. */
  putFd(src: number): { sha256: string; size: number } {
    let size = 0;
    const sha256 = this.write((fd) => {
      const h = createHash('sha256');
      size = pump(src, (c) => {
        h.update(c);
        fs.writeSync(fd, c);
      });
      return h.digest('hex');
    });
    return { sha256, size };
  }

  /** Writes into a temp file, fsyncs it and renames it to its hash's name (kept if there already). */
  private write(fill: (fd: number) => string): string {
    const tmp = path.join(this.tmpDir, `${process.pid}-${Math.random().toString(36).slice(2)}`);
    const fd = fs.openSync(tmp, 'wx', 0o600);
    let sha256: string;
    try {
      sha256 = fill(fd);
      fs.fsyncSync(fd);
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(tmp, { force: true });
      throw e;
    }
    fs.closeSync(fd);
    const final = this.pathOf(sha256);
    if (fs.existsSync(final)) {
      fs.rmSync(tmp, { force: true });
      // Touched, so a prune running now in another process sees it as fresh.
      const now = new Date();
      fs.utimesSync(final, now, now);
      return sha256;
    }
    fs.mkdirSync(path.dirname(final), { recursive: true, mode: 0o700 });
    fs.renameSync(tmp, final);
    fsyncDir(path.dirname(final));
    return sha256;
  }

  /**
   * Copies a stored blob into an open file, checking its hash on the way; throws BlobDamaged
   * (after writing) when it does not match, so the caller abandons the file it wrote.
   */
  copyTo(sha256: string, dst: number): number {
    const fd = this.open(sha256);
    try {
      const h = createHash('sha256');
      const size = pump(fd, (c) => {
        h.update(c);
        fs.writeSync(dst, c);
      });
      if (h.digest('hex') !== sha256) throw new BlobDamaged(sha256);
      return size;
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A whole blob, checked against its hash. */
  read(sha256: string): Buffer {
    const data = fs.readFileSync(this.pathOf(sha256));
    if (createHash('sha256').update(data).digest('hex') !== sha256) throw new BlobDamaged(sha256);
    return data;
  }

  /** Its first `max` bytes (unchecked: for telling text from binary only). */
  head(sha256: string, max: number): Buffer {
    const fd = this.open(sha256);
    try {
      const buf = Buffer.allocUnsafe(max);
      const n = fs.readSync(fd, buf, 0, max, 0);
      return buf.subarray(0, n);
    } finally {
      fs.closeSync(fd);
    }
  }

  private open(sha256: string): number {
    try {
      return fs.openSync(this.pathOf(sha256), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT')
        throw new Error(`The stored copy ${sha256.slice(0, 12)}… is no longer kept.`);
      throw e;
    }
  }

  /** Every blob's hash and size. */
  private *each(): Generator<{ sha256: string; file: string; size: number; mtimeMs: number }> {
    for (const sub of fs.readdirSync(this.dir)) {
      if (!/^[0-9a-f]{2}$/.test(sub)) continue;
      for (const name of fs.readdirSync(path.join(this.dir, sub))) {
        if (!SHA.test(name)) continue;
        const file = path.join(this.dir, sub, name);
        const st = fs.statSync(file, { throwIfNoEntry: false });
        if (st) yield { sha256: name, file, size: st.size, mtimeMs: st.mtimeMs };
      }
    }
  }

  /** What the store holds: bytes and blobs. */
  usage(): { bytes: number; blobs: number } {
    let bytes = 0;
    let blobs = 0;
    for (const b of this.each()) {
      bytes += b.size;
      blobs++;
    }
    return { bytes, blobs };
  }

  /**
   * Removes blobs not in `keep` that are older than `graceMs` (a blob written a moment ago may
   * belong to a changeset another process is staging right now), and stale temp files.
   */
  prune(keep: ReadonlySet<string>, graceMs: number): { removed: number; bytes: number } {
    let removed = 0;
    let bytes = 0;
    const cutoff = Date.now() - graceMs;
    for (const b of this.each()) {
      if (keep.has(b.sha256) || b.mtimeMs > cutoff) continue;
      fs.rmSync(b.file, { force: true });
      removed++;
      bytes += b.size;
    }
    for (const name of fs.readdirSync(this.tmpDir)) {
      const file = path.join(this.tmpDir, name);
      const st = fs.statSync(file, { throwIfNoEntry: false });
      if (st && st.mtimeMs <= cutoff) fs.rmSync(file, { force: true });
    }
    return { removed, bytes };
  }
}
