import Database from 'better-sqlite3';
import path from 'node:path';
import { migrations } from '../../src/main/store/migrations/index.js';
import { DB_FILE } from '../../src/main/store/open.js';

/**
 * A database in `dir` as Paddock left it at schema `version` (the migrations up to it run, and
 * no later one), open for a migration test to put rows in before Store.open upgrades it.
 */
export function databaseAtSchema(dir: string, version: number): Database.Database {
  const db = new Database(path.join(dir, DB_FILE));
  for (const m of migrations.slice(0, version)) m.up(db);
  db.pragma(`user_version = ${version}`);
  return db;
}
