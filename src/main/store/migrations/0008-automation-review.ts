import type { Database } from 'better-sqlite3';

/**
 * Automations' folders carry their grant mode, as sessions' shares do: a read-write folder is
 * either staged for review (`review: true`) or written directly (`review: false`). New
 * automations stage for review by default; those made before this version wrote directly, and
 * keep doing so: every stored read-write folder is marked `review: false` here, explicitly, so no
 * later default can change what an existing automation does. Read-only folders have nothing to
 * stage and are left as they are.
 *
 * `apply_changes` says what becomes of a run's staged changes: `review` (they wait for the
 * person) or `auto` (applied as the run ends, journalled so they can be undone). Existing rows get
 * `review`, which has no effect on their direct folders.
 */
export function up(db: Database): void {
  db.exec(`
    ALTER TABLE automations ADD COLUMN apply_changes TEXT NOT NULL DEFAULT 'review'
      CHECK (apply_changes IN ('review', 'auto'));
  `);
  const rows = db.prepare('SELECT id, folders FROM automations').all() as {
    id: string;
    folders: string;
  }[];
  const write = db.prepare('UPDATE automations SET folders = ? WHERE id = ?');
  for (const r of rows) {
    let folders: unknown;
    try {
      folders = JSON.parse(r.folders);
    } catch {
      continue;
    }
    if (!Array.isArray(folders)) continue;
    const marked = folders.map((f: unknown) =>
      f && typeof f === 'object' && (f as { readOnly?: unknown }).readOnly === false
        ? { ...f, review: false }
        : f,
    );
    write.run(JSON.stringify(marked), r.id);
  }
}
