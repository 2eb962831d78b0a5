import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type {
  ChangeFile,
  ChangeOutcome,
  Changeset,
  ChangesetSummary,
  ChangeStatus,
  FileSide,
} from '../../../shared/changes-contract.js';
import { newId } from '../../../shared/ids.js';
import { PaddockError } from '../../../shared/result.js';
import type {
  ChangeFileRow,
  ChangesetRow,
  ChangesetStatus,
  ChangesRepo,
  JournalRow,
} from '../../store/changes-repo.js';
import type { Store } from '../../store/store.js';
import { shareMode, type ShareSpec, type Vm } from '../../vm/backend.js';
import { isProtectedName } from '../../vm/protected-paths.js';
import type { EventBus } from '../events.js';
import { BlobStore } from './blobs.js';
import * as hfs from './host-fs.js';
import {
  isBinary,
  linkAllowed,
  pairRenames,
  planChanges,
  type PlannedFile,
  type Side,
  type Skipped,
} from './plan.js';
import {
  DEFAULT_LIMITS,
  MAX_TEXT_BYTES,
  type ChangeLimits,
  type StagedShare,
  type StagedSource,
} from './types.js';
import { vmStagedSource } from './vm-source.js';

const DAY_MS = 86_400_000;
const BUSY = (p: string) => `${p} is being changed by another Paddock window or command.`;

/** What the service needs; wired once in core.ts. */
export interface ChangeServiceDeps {
  store: Store;
  events: EventBus;
  dataDir: string;
  /** Wall-clock time (tests: a fake clock for the journal's age). */
  now?: () => number;
  limits?: Partial<ChangeLimits>;
  /** The running VM of a task's live session, or null when none runs (for `changes:refresh`). */
  vmFor?: (taskId: string) => Promise<Vm> | null;
  /** Blobs younger than this are never pruned (another process may be staging them). */
  blobGraceMs?: number;
  /** Prune the journal and the blob store a few seconds after start (default: yes). */
  pruneOnStart?: boolean;
  /**
   * Tests only: called after a file's journal is written (`journal`) and after its write
   * (`written`), before its row says so: where a crash test stops the process.
   */
  step?: (path: string, at: 'journal' | 'written') => void;
}

/** A review grant to stage, as the session row has it. */
export type StageShare = Pick<ShareSpec, 'name' | 'hostPath' | 'allowProtectedWrites'>;

/** What staging did: the changesets made or refreshed, and staged paths not taken. */
export interface StageResult {
  changesets: ChangesetSummary[];
  skipped: (Skipped & { name: string })[];
}

type Refusal = ChangeOutcome['refused'][number];

/** One side of a journal row or a file: a file, a link, or nothing there. */
type JSide =
  | { type: 'absent' }
  | { type: 'file'; size: number; mode: number; sha256: string }
  | { type: 'symlink'; size: number; mode: number; sha256: string; link: string };

/** The columns of both sides, as a file row and a journal row have them. */
interface SideFields {
  beforeType: string | null;
  beforeSize: number | null;
  beforeMode: number | null;
  beforeSha256: string | null;
  beforeLink: string | null;
  afterType: string | null;
  afterSize: number | null;
  afterMode: number | null;
  afterSha256: string | null;
  afterLink: string | null;
}

/** A row's state before or after its write. */
function beforeSide(r: SideFields): JSide {
  return jside(r.beforeType, r.beforeSize, r.beforeMode, r.beforeSha256, r.beforeLink);
}
function afterSide(r: SideFields): JSide {
  return jside(r.afterType, r.afterSize, r.afterMode, r.afterSha256, r.afterLink);
}
function jside(
  type: string | null,
  size: number | null,
  mode: number | null,
  sha256: string | null,
  link: string | null,
): JSide {
  if (type === 'file') return { type, size: size ?? 0, mode: mode ?? 0o644, sha256: sha256 ?? '' };
  if (type === 'symlink')
    return { type, size: size ?? 0, mode: mode ?? 0o777, sha256: sha256 ?? '', link: link ?? '' };
  return { type: 'absent' };
}
function sideColumns(prefix: 'before' | 'after', s: JSide | Side | null): Record<string, unknown> {
  const t = s && s.type !== 'absent' ? s : null;
  return {
    [`${prefix}Type`]: t?.type ?? null,
    [`${prefix}Size`]: t?.size ?? null,
    [`${prefix}Mode`]: t?.mode ?? null,
    [`${prefix}Sha256`]: t?.sha256 ?? null,
    [`${prefix}Link`]: t && 'link' in t ? (t.link ?? null) : null,
  };
}
function currentColumns(h: hfs.HostState | null): Partial<ChangeFileRow> {
  if (!h)
    return {
      currentType: null,
      currentSize: null,
      currentMode: null,
      currentSha256: null,
      currentLink: null,
    };
  const t = h.type === 'blocked' ? 'other' : h.type;
  return {
    currentType: t,
    currentSize: h.type === 'file' || h.type === 'symlink' ? h.size : null,
    currentMode: h.type === 'file' || h.type === 'symlink' ? h.mode : null,
    currentSha256: h.type === 'file' || h.type === 'symlink' ? h.sha256 : null,
    currentLink: h.type === 'symlink' ? h.target : null,
  };
}

/** Whether the folder holds exactly `s` (content by hash, permission bits, link target). */
function holds(h: hfs.HostState, s: JSide): boolean {
  if (s.type === 'absent') return h.type === 'absent';
  if (s.type === 'symlink') return h.type === 'symlink' && h.target === s.link;
  return h.type === 'file' && h.size === s.size && h.mode === s.mode && h.sha256 === s.sha256;
}

/**
 * Whether the folder still looks as staging recorded it, by what lstat tells (the content's hash
 * is checked while it is copied into the journal). Nothing there: nothing, or an empty folder.
 */
function looksLike(h: hfs.HostState, f: ChangeFileRow | null): boolean {
  if (!f?.beforeType) return h.type === 'absent' || (h.type === 'dir' && h.empty);
  if (f.beforeType === 'symlink') return h.type === 'symlink' && h.target === f.beforeLink;
  return (
    h.type === 'file' &&
    h.size === f.beforeSize &&
    h.mode === f.beforeMode &&
    (f.beforeMtimeMs === null || h.mtimeMs === f.beforeMtimeMs)
  );
}

/** Whether a path is, or lies in, one that host tools run by themselves (protected-paths.ts). */
function isProtectedPath(rel: string): boolean {
  return rel.split('/').some(isProtectedName);
}

function alive(pid: number | null): boolean {
  if (!pid || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The status the contract shows: a write under way shows as where it started. */
function shownStatus(s: ChangeFileRow['status']): ChangeStatus {
  return s === 'applying' ? 'pending' : s === 'undoing' ? 'applied' : s;
}

/** A changeset's status from its files'. */
function overall(statuses: ChangeStatus[]): ChangesetStatus {
  const live = statuses.filter((s) => s !== 'discarded');
  if (live.length === 0) return 'discarded';
  const waiting = live.some((s) => s === 'pending' || s === 'conflict');
  if (waiting)
    return live.length < statuses.length || live.some((s) => s === 'applied' || s === 'undone')
      ? 'partial'
      : 'pending';
  if (live.every((s) => s === 'applied')) return 'applied';
  if (live.every((s) => s === 'undone')) return 'undone';
  return 'partial';
}

/** Order of applying: deletions (deepest first), then permission changes, then writes. */
function applyOrder(a: ChangeFileRow, b: ChangeFileRow): number {
  const rank = (f: ChangeFileRow) => (f.kind === 'deleted' ? 0 : f.kind === 'mode' ? 1 : 2);
  const d = rank(a) - rank(b);
  if (d !== 0) return d;
  if (a.kind === 'deleted') {
    const depth = b.path.split('/').length - a.path.split('/').length;
    if (depth !== 0) return depth;
  }
  return a.path < b.path ? -1 : a.path > b.path ? 1 : 0;
}

/** A size as people read it: `512 MiB`, `2.9 KiB`. */
function bytes(n: number): string {
  const [v, unit] =
    n >= 1024 ** 3
      ? [n / 1024 ** 3, 'GiB']
      : n >= 1024 ** 2
        ? [n / 1024 ** 2, 'MiB']
        : n >= 1024
          ? [n / 1024, 'KiB']
          : [n, 'bytes'];
  return `${Math.round(v * 10) / 10} ${unit}`;
}

function errorText(e: unknown): string {
  if (e instanceof hfs.Refused || e instanceof PaddockError) return e.message;
  const err = e as NodeJS.ErrnoException;
  return err.code ? `${err.code}: ${err.message}` : String(err.message ?? e);
}

/** The review grants of a session (its stored folders), which are the ones with changes to stage. */
export function reviewShares(folders: unknown[]): StageShare[] {
  return (folders as ShareSpec[]).filter((s) => shareMode(s) === 'rv');
}

/**
 * Staged folder edits: reads what a session staged in its review grants into changesets (the
 * staged content copied into the blob store), and applies, discards and undoes them in the
 * person's folder with a journal written before every write. Actions run one at a time.
 *
 * Crash safety: a file goes `pending → applying → applied` (or `applied → undoing → undone`)
 * around its rename, with the journal (content and row) durable before the write. A file left
 * `applying`/`undoing` by a process that died is settled from what the folder holds: the new
 * state means done, the old one means not done.
 */
export class ChangeService {
  private readonly repo: ChangesRepo;
  readonly blobs: BlobStore;
  private readonly limits: ChangeLimits;
  private readonly now: () => number;
  private queue: Promise<unknown> = Promise.resolve();
  private pruneTimer: NodeJS.Timeout | null = null;
  private disposed = false;

  /** The staging area (VM) that last staged each changeset in this process. */
  private readonly stagedBy = new Map<string, { identity: string; paths: Set<string> }>();

  constructor(private readonly d: ChangeServiceDeps) {
    this.repo = d.store.changes;
    this.blobs = new BlobStore(d.dataDir);
    this.limits = { ...DEFAULT_LIMITS, ...d.limits };
    this.now = d.now ?? Date.now;
    this.settleAll();
    // Soon after start, then daily for an app left running for weeks.
    if (d.pruneOnStart !== false) this.schedulePrune(5000);
  }

  private schedulePrune(ms: number): void {
    this.pruneTimer = setTimeout(() => {
      this.pruneTimer = null;
      void this.serial(() => this.prune())
        .catch((e: unknown) => {
          if (!this.disposed) console.error('[paddock] pruning staged changes failed:', e);
        })
        .finally(() => {
          if (!this.disposed) this.schedulePrune(DAY_MS);
        });
    }, ms);
    this.pruneTimer.unref();
  }

  /** Runs actions one at a time, so two never write the same folder together. */
  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(() => {
      if (this.disposed) throw new PaddockError('CLOSING', 'Paddock is shutting down.');
      return fn();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  // ── Reading ──────────────────────────────────────────────────────────────────────────────

  /** A task's changesets, or every one still waiting for the person. */
  list(taskId?: string): ChangesetSummary[] {
    if (taskId !== undefined) {
      if (!this.d.store.sessions.get(taskId))
        throw new PaddockError('NOT_FOUND', `There is no task ${taskId}.`);
      return this.repo.list({ sessionId: taskId }).map((c) => this.summary(c));
    }
    return this.repo.list({ waiting: true }).map((c) => this.summary(c));
  }

  get(id: string): Changeset {
    const cs = this.changeset(id);
    return { ...this.summary(cs), files: this.repo.files(cs.id).map((f) => this.toFile(f)) };
  }

  private changeset(id: string): ChangesetRow {
    const cs = this.repo.get(id);
    if (!cs) throw new PaddockError('NOT_FOUND', `There is no changeset ${id}.`);
    return cs;
  }

  private summary(cs: ChangesetRow): ChangesetSummary {
    return {
      id: cs.id,
      taskId: cs.sessionId,
      hostPath: cs.hostPath,
      name: cs.name,
      status: cs.status,
      counts: this.repo.counts(cs.id),
      createdAt: cs.createdAt,
      updatedAt: cs.updatedAt,
    };
  }

  private toFile(f: ChangeFileRow): ChangeFile {
    const side = (s: JSide): FileSide | undefined =>
      s.type === 'absent'
        ? undefined
        : {
            size: s.size,
            mode: s.mode,
            sha256: s.sha256,
            ...(s.type === 'symlink' ? { linkTarget: s.link } : {}),
          };
    const before = side(beforeSide(f));
    const after = side(afterSide(f));
    const current =
      f.currentType === 'file' || f.currentType === 'symlink'
        ? side(jside(f.currentType, f.currentSize, f.currentMode, f.currentSha256, f.currentLink))
        : undefined;
    return {
      path: f.path,
      ...(f.fromPath ? { fromPath: f.fromPath } : {}),
      kind: f.kind,
      status: shownStatus(f.status),
      ...(before ? { before } : {}),
      ...(after ? { after } : {}),
      binary: f.binary,
      ...(current ? { current } : {}),
      appliedAt: f.appliedAt,
      ...(f.note ? { note: f.note } : {}),
    };
  }

  /** Both sides of one file as text for the diff (text files up to 1 MiB), or a note why not. */
  file(id: string, rel: string): { before: string | null; after: string | null; note?: string } {
    const cs = this.changeset(id);
    const f = this.fileOf(cs, rel);
    const none = (note: string) => ({ before: null, after: null, note });
    if (f.beforeType === 'symlink' || f.afterType === 'symlink') {
      const was = f.beforeType === 'symlink' ? `a link to ${f.beforeLink}` : null;
      const is = f.afterType === 'symlink' ? `a link to ${f.afterLink}` : null;
      return none(
        `Links are not shown as text: ${[was && `was ${was}`, is && `is ${is}`].filter(Boolean).join('; ')}.`,
      );
    }
    if (f.binary) return none('A binary file: compare the two sides by size and hash.');
    if ((f.beforeSize ?? 0) > MAX_TEXT_BYTES || (f.afterSize ?? 0) > MAX_TEXT_BYTES)
      return none('Too large to show as text (over 1 MiB).');
    const notes: string[] = [];
    const text = (b: Buffer) => new TextDecoder().decode(b);
    const fromBlob = (sha: string | null, gone: string): string | null => {
      if (!sha) return null;
      try {
        return text(this.blobs.read(sha));
      } catch {
        notes.push(gone);
        return null;
      }
    };
    const fromFolder = (p: string, sha: string | null): string | null => {
      const buf = hfs.readHostHead(cs.hostPath, p, MAX_TEXT_BYTES + 1);
      if (!buf) {
        notes.push(`${p} is no longer in the folder.`);
        return null;
      }
      if (buf.length > MAX_TEXT_BYTES) {
        notes.push('Your copy is now too large to show as text.');
        return null;
      }
      if (sha && createHash('sha256').update(buf).digest('hex') !== sha)
        notes.push('Your copy changed since this was staged; it is shown as it is now.');
      return text(buf);
    };
    let before: string | null = null;
    let after: string | null = null;
    const journalled = f.batch
      ? this.repo.journal(f.batch).find((r) => r.path === (f.fromPath ?? f.path))
      : undefined;
    const gone = `This copy is no longer kept (the journal keeps ${this.days()} days).`;
    if (f.kind === 'mode') {
      // Same content on both sides.
      before = after = fromFolder(f.path, f.beforeSha256);
    } else {
      if (f.beforeType)
        before =
          journalled?.beforeType === 'file'
            ? fromBlob(journalled.beforeSha256, gone)
            : fromFolder(f.fromPath ?? f.path, f.beforeSha256);
      if (f.afterType) after = fromBlob(f.afterSha256, gone);
    }
    return { before, after, ...(notes.length ? { note: [...new Set(notes)].join(' ') } : {}) };
  }

  private fileOf(cs: ChangesetRow, rel: string): ChangeFileRow {
    const f = this.repo.file(cs.id, rel) ?? this.repo.files(cs.id).find((x) => x.fromPath === rel);
    if (!f) throw new PaddockError('NOT_FOUND', `Changeset ${cs.id} has no file ${rel}.`);
    return f;
  }

  private days(): number {
    return this.d.store.settings.get().journalDays;
  }

  // ── Staging ──────────────────────────────────────────────────────────────────────────────

  /**
   * Reads what a task's session staged in its review grants (all of them unless `shares`) from
   * `source` into one changeset per grant. Pending files are replaced by what is staged now;
   * applied, discarded and undone ones keep their status unless the session changed them again.
   * Call it when a task's run ends and on `changes:refresh`.
   */
  stage(taskId: string, source: StagedSource, shares?: StageShare[]): Promise<StageResult> {
    return this.serial(async () => {
      const session = this.d.store.sessions.get(taskId);
      if (!session) throw new PaddockError('NOT_FOUND', `There is no task ${taskId}.`);
      const wanted = shares ?? reviewShares(session.folders);
      const result: StageResult = { changesets: [], skipped: [] };
      if (wanted.length === 0) return result;
      const listing = await source.list();
      const identity = (await source.identity?.()) ?? null;
      const errors: string[] = [];
      for (const share of wanted) {
        const ls = listing.shares.find((s) => s.name === share.name);
        if (!ls) continue;
        try {
          const r = await this.stageShare(taskId, share, ls, source, identity);
          if (!r) continue;
          const { skipped, ...summary } = r;
          result.changesets.push(summary);
          result.skipped.push(...skipped.map((s) => ({ ...s, name: share.name })));
        } catch (e) {
          if (!(e instanceof hfs.Refused || e instanceof PaddockError)) throw e;
          errors.push(e.message);
        }
      }
      if (result.skipped.length) {
        // What the person will not find in the review, said where they follow the task.
        const shown = result.skipped.slice(0, 5).map((s) => `${s.name}/${s.path} (${s.reason})`);
        const more = result.skipped.length - shown.length;
        this.d.events.emit('task:event', {
          taskId,
          event: {
            type: 'notice',
            message: `Some of the session's changes cannot be reviewed: ${shown.join('; ')}${more > 0 ? ` and ${more} more` : ''}.`,
          },
        });
      }
      if (errors.length) throw new PaddockError('STAGE_FAILED', errors.join(' '));
      return result;
    });
  }

  private async stageShare(
    taskId: string,
    share: StageShare,
    ls: StagedShare,
    source: StagedSource,
    identity: string | null,
  ): Promise<(ChangesetSummary & { skipped: Skipped[] }) | null> {
    const root = share.hostPath;
    // SECURITY: a partial listing would read as deletions of whatever it left out.
    if (ls.truncated)
      throw new hfs.Refused(
        `The session changed too many paths in ${share.name} to list them all; nothing from it was staged. Ask the agent to undo some of its changes there.`,
      );
    hfs.checkRoot(root);
    const existing = this.repo.forShare(taskId, share.name);
    if (existing) this.settle(existing);
    const { files, skipped } = planChanges(root, ls.entries, this.limits);
    const maxFile = Math.min(this.limits.maxFileBytes, source.maxReadBytes ?? Infinity);
    const tooBig = (p: string, size: number) =>
      new hfs.Refused(
        `${share.name}/${p} is ${bytes(size)}; Paddock stages files up to ${bytes(maxFile)}, so nothing from ${share.name} was staged. Ask the agent to remove it or move it out of the folder.`,
      );
    const tooMuch = () =>
      new hfs.Refused(
        `The session's changes in ${share.name} hold more than ${bytes(this.limits.maxChangesetBytes)}; too much to stage for review.`,
      );
    // Bounded by the guest's own word first, then by what it actually sends.
    let claimed = 0;
    for (const f of files)
      if (f.needsContent && f.after) {
        if (f.after.size > maxFile) throw tooBig(f.path, f.after.size);
        claimed += f.after.size;
      }
    if (claimed > this.limits.maxChangesetBytes) throw tooMuch();
    let total = 0;
    const kept: PlannedFile[] = [];
    for (const f of files) {
      if (f.needsContent && f.after) {
        let sha = f.after.sha256;
        let size: number;
        let head: Buffer;
        if (/^[0-9a-f]{64}$/.test(sha) && this.blobs.has(sha)) {
          // Already stored (an earlier staging): the same content, checked when it was stored.
          size = fs.statSync(this.blobs.pathOf(sha)).size;
          head = this.blobs.head(sha, MAX_TEXT_BYTES);
        } else {
          const data = await source.read(share.name, f.path, maxFile, sha || undefined);
          if (data.length > maxFile) throw tooBig(f.path, data.length);
          sha = this.blobs.put(data);
          size = data.length;
          head = data.subarray(0, MAX_TEXT_BYTES);
        }
        total += size;
        if (total > this.limits.maxChangesetBytes) throw tooMuch();
        f.after = { ...f.after, sha256: sha, size };
        f.binary = isBinary(head, size <= MAX_TEXT_BYTES);
        if (f.before?.type === 'file' && f.before.sha256 === sha) {
          // The content is the folder's after all: at most the permission bits changed.
          if ((f.before.mode & 0o777) === f.after.mode) continue;
          f.kind = 'mode';
        }
      } else if (f.before?.type === 'file') {
        const head = hfs.readHostHead(root, f.path, MAX_TEXT_BYTES);
        f.binary = head ? isBinary(head, f.before.size <= MAX_TEXT_BYTES) : false;
      }
      kept.push(f);
    }
    const planned = pairRenames(kept);
    const at = this.now();
    const cs = this.repo.tx(() => {
      let cs = this.repo.forShare(taskId, share.name);
      if (!cs) {
        if (planned.length === 0) return null;
        cs = this.repo.create({
          sessionId: taskId,
          hostPath: root,
          name: share.name,
          allowProtected: share.allowProtectedWrites === true,
          at,
        });
      }
      const old = new Map(this.repo.files(cs.id).map((f) => [f.path, f]));
      const paths = new Set(planned.map((p) => p.path));
      for (const p of planned) {
        const ex = old.get(p.path);
        if (ex && (ex.status === 'applying' || ex.status === 'undoing')) continue;
        if (
          ex &&
          (ex.status === 'applied' || ex.status === 'discarded' || ex.status === 'undone') &&
          ex.kind === p.kind &&
          (ex.fromPath ?? undefined) === p.fromPath &&
          ex.afterType === (p.after?.type ?? null) &&
          ex.afterSha256 === (p.after?.sha256 ?? null) &&
          ex.afterMode === (p.after?.mode ?? null)
        )
          continue; // the same change as before: it keeps its status
        this.repo.putFile({
          changesetId: cs.id,
          path: p.path,
          fromPath: p.fromPath ?? null,
          kind: p.kind,
          status: 'pending',
          ...(sideColumns('before', p.before) as Partial<ChangeFileRow>),
          beforeMtimeMs: p.before?.mtimeMs ?? null,
          ...(sideColumns('after', p.after) as Partial<ChangeFileRow>),
          ...currentColumns(null),
          binary: p.binary,
          goneDir: p.goneDir,
          batch: null,
          ownerPid: null,
          note: null,
          appliedAt: null,
          updatedAt: at,
        } as ChangeFileRow);
      }
      // A pending change no longer listed was undone by the agent, but only if this same
      // staging area listed it before: a new VM (after an idle stop or a restart) starts from
      // the folder, and what an earlier one staged stays pending until the person decides.
      const prev = this.stagedBy.get(cs.id);
      const listedBefore = identity !== null && prev?.identity === identity ? prev.paths : null;
      for (const ex of old.values())
        if (
          !paths.has(ex.path) &&
          (ex.status === 'pending' || ex.status === 'conflict') &&
          (identity === null || listedBefore?.has(ex.path))
        )
          this.repo.deleteFile(cs.id, ex.path);
      if (identity !== null) this.stagedBy.set(cs.id, { identity, paths: new Set(paths) });
      this.restatus(cs.id);
      return this.repo.get(cs.id)!;
    });
    if (!cs) return null;
    this.emit(cs.id);
    return { ...this.summary(cs), skipped };
  }

  /**
   * `changes:refresh`: stages again from the task's running VM. A task whose VM is not running
   * has nothing newer than what was staged when its run ended.
   */
  async refresh(taskId: string): Promise<ChangesetSummary[]> {
    if (!this.d.store.sessions.get(taskId))
      throw new PaddockError('NOT_FOUND', `There is no task ${taskId}.`);
    await this.stageFromVm(taskId, this.d.vmFor?.(taskId) ?? null);
    return this.list(taskId);
  }

  /**
   * Stages a session's review folders from its VM (the one way a live VM is read: task ends,
   * refresh, `paddock run`). Null when it has no review folder or no VM booted (nothing written).
   */
  async stageFromVm(taskId: string, vm: Promise<Vm> | null): Promise<StageResult | null> {
    const shares = reviewShares(this.d.store.sessions.get(taskId)?.folders ?? []);
    if (shares.length === 0 || !vm) return null;
    return this.stage(
      taskId,
      vmStagedSource(
        () => vm,
        shares.map((s) => s.name),
      ),
      shares,
    );
  }

  // ── Applying, discarding, undoing ────────────────────────────────────────────────────────

  /** Writes pending files (all, or `paths`) into the folder; a file changed there since is a conflict. */
  apply(id: string, paths?: string[]): Promise<ChangeOutcome> {
    return this.act(id, paths, 'apply', (cs, f, refused) => this.applyFile(cs, f, refused));
  }

  /** Puts applied files (all, or `paths`) back as they were, from the journal. */
  undo(id: string, paths?: string[]): Promise<ChangeOutcome> {
    return this.act(id, paths, 'undo', (cs, f, refused) => this.undoFile(cs, f, refused));
  }

  /** Drops pending and conflicting files (all, or `paths`): the folder keeps its copy. */
  discard(id: string, paths?: string[]): Promise<ChangeOutcome> {
    return this.act(id, paths, 'discard', (cs, f, refused) => {
      if (f.status !== 'pending' && f.status !== 'conflict')
        return void refused.push({ path: f.path, reason: this.notNow(f, 'discard') });
      this.repo.updateFile(cs.id, f.path, { status: 'discarded', updatedAt: this.now() });
    });
  }

  private act(
    id: string,
    paths: string[] | undefined,
    action: 'apply' | 'undo' | 'discard',
    each: (cs: ChangesetRow, f: ChangeFileRow, refused: Refusal[]) => void,
  ): Promise<ChangeOutcome> {
    return this.serial(async () => {
      const cs = this.changeset(id);
      this.settle(cs);
      let targets: ChangeFileRow[];
      if (paths?.length) {
        targets = [...new Set(paths)].map((p) => this.fileOf(cs, p));
      } else {
        const wanted: ChangeFileRow['status'][] =
          action === 'apply'
            ? ['pending']
            : action === 'undo'
              ? ['applied']
              : ['pending', 'conflict'];
        targets = this.repo.files(cs.id).filter((f) => wanted.includes(f.status));
      }
      targets.sort(applyOrder);
      if (action === 'undo') targets.reverse();
      const refused: Refusal[] = [];
      if (action !== 'discard' && targets.length) {
        try {
          hfs.checkRoot(cs.hostPath);
        } catch (e) {
          throw new PaddockError('FOLDER_GONE', errorText(e));
        }
      }
      for (let i = 0; i < targets.length; i++) {
        each(cs, targets[i]!, refused);
        // Other requests get a turn during a long apply.
        if (i % 64 === 63) await new Promise((r) => setImmediate(r));
      }
      this.restatus(cs.id);
      this.emit(cs.id);
      return { changeset: this.get(cs.id), refused };
    });
  }

  private notNow(f: ChangeFileRow, action: 'apply' | 'undo' | 'discard'): string {
    if (f.status === 'applying' || f.status === 'undoing') return BUSY(f.path);
    const s = shownStatus(f.status);
    if (action === 'undo')
      return s === 'undone'
        ? `${f.path} is already undone.`
        : `${f.path} is not applied, so there is nothing to undo.`;
    if (s === 'applied')
      return `${f.path} is already applied${action === 'discard' ? '; undo it instead' : ''}.`;
    if (s === 'discarded') return `${f.path} was discarded.`;
    if (s === 'undone')
      return `${f.path} was undone; refresh the task's changes to stage it again.`;
    return `${f.path} changed on this computer since it was staged (a conflict); refresh the task's changes to review it again, or discard it.`;
  }

  private applyFile(cs: ChangesetRow, f: ChangeFileRow, refused: Refusal[]): void {
    const root = cs.hostPath;
    const at = this.now();
    if (f.status !== 'pending')
      return void refused.push({ path: f.path, reason: this.notNow(f, 'apply') });
    const refuse = (reason: string): void => {
      refused.push({ path: f.path, reason });
      this.repo.updateFile(cs.id, f.path, { note: reason, updatedAt: at });
    };
    const conflict = (rel: string, h: hfs.HostState): void => {
      const reason =
        h.type === 'absent'
          ? `${rel} was deleted on this computer since the session's version was staged; Paddock kept the folder as it is.`
          : f.kind === 'added' && rel === f.path
            ? `${rel} now exists on this computer (it did not when the session's version was staged); Paddock kept your copy.`
            : `${rel} changed on this computer since the session's version was staged; Paddock kept your copy.`;
      refused.push({ path: f.path, reason });
      this.repo.updateFile(cs.id, f.path, {
        status: 'conflict',
        note: reason,
        ...currentColumns(h.type === 'file' && !h.sha256 ? hfs.hostState(root, rel, true) : h),
        updatedAt: at,
      });
    };
    // SECURITY: files that tools on the host run by themselves are not applied from a VM.
    if (!cs.allowProtected && [f.path, f.fromPath].some((p) => p && isProtectedPath(p)))
      return refuse(
        `${f.path} is a file that tools on this computer run by themselves (git config and hooks, editor tasks, shell start-up files…); Paddock does not apply it. Copy it yourself if you want it.`,
      );
    const after = afterSide(f);
    // SECURITY: a link is created only if it leads somewhere inside the folder.
    if (!linkAllowed({ path: f.path, after: after.type === 'absent' ? null : after }))
      return refuse(
        `${f.path} is a link that points outside the folder (to ${f.afterLink}); Paddock does not create it.`,
      );
    const before = beforeSide(f);
    const atPath = hfs.hostState(root, f.path, false);
    if (atPath.type === 'blocked') return refuse(atPath.reason);
    const addsPath = f.kind === 'added' || f.kind === 'renamed';
    if (addsPath && atPath.type === 'dir' && !atPath.empty)
      return refuse(
        `${f.path} is a folder with files in it on this computer; apply the deletion of its files first.`,
      );
    if (!looksLike(atPath, addsPath ? null : f)) return conflict(f.path, atPath);
    if (f.kind === 'renamed') {
      const from = hfs.hostState(root, f.fromPath!, false);
      if (from.type === 'blocked') return refuse(from.reason);
      if (!looksLike(from, f)) return conflict(f.fromPath!, from);
    }
    // The journal first: the content about to be replaced, copied and checked against the hash
    // staging recorded (a file edited without a change of size or time is caught here).
    const keep = (rel: string): boolean => {
      if (before.type !== 'file') return true;
      const h = hfs.openHostFile(root, rel);
      if (!h) return false;
      try {
        let sha: string;
        if (f.kind === 'mode') {
          const hash = createHash('sha256');
          hfs.pump(h.fd, (c) => hash.update(c));
          sha = hash.digest('hex');
        } else sha = this.blobs.putFd(h.fd).sha256;
        return sha === before.sha256;
      } finally {
        fs.closeSync(h.fd);
      }
    };
    const journalled = f.kind === 'renamed' ? f.fromPath! : f.kind === 'added' ? null : f.path;
    if (journalled && !keep(journalled))
      return conflict(journalled, hfs.hostState(root, journalled, true));
    const batch = newId('apl');
    const rows: Omit<JournalRow, 'id'>[] = [
      {
        changesetId: cs.id,
        filePath: f.path,
        batch,
        path: f.path,
        ...(sideColumns('before', addsPath ? null : before) as object),
        ...(sideColumns('after', after) as object),
        beforeType: addsPath || before.type === 'absent' ? 'absent' : before.type,
        afterType: after.type,
        goneDir: f.kind === 'deleted' ? f.goneDir : null,
        madeDir: after.type === 'absent' ? null : hfs.firstMissingParent(root, f.path),
        appliedAt: at,
        undoneAt: null,
      } as Omit<JournalRow, 'id'>,
    ];
    if (f.kind === 'renamed')
      rows.push({
        changesetId: cs.id,
        filePath: f.path,
        batch,
        path: f.fromPath!,
        ...(sideColumns('before', before) as object),
        ...(sideColumns('after', null) as object),
        beforeType: before.type === 'absent' ? 'absent' : before.type,
        afterType: 'absent',
        goneDir: f.goneDir,
        madeDir: null,
        appliedAt: at,
        undoneAt: null,
      } as Omit<JournalRow, 'id'>);
    // Claimed in one transaction with its journal: another process acting on the same
    // changeset (the app and the CLI) finds it no longer pending.
    const claimed = this.repo.tx(() => {
      if (this.repo.file(cs.id, f.path)?.status !== 'pending') return false;
      this.repo.addJournal(rows);
      this.repo.updateFile(cs.id, f.path, {
        status: 'applying',
        batch,
        ownerPid: process.pid,
        note: null,
        ...currentColumns(null),
        updatedAt: at,
      });
      return true;
    });
    if (!claimed) return void refused.push({ path: f.path, reason: BUSY(f.path) });
    this.d.step?.(f.path, 'journal');
    try {
      for (const r of rows)
        this.put(root, r.path, afterSide(r), batch, {
          removeUpTo: r.goneDir,
          chmodOnly: f.kind === 'mode',
        });
      this.d.step?.(f.path, 'written');
    } catch (e) {
      this.settleFile(cs, { ...f, status: 'applying', batch, ownerPid: process.pid });
      const reason = `${f.path} could not be written: ${errorText(e)}`;
      refused.push({ path: f.path, reason });
      this.repo.updateFile(cs.id, f.path, { note: reason, updatedAt: at });
      return;
    }
    this.repo.updateFile(cs.id, f.path, {
      status: 'applied',
      appliedAt: at,
      ownerPid: null,
      updatedAt: at,
    });
  }

  private undoFile(cs: ChangesetRow, f: ChangeFileRow, refused: Refusal[]): void {
    const root = cs.hostPath;
    const at = this.now();
    if (f.status !== 'applied')
      return void refused.push({ path: f.path, reason: this.notNow(f, 'undo') });
    const refuse = (reason: string, h?: hfs.HostState): void => {
      refused.push({ path: f.path, reason });
      this.repo.updateFile(cs.id, f.path, {
        note: reason,
        ...(h ? currentColumns(h) : {}),
        updatedAt: at,
      });
    };
    const rows = f.batch ? this.repo.journal(f.batch).filter((r) => r.undoneAt === null) : [];
    if (rows.length === 0)
      return refuse(
        `${f.path} was applied more than ${this.days()} days ago; its journal is no longer kept, so it cannot be undone.`,
      );
    for (const r of rows) {
      const h = hfs.hostState(root, r.path, true);
      if (h.type === 'blocked') return refuse(h.reason);
      if (!holds(h, afterSide(r)))
        return refuse(
          `${r.path} changed on this computer since it was applied; Paddock kept your copy and did not undo it.`,
          h,
        );
      if (
        r.beforeType === 'file' &&
        r.afterSha256 !== r.beforeSha256 &&
        !this.blobs.has(r.beforeSha256!)
      )
        return refuse(`The copy of ${r.path} from before it was applied is no longer kept.`);
    }
    const claimed = this.repo.tx(() => {
      if (this.repo.file(cs.id, f.path)?.status !== 'applied') return false;
      this.repo.updateFile(cs.id, f.path, {
        status: 'undoing',
        ownerPid: process.pid,
        updatedAt: at,
      });
      return true;
    });
    if (!claimed) return void refused.push({ path: f.path, reason: BUSY(f.path) });
    try {
      for (const r of [...rows].reverse())
        this.put(root, r.path, beforeSide(r), r.batch, {
          removeUpTo: r.madeDir,
          chmodOnly:
            r.beforeType === 'file' && r.afterType === 'file' && r.beforeSha256 === r.afterSha256,
        });
    } catch (e) {
      this.settleFile(cs, { ...f, status: 'undoing', ownerPid: process.pid });
      const reason = `${f.path} could not be put back: ${errorText(e)}`;
      refused.push({ path: f.path, reason });
      this.repo.updateFile(cs.id, f.path, { note: reason, updatedAt: at });
      return;
    }
    this.repo.tx(() => {
      this.repo.updateFile(cs.id, f.path, {
        status: 'undone',
        ownerPid: null,
        note: null,
        ...currentColumns(null),
        updatedAt: at,
      });
      this.repo.markUndone(f.batch!, at);
    });
  }

  /**
   * Makes the folder hold `s` at `rel`: removed (then the emptied folders up to `removeUpTo`), its
   * permission bits set, or a new file or link renamed over it.
   */
  private put(
    root: string,
    rel: string,
    s: JSide,
    batch: string,
    o: { removeUpTo: string | null; chmodOnly: boolean },
  ): void {
    const name = path.posix.basename(rel);
    if (s.type === 'absent') {
      const dir = hfs.parentDir(root, rel, false);
      if (dir) hfs.removeEntry(dir, name, rel);
      if (o.removeUpTo) hfs.removeEmptyDirs(root, rel, o.removeUpTo);
      return;
    }
    if (o.chmodOnly && s.type === 'file') {
      const dir = hfs.parentDir(root, rel, false);
      if (!dir) throw new hfs.Refused(`${rel} is no longer in the folder.`);
      hfs.chmodNoFollow(dir, name, s.mode, rel);
      return;
    }
    const dir = hfs.parentDir(root, rel, true)!;
    const target = path.join(dir, name);
    // SECURITY: the final path is inside the grant's real path (its parents were checked above).
    const inside = path.relative(root, target);
    if (inside.startsWith('..') || path.isAbsolute(inside))
      throw new hfs.Refused(`${rel} is not inside the folder.`);
    if (s.type === 'symlink') {
      // SECURITY: checked again at the write, whatever path led here (undo restores the person's own).
      hfs.symlinkAtomic(dir, name, hfs.tempName(batch), s.link, rel);
      return;
    }
    hfs.writeFileAtomic(
      dir,
      name,
      hfs.tempName(batch),
      s.mode,
      (fd) => void this.blobs.copyTo(s.sha256, fd),
      rel,
    );
  }

  // ── Crash recovery ───────────────────────────────────────────────────────────────────────

  /** Settles files a dead process left `applying` or `undoing`, in every changeset. */
  private settleAll(): void {
    const touched = new Set<string>();
    for (const f of this.repo.unsettled()) {
      if (alive(f.ownerPid)) continue;
      const cs = this.repo.get(f.changesetId);
      if (!cs) continue;
      this.settleFile(cs, f);
      touched.add(cs.id);
    }
    for (const id of touched) this.restatus(id);
  }

  /** Settles one changeset's files left mid-write by a process that is gone. */
  private settle(cs: ChangesetRow): void {
    let any = false;
    for (const f of this.repo.files(cs.id))
      if ((f.status === 'applying' || f.status === 'undoing') && !alive(f.ownerPid)) {
        this.settleFile(cs, f);
        any = true;
      }
    if (any) this.restatus(cs.id);
  }

  /**
   * Looks at what the folder holds for a file whose write was under way: the journal's after
   * state everywhere means it was done, its before state that it was not; a rename stopped
   * between writing the new path and removing the old is finished. Its temp file is removed.
   */
  private settleFile(cs: ChangesetRow, f: ChangeFileRow): void {
    const root = cs.hostPath;
    const at = this.now();
    try {
      hfs.checkRoot(root);
    } catch {
      return; // the folder is not there to look at; settled when it is
    }
    const rows = f.batch ? this.repo.journal(f.batch) : [];
    for (const r of rows) {
      try {
        const dir = hfs.parentDir(root, r.path, false);
        if (dir) {
          const tmp = path.join(dir, hfs.tempName(r.batch));
          if (fs.lstatSync(tmp, { throwIfNoEntry: false })?.isFile()) fs.unlinkSync(tmp);
        }
      } catch {
        // a folder on the way is a link now: nothing of ours can be there
      }
    }
    const states = rows.map((r) => hfs.hostState(root, r.path, true));
    const afterAll = rows.every((r, i) => holds(states[i]!, afterSide(r)));
    const beforeAll = rows.every((r, i) => holds(states[i]!, beforeSide(r)));
    // A rename writes its new path (row 0), then removes the old one (row 1).
    const renameHalf =
      rows.length === 2 &&
      holds(states[0]!, afterSide(rows[0]!)) &&
      holds(states[1]!, beforeSide(rows[1]!));
    const done = { ownerPid: null, updatedAt: at };
    if (f.status === 'applying') {
      if (rows.length && afterAll) {
        this.repo.updateFile(cs.id, f.path, {
          ...done,
          status: 'applied',
          appliedAt: rows[0]!.appliedAt,
        });
      } else if (!rows.length || beforeAll) {
        this.repo.tx(() => {
          if (f.batch) this.repo.dropJournal(f.batch);
          this.repo.updateFile(cs.id, f.path, { ...done, status: 'pending', batch: null });
        });
      } else if (renameHalf) {
        try {
          this.put(root, rows[1]!.path, { type: 'absent' }, rows[1]!.batch, {
            removeUpTo: rows[1]!.goneDir,
            chmodOnly: false,
          });
          this.repo.updateFile(cs.id, f.path, {
            ...done,
            status: 'applied',
            appliedAt: rows[0]!.appliedAt,
          });
        } catch (e) {
          this.repo.updateFile(cs.id, f.path, {
            ...done,
            status: 'conflict',
            note: errorText(e),
            ...currentColumns(states[0]!),
          });
        }
      } else {
        this.repo.updateFile(cs.id, f.path, {
          ...done,
          status: 'conflict',
          note: `${f.path} changed on this computer while Paddock was applying it; Paddock kept the folder as it is.`,
          ...currentColumns(states[0] ?? null),
        });
      }
    } else if (f.status === 'undoing') {
      // Undo restores row 1 (a rename's old path) first, then row 0.
      const undoHalf =
        rows.length === 2 &&
        holds(states[1]!, beforeSide(rows[1]!)) &&
        holds(states[0]!, afterSide(rows[0]!));
      if (rows.length && (beforeAll || undoHalf)) {
        try {
          if (!beforeAll)
            this.put(root, rows[0]!.path, { type: 'absent' }, rows[0]!.batch, {
              removeUpTo: rows[0]!.madeDir,
              chmodOnly: false,
            });
          this.repo.tx(() => {
            this.repo.updateFile(cs.id, f.path, { ...done, status: 'undone', note: null });
            this.repo.markUndone(f.batch!, at);
          });
        } catch (e) {
          this.repo.updateFile(cs.id, f.path, { ...done, status: 'applied', note: errorText(e) });
        }
      } else {
        this.repo.updateFile(cs.id, f.path, {
          ...done,
          status: 'applied',
          ...(afterAll
            ? {}
            : {
                note: `${f.path} changed on this computer while Paddock was undoing it; Paddock kept the folder as it is.`,
              }),
        });
      }
    }
  }

  // ── Bookkeeping ──────────────────────────────────────────────────────────────────────────

  /** Sets a changeset's status from its files' (and its time of change). */
  private restatus(id: string): void {
    const statuses = this.repo.files(id).map((f) => shownStatus(f.status));
    this.repo.setStatus(id, overall(statuses), this.now());
  }

  private emit(id: string): void {
    const cs = this.repo.get(id);
    if (cs && !this.disposed) this.d.events.emit('changes:changed', this.summary(cs));
  }

  /**
   * Removes journal rows older than the `journalDays` setting, then every blob no pending file
   * or kept journal row needs (a discarded file's copy among them). Runs soon after start and
   * daily.
   */
  prune(): { journalRows: number; blobs: number; bytes: number } {
    const cutoff = this.now() - this.days() * DAY_MS;
    const journalRows = this.repo.pruneJournal(cutoff);
    const { removed, bytes } = this.blobs.prune(
      this.repo.referencedBlobs(),
      this.d.blobGraceMs ?? 3_600_000,
    );
    return { journalRows, blobs: removed, bytes };
  }

  /** What the blob store holds (for Settings), and how many journal rows are kept. */
  storage(): { bytes: number; blobs: number; journalEntries: number; journalDays: number } {
    return {
      ...this.blobs.usage(),
      journalEntries: this.repo.journalCount(),
      journalDays: this.days(),
    };
  }

  dispose(): void {
    this.disposed = true;
    if (this.pruneTimer) clearTimeout(this.pruneTimer);
    this.pruneTimer = null;
  }
}
