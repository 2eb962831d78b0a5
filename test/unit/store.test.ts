import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LATEST_SCHEMA_VERSION } from '../../src/main/store/migrations/index.js';
import { DB_FILE } from '../../src/main/store/open.js';
import { DEFAULT_SETTINGS } from '../../src/main/store/settings-repo.js';
import { Store } from '../../src/main/store/store.js';
import { tempDir } from '../helpers/temp-dir.js';

const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

describe('the store', () => {
  let home: { dir: string; cleanup(): void };
  beforeEach(() => {
    home = tempDir();
  });
  afterEach(() => home.cleanup());

  it('migrates an empty folder to the latest schema with WAL and STRICT tables', () => {
    const store = Store.open(home.dir);
    expect(store.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    expect(store.db.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = store.db
      .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
      .all() as { name: string; sql: string }[];
    expect(tables.map((t) => t.name).sort()).toEqual(
      [
        'artifact_versions',
        'artifacts',
        'automations',
        'change_files',
        'change_journal',
        'changesets',
        'egress_log',
        'grants',
        'inbox_items',
        'runs',
        'secrets',
        'session_events',
        'sessions',
        'settings',
        'usage_log',
      ].sort(),
    );
    for (const t of tables) expect(t.sql).toMatch(/\) STRICT$/);
    // STRICT really rejects a wrongly typed value.
    expect(() =>
      store.db
        .prepare(
          'INSERT INTO egress_log (at, method, host, port, allowed, reason) VALUES (?, ?, ?, ?, ?, ?)',
        )
        .run('soon', 'GET', 'h', 1, 0, 'r'),
    ).toThrow(/cannot store TEXT value in INTEGER column/);
    store.dispose();
  });

  it('keeps data across a reopen and does not migrate twice', () => {
    const a = Store.open(home.dir);
    a.settings.update({ model: 'claude-test', vmCpus: 1 });
    const s = a.sessions.create({ title: 't', model: 'm', approvalMode: 'auto' });
    a.sessions.appendEvent(s.id, 'user', { text: 'hello' });
    a.sessions.appendEvent(s.id, 'assistant', { text: 'hi' });
    a.grants.add('/tmp/x', 'x', true);
    a.egressLog.record({
      at: 1,
      sessionId: s.id,
      method: 'CONNECT',
      host: 'a.test',
      port: 443,
      allowed: false,
      reason: 'not allowed',
    });
    a.artifacts.create({ sessionId: s.id, title: 'Report', kind: 'markdown', content: '# v1' });
    a.dispose();

    const b = Store.open(home.dir);
    expect(b.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    expect(b.settings.get()).toEqual({ ...DEFAULT_SETTINGS, model: 'claude-test', vmCpus: 1 });
    expect(b.sessions.events(s.id).map((e) => [e.seq, e.type, e.payload])).toEqual([
      [1, 'user', { text: 'hello' }],
      [2, 'assistant', { text: 'hi' }],
    ]);
    expect(b.grants.list()).toMatchObject([{ hostPath: '/tmp/x', name: 'x', readOnly: true }]);
    expect(b.egressLog.list({ sessionId: s.id })).toMatchObject([
      { host: 'a.test', allowed: false },
    ]);
    b.dispose();
  });

  it('refuses a database from a newer version without touching the file', () => {
    const file = path.join(home.dir, DB_FILE);
    const raw = new Database(file);
    raw.exec('CREATE TABLE future (x) ; INSERT INTO future VALUES (1);');
    raw.pragma(`user_version = ${LATEST_SCHEMA_VERSION + 5}`);
    raw.close();
    const before = sha(file);
    const mtime = fs.statSync(file).mtimeMs;

    expect(() => Store.open(home.dir)).toThrow(
      /newer Paddock .* left it untouched; update Paddock/,
    );
    expect(sha(file)).toBe(before);
    expect(fs.statSync(file).mtimeMs).toBe(mtime);
    expect(fs.readdirSync(home.dir).sort()).toEqual([DB_FILE]);
  });

  it('reports a corrupt database in a sentence and leaves it as it was', () => {
    const file = path.join(home.dir, DB_FILE);
    fs.writeFileSync(
      file,
      Buffer.concat([Buffer.from('not a database at all '), crypto.randomBytes(4096)]),
    );
    const before = sha(file);
    expect(() => Store.open(home.dir)).toThrow(
      /could not be read .* left it untouched; move it aside/,
    );
    expect(sha(file)).toBe(before);
    expect(fs.readdirSync(home.dir)).toEqual([DB_FILE]);
  });

  it('rejects a settings update that breaks the schema and keeps the old value', () => {
    const store = Store.open(home.dir);
    expect(() => store.settings.update({ vmCpus: 0 })).toThrow();
    expect(store.settings.get().vmCpus).toBe(DEFAULT_SETTINGS.vmCpus);
    store.dispose();
  });
});
