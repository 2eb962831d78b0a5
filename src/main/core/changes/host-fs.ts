import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { relPathProblem } from '../../../shared/rel-path.js';

export { relPathProblem };

/**
 * The careful file operations staged edits are applied and undone with, in the person's folder.
 * SECURITY: nothing here follows a symbolic link. Every parent of a path is checked with lstat
 * from the grant's root down; a file is read with O_NOFOLLOW and checked to be the file lstat
 * saw; a target is replaced by rename, never opened for writing.
 */

// Windows has neither flag (nor symlinks a guest could plant there); the lstat checks stand alone.
const O_NOFOLLOW = fs.constants.O_NOFOLLOW ?? 0;
const O_NONBLOCK = fs.constants.O_NONBLOCK ?? 0;
const CHUNK = 1024 * 1024;

/** A path the person's folder does not allow to be written or read safely, with a sentence. */
export class Refused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'Refused';
  }
}

/** A file as the folder has it now (or had it), never followed through a link. */
export type HostState =
  | { type: 'absent' }
  | { type: 'file'; size: number; mode: number; mtimeMs: number; sha256: string }
  | { type: 'symlink'; size: number; mode: number; mtimeMs: number; sha256: string; target: string }
  | { type: 'dir'; empty: boolean }
  | { type: 'other' }
  /** A folder on the way is a link or a file: the path cannot be reached without following one. */
  | { type: 'blocked'; reason: string };

/** The hash of a symlink side: of its target's bytes, so links compare like files. */
export function linkHash(target: string): string {
  return createHash('sha256').update(target).digest('hex');
}

function lstatOrNull(abs: string): fs.Stats | null {
  try {
    return fs.lstatSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * Checks the grant's root: a folder that is its own real path (the grant stored the real path;
 * a folder swapped for a link since is refused).
 */
export function checkRoot(root: string): void {
  const st = lstatOrNull(root);
  if (!st) throw new Refused(`The folder ${root} is no longer there.`);
  // SECURITY: the root itself must not have become a link (or sit under one) since it was granted.
  if (!st.isDirectory() || fs.realpathSync.native(root) !== root)
    throw new Refused(
      `The folder ${root} is no longer a plain folder (it was replaced by a link); Paddock changes nothing there.`,
    );
}

/**
 * The folder that holds `rel` under `root`, every part checked with lstat from the root down.
 * `create`: missing folders are made (one at a time, each checked again); otherwise a missing one
 * gives null. Throws Refused when a part is a link or not a folder.
 */
export function parentDir(root: string, rel: string, create: boolean): string | null {
  const parts = rel.split('/');
  let dir = root;
  for (let i = 0; i < parts.length - 1; i++) {
    const next = path.join(dir, parts[i]!);
    let st = lstatOrNull(next);
    if (!st) {
      if (!create) return null;
      try {
        fs.mkdirSync(next, { mode: 0o755 });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      st = lstatOrNull(next);
    }
    const where = parts.slice(0, i + 1).join('/');
    // SECURITY: a link on the way could lead out of the folder; it is never written through.
    if (st?.isSymbolicLink())
      throw new Refused(
        `${where} is a link on this computer; Paddock does not write through links.`,
      );
    if (!st?.isDirectory()) throw new Refused(`${where} is not a folder on this computer.`);
    dir = next;
  }
  return dir;
}

/** The first folder on the way to `rel` that does not exist yet (what creating it would make). */
export function firstMissingParent(root: string, rel: string): string | null {
  const parts = rel.split('/');
  let dir = root;
  for (let i = 0; i < parts.length - 1; i++) {
    dir = path.join(dir, parts[i]!);
    if (!lstatOrNull(dir)) return parts.slice(0, i + 1).join('/');
  }
  return null;
}

/** Opens a regular file for reading without following a link, checked to be what lstat saw. */
function openFile(abs: string, st: fs.Stats): number {
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  const fst = fs.fstatSync(fd);
  if (!fst.isFile() || fst.ino !== st.ino || fst.dev !== st.dev) {
    fs.closeSync(fd);
    throw new Refused(`${path.basename(abs)} changed while Paddock read it.`);
  }
  return fd;
}

/** Reads an open file to its end in chunks, giving each chunk to `each`. Returns its size. */
export function pump(fd: number, each: (chunk: Buffer) => void): number {
  const buf = Buffer.allocUnsafe(CHUNK);
  let size = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, CHUNK, null);
    if (n === 0) return size;
    size += n;
    each(buf.subarray(0, n));
  }
}

function hashFd(fd: number): string {
  const h = createHash('sha256');
  pump(fd, (c) => h.update(c));
  return h.digest('hex');
}

/**
 * What the folder has at `rel` now. `hash: false` leaves a file's sha256 empty (a quick look).
 * A path under a link or a file is `blocked`; a missing folder on the way makes it `absent`.
 */
export function hostState(root: string, rel: string, hash = true): HostState {
  let dir: string | null;
  try {
    dir = parentDir(root, rel, false);
  } catch (e) {
    if (e instanceof Refused) return { type: 'blocked', reason: e.message };
    throw e;
  }
  if (dir === null) return { type: 'absent' };
  const abs = path.join(dir, path.posix.basename(rel));
  const st = lstatOrNull(abs);
  if (!st) return { type: 'absent' };
  if (st.isSymbolicLink()) {
    const target = fs.readlinkSync(abs, 'utf8');
    return {
      type: 'symlink',
      size: Buffer.byteLength(target),
      mode: 0o777,
      mtimeMs: st.mtimeMs,
      sha256: linkHash(target),
      target,
    };
  }
  if (st.isDirectory()) return { type: 'dir', empty: fs.readdirSync(abs).length === 0 };
  if (!st.isFile()) return { type: 'other' };
  let sha256 = '';
  if (hash) {
    const fd = openFile(abs, st);
    try {
      sha256 = hashFd(fd);
    } finally {
      fs.closeSync(fd);
    }
  }
  return { type: 'file', size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, sha256 };
}

/**
 * Opens the regular file at `rel` for reading (never through a link), or null when it is not a
 * regular file reachable without following one. The caller closes it.
 */
export function openHostFile(root: string, rel: string): { fd: number; stat: fs.Stats } | null {
  let dir: string | null;
  try {
    dir = parentDir(root, rel, false);
  } catch (e) {
    if (e instanceof Refused) return null;
    throw e;
  }
  if (dir === null) return null;
  const abs = path.join(dir, path.posix.basename(rel));
  const st = lstatOrNull(abs);
  if (!st?.isFile()) return null;
  const fd = openFile(abs, st);
  return { fd, stat: st };
}

/** Up to `max` bytes from the start of the regular file at `rel`, or null. */
export function readHostHead(root: string, rel: string, max: number): Buffer | null {
  const f = openHostFile(root, rel);
  if (!f) return null;
  try {
    const buf = Buffer.allocUnsafe(Math.min(max, f.stat.size));
    let got = 0;
    while (got < buf.length) {
      const n = fs.readSync(f.fd, buf, got, buf.length - got, null);
      if (n === 0) break;
      got += n;
    }
    return buf.subarray(0, got);
  } finally {
    fs.closeSync(f.fd);
  }
}

/** Makes a folder's entries durable (a rename or unlink in it); a no-op where folders cannot be opened. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return; // Windows: a folder cannot be opened; NTFS journals the rename itself.
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on a folder (EINVAL); the rename is then as durable as it gets.
  } finally {
    fs.closeSync(fd);
  }
}

/** The temp name a write of one change uses, next to its target (found again after a crash). */
export function tempName(batch: string): string {
  return `.paddock-${batch}.tmp`;
}

/**
 * Makes way for a new entry at `abs`: an empty folder there is removed (a file replaces it), a
 * folder with files in it is refused.
 */
function clearDirAt(abs: string, rel: string): void {
  const st = lstatOrNull(abs);
  if (!st?.isDirectory()) return;
  if (fs.readdirSync(abs).length > 0)
    throw new Refused(`${rel} is a folder with files in it on this computer.`);
  fs.rmdirSync(abs);
}

/**
 * Writes a new file at `dir/name` atomically: its content into a new temp file in the same folder
 * (O_EXCL, the given mode), fsync, then rename over the target. `fill` writes the content to the
 * open file and throws to abandon it (the temp file is then removed).
 */
export function writeFileAtomic(
  dir: string,
  name: string,
  tmp: string,
  mode: number,
  fill: (fd: number) => void,
  rel: string,
): void {
  const tmpAbs = path.join(dir, tmp);
  const target = path.join(dir, name);
  // SECURITY: O_EXCL|O_NOFOLLOW: a new file of our own, never something planted at the temp name.
  const fd = fs.openSync(
    tmpAbs,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | O_NOFOLLOW,
    0o600,
  );
  try {
    fill(fd);
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmpAbs, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    clearDirAt(target, rel);
    // SECURITY: rename replaces whatever is at the target (a link included) without following it.
    fs.renameSync(tmpAbs, target);
  } catch (e) {
    fs.rmSync(tmpAbs, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** Creates a symbolic link at `dir/name` atomically (made at the temp name, renamed over). */
export function symlinkAtomic(
  dir: string,
  name: string,
  tmp: string,
  target: string,
  rel: string,
): void {
  const tmpAbs = path.join(dir, tmp);
  fs.symlinkSync(target, tmpAbs);
  try {
    clearDirAt(path.join(dir, name), rel);
    fs.renameSync(tmpAbs, path.join(dir, name));
  } catch (e) {
    fs.rmSync(tmpAbs, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** Removes the file or link at `dir/name` (never a folder); false when nothing was there. */
export function removeEntry(dir: string, name: string, rel: string): boolean {
  const abs = path.join(dir, name);
  const st = lstatOrNull(abs);
  if (!st) return false;
  if (st.isDirectory()) throw new Refused(`${rel} is a folder on this computer.`);
  fs.unlinkSync(abs);
  fsyncDir(dir);
  return true;
}

/** Sets a regular file's permission bits without following a link. */
export function chmodNoFollow(dir: string, name: string, mode: number, rel: string): void {
  const abs = path.join(dir, name);
  const st = lstatOrNull(abs);
  if (!st?.isFile()) throw new Refused(`${rel} is no longer a plain file on this computer.`);
  const fd = openFile(abs, st);
  try {
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Removes the folders from `rel`'s own folder up to `top` (a folder on its way, inclusive) that
 * are now empty: what deleting the last file of a folder the session removed leaves behind.
 */
export function removeEmptyDirs(root: string, rel: string, top: string): void {
  if (!(rel === top || rel.startsWith(top + '/'))) return;
  let cur = path.posix.dirname(rel);
  for (;;) {
    if (!(cur === top || cur.startsWith(top + '/'))) return;
    let dir: string | null;
    try {
      dir = parentDir(root, cur, false);
    } catch {
      return;
    }
    if (dir === null) return;
    const abs = path.join(dir, path.posix.basename(cur));
    const st = lstatOrNull(abs);
    if (!st?.isDirectory() || fs.readdirSync(abs).length > 0) return;
    fs.rmdirSync(abs);
    fsyncDir(dir);
    if (cur === top) return;
    cur = path.posix.dirname(cur);
  }
}

/**
 * Whether a link at `rel` pointing at `target` stays inside the folder, resolved lexically against
 * the link's own folder. Absolute targets never do (in the VM they name the VM's files).
 */
export function linkStaysInside(rel: string, target: string): boolean {
  if (target === '' || target.includes('\0') || target.includes('\\')) return false;
  if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) return false;
  const joined = path.posix.normalize(path.posix.join(path.posix.dirname(rel), target));
  return !(joined === '..' || joined.startsWith('../') || joined.startsWith('/'));
}

/**
 * Every file and link under the folder `rel` (not followed through links), with the first folder
 * on the way to each below `rel` for which `kept(dir)` is false (null when all are kept).
 * Throws when more than `max` are found.
 */
export function walkHost(
  root: string,
  rel: string,
  max: number,
  kept: (dir: string) => boolean = () => false,
): { path: string; goneDir: string | null }[] {
  const out: { path: string; goneDir: string | null }[] = [];
  let dirAbs: string | null;
  try {
    dirAbs = parentDir(root, rel + '/x', false);
  } catch {
    return out;
  }
  if (dirAbs === null) return out;
  const walk = (abs: string, relDir: string, gone: string | null): void => {
    const st = lstatOrNull(abs);
    if (!st?.isDirectory()) return;
    for (const d of fs.readdirSync(abs, { withFileTypes: true })) {
      const childRel = `${relDir}/${d.name}`;
      if (d.isDirectory()) {
        walk(path.join(abs, d.name), childRel, gone ?? (kept(childRel) ? null : childRel));
      } else if (d.isFile() || d.isSymbolicLink()) {
        if (relPathProblem(childRel) !== null) continue;
        out.push({ path: childRel, goneDir: gone });
        if (out.length > max)
          throw new Refused(`${rel} holds more than ${max} files; too many to review.`);
      }
    }
  };
  walk(dirAbs, rel, null);
  return out;
}
