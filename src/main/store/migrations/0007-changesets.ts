import type { Database } from 'better-sqlite3';

/**
 * Staged folder edits (review grants). A changeset is what one task changed in one granted
 * folder; its files are the paths changed, each with the folder's copy when it was staged
 * (`before_*`), the session's (`after_*`, content in the blob store) and, for a conflict, the
 * folder's copy now (`current_*`). `applying`/`undoing` mark a file whose write was under way:
 * settled from what the folder holds if the process died there.
 *
 * The journal is what applying did to each path, written before the write: the state it
 * replaced (content in the blob store) and the state it wrote. Undo restores from it; rows older
 * than the `journalDays` setting are pruned.
 */
export function up(db: Database): void {
  db.exec(`
    CREATE TABLE changesets (
      id TEXT PRIMARY KEY,
      session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      host_path TEXT NOT NULL,
      name TEXT NOT NULL,
      status TEXT NOT NULL
        CHECK (status IN ('pending', 'partial', 'applied', 'discarded', 'undone')),
      allow_protected INTEGER NOT NULL DEFAULT 0 CHECK (allow_protected IN (0, 1)),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      UNIQUE (session_id, name)
    ) STRICT;
    CREATE INDEX changesets_status ON changesets(status);

    CREATE TABLE change_files (
      changeset_id TEXT NOT NULL REFERENCES changesets(id) ON DELETE CASCADE,
      path TEXT NOT NULL,
      from_path TEXT,
      kind TEXT NOT NULL CHECK (kind IN ('added', 'modified', 'deleted', 'renamed', 'mode')),
      status TEXT NOT NULL CHECK (status IN
        ('pending', 'applying', 'applied', 'discarded', 'conflict', 'undoing', 'undone')),
      before_type TEXT CHECK (before_type IN ('file', 'symlink')),
      before_size INTEGER,
      before_mode INTEGER,
      before_sha256 TEXT,
      before_link TEXT,
      before_mtime_ms REAL,
      after_type TEXT CHECK (after_type IN ('file', 'symlink')),
      after_size INTEGER,
      after_mode INTEGER,
      after_sha256 TEXT,
      after_link TEXT,
      current_type TEXT CHECK (current_type IN ('absent', 'file', 'symlink', 'dir', 'other')),
      current_size INTEGER,
      current_mode INTEGER,
      current_sha256 TEXT,
      current_link TEXT,
      binary INTEGER NOT NULL CHECK (binary IN (0, 1)),
      gone_dir TEXT,
      batch TEXT,
      owner_pid INTEGER,
      note TEXT,
      applied_at INTEGER,
      updated_at INTEGER NOT NULL,
      PRIMARY KEY (changeset_id, path)
    ) STRICT;
    CREATE INDEX change_files_status ON change_files(status);

    CREATE TABLE change_journal (
      id INTEGER PRIMARY KEY,
      changeset_id TEXT NOT NULL REFERENCES changesets(id) ON DELETE CASCADE,
      file_path TEXT NOT NULL,
      batch TEXT NOT NULL,
      path TEXT NOT NULL,
      before_type TEXT NOT NULL CHECK (before_type IN ('absent', 'file', 'symlink')),
      before_size INTEGER,
      before_mode INTEGER,
      before_sha256 TEXT,
      before_link TEXT,
      after_type TEXT NOT NULL CHECK (after_type IN ('absent', 'file', 'symlink')),
      after_size INTEGER,
      after_mode INTEGER,
      after_sha256 TEXT,
      after_link TEXT,
      gone_dir TEXT,
      made_dir TEXT,
      applied_at INTEGER NOT NULL,
      undone_at INTEGER
    ) STRICT;
    CREATE INDEX change_journal_batch ON change_journal(batch);
    CREATE INDEX change_journal_applied ON change_journal(applied_at);
  `);
}
