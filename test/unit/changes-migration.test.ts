import { afterEach, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION } from '../../src/main/store/migrations/index.js';
import { DEFAULT_SETTINGS } from '../../src/main/store/settings-repo.js';
import { Store } from '../../src/main/store/store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { databaseAtSchema } from '../helpers/old-database.js';

describe('migration 0007: changesets, their files and the undo journal', () => {
  let home: { dir: string; cleanup(): void } | undefined;
  let store: Store | undefined;
  afterEach(() => {
    store?.dispose();
    store = undefined;
    home?.cleanup();
  });

  it('adds STRICT tables to a schema-6 database, keeping its sessions, with journalDays 30', () => {
    home = tempDir('paddock-m7-');
    const db = databaseAtSchema(home.dir, 6);
    db.prepare(
      `INSERT INTO sessions (id, title, status, model, approval_mode, created_at, updated_at)
       VALUES ('ses_old', 't', 'done', 'm', 'auto', 1, 1)`,
    ).run();
    db.close();
    store = Store.open(home.dir);
    expect(store.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    expect(store.sessions.get('ses_old')?.title).toBe('t');
    const sql = (name: string) =>
      (
        store!.db.prepare('SELECT sql FROM sqlite_master WHERE name = ?').get(name) as {
          sql: string;
        }
      ).sql;
    for (const t of ['changesets', 'change_files', 'change_journal'])
      expect(sql(t)).toMatch(/\) STRICT$/);
    expect(store.settings.get().journalDays).toBe(30);
    expect(DEFAULT_SETTINGS.journalDays).toBe(30);

    const cs = store.changes.create({
      sessionId: 'ses_old',
      hostPath: '/x',
      name: 'x',
      allowProtected: false,
      at: 5,
    });
    expect(() => store!.changes.setStatus(cs.id, 'sideways' as never, 6)).toThrow(/CHECK/);
    // A task's changesets go with it.
    store.db.prepare("DELETE FROM sessions WHERE id = 'ses_old'").run();
    expect(store.changes.get(cs.id)).toBeUndefined();
  });
});
