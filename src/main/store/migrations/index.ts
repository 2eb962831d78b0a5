import type { Database } from 'better-sqlite3';
import * as m0001 from './0001-initial.js';

/** Ordered migrations; migration N brings the schema to `PRAGMA user_version = N`. */
export const migrations: ReadonlyArray<{ up(db: Database): void }> = [m0001];

export const LATEST_SCHEMA_VERSION = migrations.length;
