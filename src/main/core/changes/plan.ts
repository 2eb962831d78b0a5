import type { ChangeKind } from '../../store/changes-repo.js';
import {
  hostState,
  linkHash,
  linkStaysInside,
  Refused,
  relPathProblem,
  walkHost,
  type HostState,
} from './host-fs.js';
import type { ChangeLimits, StagedEntry } from './types.js';

/** One side of a change as staging records it. */
export interface Side {
  type: 'file' | 'symlink';
  size: number;
  mode: number;
  sha256: string;
  link?: string;
  mtimeMs?: number;
}

/** One changed path, before the staged content is copied (and renames are paired). */
export interface PlannedFile {
  path: string;
  fromPath?: string;
  kind: ChangeKind;
  /** The folder's copy at staging time, from the host itself (never the guest's word). */
  before: Side | null;
  /** The session's copy; for a file its sha256 is the guest's claim until the content is read. */
  after: Side | null;
  /** The content must be copied from the VM into the blob store. */
  needsContent: boolean;
  goneDir: string | null;
  binary: boolean;
}

/** A staged path that is not taken, and why. */
export interface Skipped {
  path: string;
  reason: string;
}

function sideOf(h: HostState): Side | null {
  if (h.type === 'file')
    return { type: 'file', size: h.size, mode: h.mode, sha256: h.sha256, mtimeMs: h.mtimeMs };
  if (h.type === 'symlink')
    return {
      type: 'symlink',
      size: h.size,
      mode: h.mode,
      sha256: h.sha256,
      link: h.target,
      mtimeMs: h.mtimeMs,
    };
  return null;
}

/** Printable form of a path the guest sent, for a refusal (bounded, control characters shown). */
function shown(p: unknown): string {
  return [...String(p).slice(0, 200)].map((c) => (c < ' ' ? '?' : c)).join('');
}

/**
 * The changes of one review grant: its upper layer's entries compared with the folder itself.
 * Added, modified (other content or type), mode (permission bits only), deleted (a whiteout, an
 * opaque folder hiding the folder's files, a file or folder put where the other was). Renames are
 * paired later, once the staged content's hashes are checked. Folders are not entries.
 *
 * SECURITY: the entries come from the guest. Each path is checked again; the folder is read
 * without following links; the guest's word on what the folder holds (`lower`) is ignored.
 */
export function planChanges(
  root: string,
  entries: readonly StagedEntry[],
  limits: ChangeLimits,
): { files: PlannedFile[]; skipped: Skipped[] } {
  const skipped: Skipped[] = [];
  if (entries.length > limits.maxEntries)
    throw new Refused(
      `The session changed more than ${limits.maxEntries} paths in this folder; too many to review.`,
    );
  const upper = new Map<string, StagedEntry>();
  for (const e of entries) {
    const problem = relPathProblem(e?.path);
    if (problem !== null) {
      skipped.push({ path: shown(e?.path), reason: `refused: ${problem}` });
      continue;
    }
    if (upper.has(e.path)) {
      skipped.push({ path: e.path, reason: 'refused: listed twice' });
      continue;
    }
    upper.set(e.path, e);
  }
  // Folders of the staged state: listed ones and every parent of an entry.
  const dirs = new Set<string>();
  for (const e of upper.values()) {
    if (e.type === 'dir' || e.type === 'opaque') dirs.add(e.path);
    for (let i = e.path.indexOf('/'); i > 0; i = e.path.indexOf('/', i + 1))
      dirs.add(e.path.slice(0, i));
  }
  const staysFile = (p: string): boolean => {
    const e = upper.get(p);
    return e !== undefined && (e.type === 'file' || e.type === 'symlink');
  };

  const out: PlannedFile[] = [];
  const deleted = new Map<string, string | null>();
  let budget = limits.maxEntries;
  const hide = (rel: string, keepDirs: boolean, goneDir: string | null): void => {
    const found = walkHost(root, rel, budget, keepDirs ? (d) => dirs.has(d) : () => false);
    budget -= found.length;
    for (const f of found) {
      if (staysFile(f.path)) continue;
      deleted.set(f.path, keepDirs ? f.goneDir : goneDir);
    }
  };

  for (const e of upper.values()) {
    switch (e.type) {
      case 'other':
        skipped.push({
          path: e.path,
          reason: 'not a file, folder or link (a device, pipe or socket); it is not applied',
        });
        break;
      case 'dir':
      case 'opaque': {
        const h = hostState(root, e.path, false);
        if (h.type === 'file' || h.type === 'symlink') deleted.set(e.path, null);
        else if (h.type === 'dir' && e.type === 'opaque') hide(e.path, true, null);
        break;
      }
      case 'whiteout': {
        const h = hostState(root, e.path, false);
        if (h.type === 'file' || h.type === 'symlink') deleted.set(e.path, null);
        else if (h.type === 'dir') hide(e.path, false, e.path);
        break;
      }
      case 'file':
      case 'symlink': {
        let after: Side;
        if (e.type === 'symlink') {
          if (typeof e.target !== 'string' || e.target.length === 0 || e.target.includes('\0')) {
            skipped.push({ path: e.path, reason: 'refused: a link without a usable target' });
            break;
          }
          after = {
            type: 'symlink',
            size: Buffer.byteLength(e.target),
            mode: 0o777,
            sha256: linkHash(e.target),
            link: e.target,
          };
        } else {
          after = {
            type: 'file',
            size: Number.isSafeInteger(e.size) && e.size >= 0 ? e.size : 0,
            // SECURITY: set-user-ID, set-group-ID and sticky bits never come from the VM.
            mode: (Number.isInteger(e.mode) ? e.mode : 0o644) & 0o777,
            sha256: typeof e.sha256 === 'string' ? e.sha256 : '',
          };
        }
        const h = hostState(root, e.path, true);
        if (h.type === 'other') {
          skipped.push({
            path: e.path,
            reason: 'the folder has a device, pipe or socket there; it is not replaced',
          });
          break;
        }
        if (h.type === 'dir') hide(e.path, false, e.path);
        const before = sideOf(h);
        let kind: ChangeKind;
        if (!before) kind = 'added';
        else if (before.type === after.type && before.sha256 === after.sha256) {
          if (after.type === 'symlink' || (before.mode & 0o777) === after.mode) break; // unchanged
          kind = 'mode';
        } else kind = 'modified';
        out.push({
          path: e.path,
          kind,
          before,
          after,
          needsContent: after.type === 'file' && kind !== 'mode',
          goneDir: null,
          binary: false,
        });
        break;
      }
    }
  }

  for (const [p, goneDir] of deleted) {
    if (staysFile(p)) continue;
    const before = sideOf(hostState(root, p, true));
    if (!before) continue;
    out.push({
      path: p,
      kind: 'deleted',
      before,
      after: null,
      needsContent: false,
      goneDir,
      binary: false,
    });
  }
  return { files: out, skipped };
}

/**
 * Pairs deleted files with added ones of the same content into renames (same name first). Empty
 * files are never paired: their hashes say nothing about where one went.
 */
export function pairRenames(files: PlannedFile[]): PlannedFile[] {
  const added = new Map<string, PlannedFile[]>();
  for (const f of files)
    if (f.kind === 'added' && f.after?.type === 'file' && f.after.size > 0) {
      const list = added.get(f.after.sha256) ?? [];
      list.push(f);
      added.set(f.after.sha256, list);
    }
  const gone = new Set<PlannedFile>();
  const out: PlannedFile[] = [];
  for (const d of files) {
    if (d.kind !== 'deleted' || d.before?.type !== 'file') continue;
    const list = added.get(d.before.sha256);
    if (!list?.length) continue;
    const base = d.path.slice(d.path.lastIndexOf('/') + 1);
    let i = list.findIndex((a) => a.path.slice(a.path.lastIndexOf('/') + 1) === base);
    if (i < 0) i = 0;
    const a = list.splice(i, 1)[0]!;
    gone.add(a).add(d);
    out.push({
      path: a.path,
      fromPath: d.path,
      kind: 'renamed',
      before: d.before,
      after: a.after,
      needsContent: a.needsContent,
      goneDir: d.goneDir,
      binary: a.binary,
    });
  }
  return [...files.filter((f) => !gone.has(f)), ...out];
}

/** Whether a staged link may be created: its target resolved lexically stays in the folder. */
export function linkAllowed(f: { path: string; after: Side | null }): boolean {
  return f.after?.type !== 'symlink' || linkStaysInside(f.path, f.after.link ?? '');
}

/**
 * Not text, by content: a NUL byte in the first 8 KiB, or bytes that are not UTF-8. `whole`:
 * `head` is the whole file; otherwise it may be cut mid-character, which is not held against it.
 */
export function isBinary(head: Buffer, whole: boolean): boolean {
  if (head.subarray(0, 8192).includes(0)) return true;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: !whole });
    return false;
  } catch {
    return true;
  }
}
