import type { Database } from 'better-sqlite3';

/**
 * What the scheduler needs beyond 0001: the cursor of each automation (its next slot not yet
 * recorded), its run timeout and retry policy, soft removal (so runs and inbox items outlive the
 * automation), how a run was triggered, and inbox items that say what happened to which
 * automation without joining.
 */
export function up(db: Database): void {
  db.exec(`
    ALTER TABLE automations ADD COLUMN schedule_text TEXT NOT NULL DEFAULT '';
    ALTER TABLE automations ADD COLUMN tzid TEXT NOT NULL DEFAULT 'UTC';
    ALTER TABLE automations ADD COLUMN next_slot_at INTEGER;
    ALTER TABLE automations ADD COLUMN timeout_ms INTEGER NOT NULL DEFAULT 1800000;
    ALTER TABLE automations ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 2;
    ALTER TABLE automations ADD COLUMN created_by_session TEXT;
    ALTER TABLE automations ADD COLUMN removed_at INTEGER;
    CREATE INDEX automations_due ON automations(next_slot_at) WHERE enabled = 1 AND removed_at IS NULL;

    ALTER TABLE runs ADD COLUMN trigger TEXT NOT NULL DEFAULT 'schedule';
    ALTER TABLE runs ADD COLUMN late INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE runs ADD COLUMN summary TEXT;
    ALTER TABLE runs ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX runs_by_status ON runs(status, slot_at);

    ALTER TABLE inbox_items ADD COLUMN automation_id TEXT;
    ALTER TABLE inbox_items ADD COLUMN kind TEXT NOT NULL DEFAULT 'succeeded';
    ALTER TABLE inbox_items ADD COLUMN title TEXT NOT NULL DEFAULT '';
    ALTER TABLE inbox_items ADD COLUMN read_at INTEGER;
    CREATE INDEX inbox_by_state ON inbox_items(state, created_at);
  `);
}
