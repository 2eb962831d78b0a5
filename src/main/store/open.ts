import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { PaddockError } from '../../shared/result.js';
import { LATEST_SCHEMA_VERSION, migrations } from './migrations/index.js';

export const DB_FILE = 'paddock.db';

/**
 * Reads the schema version without writing anything, so a file from a newer Paddock or a
 * corrupt file can be reported before we touch it.
 */
export function inspectDatabase(file: string): { exists: boolean; version: number } {
  if (!fs.existsSync(file)) return { exists: false, version: 0 };
  let db: Database.Database | undefined;
  try {
    // SECURITY: readonly + fileMustExist so inspection can never create or alter the file.
    db = new Database(file, { readonly: true, fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    const check = db.pragma('quick_check', { simple: true }) as string;
    if (check !== 'ok') throw new Error(check);
    return { exists: true, version };
  } catch (e) {
    throw new PaddockError(
      'DB_CORRUPT',
      `The database at ${file} could not be read (${(e as Error).message}). Paddock left it untouched; ` +
        `move it aside (or restore a backup) and start Paddock again to create a new one.`,
    );
  } finally {
    db?.close();
  }
}

/**
 * Opens (creating if needed) the database in `dataDir`, migrating it to the latest schema in one
 * transaction. A database from a newer version is refused before it is opened for writing.
 */
export function openDatabase(dataDir: string): Database.Database {
  fs.mkdirSync(dataDir, { recursive: true });
  const file = path.join(dataDir, DB_FILE);
  const { version } = inspectDatabase(file);
  if (version > LATEST_SCHEMA_VERSION) {
    throw new PaddockError(
      'DB_TOO_NEW',
      `The database at ${file} was written by a newer Paddock (schema ${version}; this version ` +
        `knows up to ${LATEST_SCHEMA_VERSION}). Paddock left it untouched; update Paddock to open it.`,
    );
  }
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let v = current; v < LATEST_SCHEMA_VERSION; v++) {
    const step = migrations[v]!;
    db.transaction(() => {
      step.up(db);
      db.pragma(`user_version = ${v + 1}`);
    }).immediate();
  }
}
