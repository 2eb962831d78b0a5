import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';
import { RowCodec } from './rows.js';

/** Where a changeset stands as a whole (derived from its files, kept for listing). */
export type ChangesetStatus = 'pending' | 'partial' | 'applied' | 'discarded' | 'undone';

/** A file's status, with the two marks of a write under way. */
export type ChangeFileStatus =
  'pending' | 'applying' | 'applied' | 'discarded' | 'conflict' | 'undoing' | 'undone';

export type ChangeKind = 'added' | 'modified' | 'deleted' | 'renamed' | 'mode';

export interface ChangesetRow {
  id: string;
  sessionId: string;
  hostPath: string;
  name: string;
  status: ChangesetStatus;
  /** The grant let the guest write protected paths (git hooks, editor tasks): apply them too. */
  allowProtected: boolean;
  createdAt: number;
  updatedAt: number;
}

/** One changed path of a changeset; each side's columns are null where the side is absent. */
export interface ChangeFileRow {
  changesetId: string;
  path: string;
  fromPath: string | null;
  kind: ChangeKind;
  status: ChangeFileStatus;
  beforeType: 'file' | 'symlink' | null;
  beforeSize: number | null;
  beforeMode: number | null;
  beforeSha256: string | null;
  beforeLink: string | null;
  beforeMtimeMs: number | null;
  afterType: 'file' | 'symlink' | null;
  afterSize: number | null;
  afterMode: number | null;
  afterSha256: string | null;
  afterLink: string | null;
  currentType: 'absent' | 'file' | 'symlink' | 'dir' | 'other' | null;
  currentSize: number | null;
  currentMode: number | null;
  currentSha256: string | null;
  currentLink: string | null;
  binary: boolean;
  /** The folder the session removed that held the deleted (or renamed-from) path, if any. */
  goneDir: string | null;
  /** The journal batch of its latest apply. */
  batch: string | null;
  /** The process writing it while `applying`/`undoing`. */
  ownerPid: number | null;
  /** Why the last action refused it. */
  note: string | null;
  appliedAt: number | null;
  updatedAt: number;
}

/** What applying did to one path: the state it replaced and the state it wrote. */
export interface JournalRow {
  id: number;
  changesetId: string;
  /** The change file this belongs to (a rename has two rows: its new and its old path). */
  filePath: string;
  batch: string;
  path: string;
  beforeType: 'absent' | 'file' | 'symlink';
  beforeSize: number | null;
  beforeMode: number | null;
  beforeSha256: string | null;
  beforeLink: string | null;
  afterType: 'absent' | 'file' | 'symlink';
  afterSize: number | null;
  afterMode: number | null;
  afterSha256: string | null;
  afterLink: string | null;
  /** Removed after deleting: the empty folders from the path's folder up to this one. */
  goneDir: string | null;
  /** Made before writing: the first missing folder (removed again by undo when empty). */
  madeDir: string | null;
  appliedAt: number;
  undoneAt: number | null;
}

const changesets = new RowCodec<ChangesetRow>('changesets', { bool: ['allowProtected'] });
const files = new RowCodec<ChangeFileRow>('change_files', { bool: ['binary'] });
const journal = new RowCodec<JournalRow>('change_journal');

/** Changesets, their files and the journal of what applying them did. */
export class ChangesRepo {
  constructor(private readonly db: Database) {}

  /** Runs `fn` in one transaction. */
  tx<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  get(id: string): ChangesetRow | undefined {
    return changesets.byId(this.db, id);
  }

  /** The changeset of a task's grant, by the grant's name. */
  forShare(sessionId: string, name: string): ChangesetRow | undefined {
    const r = this.db
      .prepare('SELECT * FROM changesets WHERE session_id = ? AND name = ?')
      .get(sessionId, name);
    return r === undefined ? undefined : changesets.read(r);
  }

  create(input: {
    sessionId: string;
    hostPath: string;
    name: string;
    allowProtected: boolean;
    at: number;
  }): ChangesetRow {
    const row: ChangesetRow = {
      id: newId('chg'),
      sessionId: input.sessionId,
      hostPath: input.hostPath,
      name: input.name,
      status: 'pending',
      allowProtected: input.allowProtected,
      createdAt: input.at,
      updatedAt: input.at,
    };
    changesets.insert(this.db, row);
    return row;
  }

  /** A task's changesets in the order made, or those that still wait for the person. */
  list(filter: { sessionId?: string; waiting?: boolean }): ChangesetRow[] {
    const rows =
      filter.sessionId !== undefined
        ? this.db
            .prepare('SELECT * FROM changesets WHERE session_id = ? ORDER BY created_at, id')
            .all(filter.sessionId)
        : this.db
            .prepare(
              `SELECT * FROM changesets ${filter.waiting ? "WHERE status IN ('pending', 'partial')" : ''}
               ORDER BY updated_at DESC, id`,
            )
            .all();
    return rows.map(changesets.read);
  }

  /**
   * How many files of a task's changesets wait for the person (pending or in conflict, a write
   * under way counted as where it started): what an automation run's inbox item points to.
   */
  waitingFiles(sessionId: string): number {
    return (
      this.db
        .prepare(
          `SELECT COUNT(*) AS n FROM change_files f JOIN changesets c ON c.id = f.changeset_id
           WHERE c.session_id = ? AND f.status IN ('pending', 'applying', 'conflict')`,
        )
        .get(sessionId) as { n: number }
    ).n;
  }

  setStatus(id: string, status: ChangesetStatus, at: number): void {
    this.db
      .prepare('UPDATE changesets SET status = ?, updated_at = ? WHERE id = ?')
      .run(status, at, id);
  }

  files(changesetId: string): ChangeFileRow[] {
    return this.db
      .prepare('SELECT * FROM change_files WHERE changeset_id = ? ORDER BY path')
      .all(changesetId)
      .map(files.read);
  }

  file(changesetId: string, path: string): ChangeFileRow | undefined {
    const r = this.db
      .prepare('SELECT * FROM change_files WHERE changeset_id = ? AND path = ?')
      .get(changesetId, path);
    return r === undefined ? undefined : files.read(r);
  }

  /** Counts of a changeset's files by kind. */
  counts(changesetId: string): Record<ChangeKind, number> {
    const out: Record<ChangeKind, number> = {
      added: 0,
      modified: 0,
      deleted: 0,
      renamed: 0,
      mode: 0,
    };
    const rows = this.db
      .prepare('SELECT kind, COUNT(*) AS n FROM change_files WHERE changeset_id = ? GROUP BY kind')
      .all(changesetId) as { kind: ChangeKind; n: number }[];
    for (const r of rows) out[r.kind] = r.n;
    return out;
  }

  /** Inserts a file, or replaces the one at its path. */
  putFile(row: ChangeFileRow): void {
    this.db
      .prepare('DELETE FROM change_files WHERE changeset_id = ? AND path = ?')
      .run(row.changesetId, row.path);
    files.insert(this.db, row);
  }

  updateFile(changesetId: string, path: string, patch: Partial<ChangeFileRow>): void {
    const values = files.write(patch);
    const names = Object.keys(values);
    if (names.length === 0) return;
    // Fields set to null on purpose are kept (write() drops only undefined).
    this.db
      .prepare(
        `UPDATE change_files SET ${names.map((n) => `${n} = @${n}`).join(', ')}
         WHERE changeset_id = @cs__ AND path = @path__`,
      )
      .run({ ...values, cs__: changesetId, path__: path });
  }

  deleteFile(changesetId: string, path: string): void {
    this.db
      .prepare('DELETE FROM change_files WHERE changeset_id = ? AND path = ?')
      .run(changesetId, path);
  }

  /** Files whose write was under way (`applying`/`undoing`), in every changeset. */
  unsettled(): ChangeFileRow[] {
    return this.db
      .prepare("SELECT * FROM change_files WHERE status IN ('applying', 'undoing')")
      .all()
      .map(files.read);
  }

  addJournal(rows: Omit<JournalRow, 'id'>[]): void {
    for (const r of rows) journal.insert(this.db, r);
  }

  /** A batch's rows in the order written. */
  journal(batch: string): JournalRow[] {
    return this.db
      .prepare('SELECT * FROM change_journal WHERE batch = ? ORDER BY id')
      .all(batch)
      .map(journal.read);
  }

  markUndone(batch: string, at: number): void {
    this.db.prepare('UPDATE change_journal SET undone_at = ? WHERE batch = ?').run(at, batch);
  }

  markRedone(batch: string): void {
    this.db.prepare('UPDATE change_journal SET undone_at = NULL WHERE batch = ?').run(batch);
  }

  dropJournal(batch: string): void {
    this.db.prepare('DELETE FROM change_journal WHERE batch = ?').run(batch);
  }

  /** Removes journal rows applied before `cutoff`; returns how many. */
  pruneJournal(cutoff: number): number {
    return this.db.prepare('DELETE FROM change_journal WHERE applied_at < ?').run(cutoff).changes;
  }

  journalCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM change_journal').get() as { n: number }).n;
  }

  /**
   * Every blob still needed: the staged content of files not applied yet (or being written) and
   * both sides of every journal row kept.
   */
  referencedBlobs(): Set<string> {
    const rows = this.db
      .prepare(
        `SELECT after_sha256 AS sha FROM change_files
           WHERE status IN ('pending', 'conflict', 'applying', 'undoing') AND after_type = 'file'
         UNION SELECT before_sha256 FROM change_journal WHERE before_type = 'file'
         UNION SELECT after_sha256 FROM change_journal WHERE after_type = 'file'`,
      )
      .all() as { sha: string | null }[];
    return new Set(rows.map((r) => r.sha).filter((s): s is string => !!s));
  }
}
