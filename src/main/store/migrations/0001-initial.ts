import type { Database } from 'better-sqlite3';

/** The first schema: every area the product stores, as STRICT tables. */
export function up(db: Database): void {
  db.exec(`
    CREATE TABLE settings (
      key TEXT PRIMARY KEY,
      value TEXT NOT NULL
    ) STRICT;

    CREATE TABLE grants (
      id TEXT PRIMARY KEY,
      host_path TEXT NOT NULL,
      name TEXT NOT NULL,
      read_only INTEGER NOT NULL CHECK (read_only IN (0, 1)),
      created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE sessions (
      id TEXT PRIMARY KEY,
      title TEXT NOT NULL,
      status TEXT NOT NULL,
      model TEXT NOT NULL,
      approval_mode TEXT NOT NULL,
      folders TEXT NOT NULL DEFAULT '[]',
      allowlist TEXT NOT NULL DEFAULT '[]',
      input_tokens INTEGER NOT NULL DEFAULT 0,
      output_tokens INTEGER NOT NULL DEFAULT 0,
      cost_usd REAL NOT NULL DEFAULT 0,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE session_events (
      session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
      seq INTEGER NOT NULL,
      type TEXT NOT NULL,
      payload TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (session_id, seq)
    ) STRICT;

    CREATE TABLE automations (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      prompt TEXT NOT NULL,
      folders TEXT NOT NULL DEFAULT '[]',
      rrule TEXT NOT NULL,
      missed_policy TEXT NOT NULL CHECK (missed_policy IN ('skip', 'once', 'all')),
      allowlist TEXT NOT NULL DEFAULT '[]',
      enabled INTEGER NOT NULL CHECK (enabled IN (0, 1)),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE runs (
      id TEXT PRIMARY KEY,
      automation_id TEXT NOT NULL REFERENCES automations(id) ON DELETE CASCADE,
      slot_at INTEGER NOT NULL,
      status TEXT NOT NULL CHECK (status IN
        ('scheduled', 'running', 'succeeded', 'failed', 'missed', 'skipped', 'interrupted')),
      attempt INTEGER NOT NULL DEFAULT 0,
      session_id TEXT,
      lease_owner TEXT,
      lease_until INTEGER,
      started_at INTEGER,
      finished_at INTEGER,
      error TEXT,
      UNIQUE (automation_id, slot_at)
    ) STRICT;

    CREATE TABLE inbox_items (
      id TEXT PRIMARY KEY,
      run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
      state TEXT NOT NULL CHECK (state IN ('unread', 'read', 'archived')),
      summary TEXT NOT NULL,
      created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE artifacts (
      id TEXT PRIMARY KEY,
      session_id TEXT,
      title TEXT NOT NULL,
      kind TEXT NOT NULL,
      created_at INTEGER NOT NULL
    ) STRICT;

    CREATE TABLE artifact_versions (
      artifact_id TEXT NOT NULL REFERENCES artifacts(id) ON DELETE CASCADE,
      version INTEGER NOT NULL,
      content TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (artifact_id, version)
    ) STRICT;

    CREATE TABLE egress_log (
      id INTEGER PRIMARY KEY,
      at INTEGER NOT NULL,
      session_id TEXT,
      method TEXT NOT NULL,
      host TEXT NOT NULL,
      port INTEGER NOT NULL,
      allowed INTEGER NOT NULL CHECK (allowed IN (0, 1)),
      reason TEXT NOT NULL
    ) STRICT;
    CREATE INDEX egress_log_session ON egress_log(session_id, at);
  `);
}
