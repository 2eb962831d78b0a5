import type { Database } from 'better-sqlite3';
import * as m0001 from './0001-initial.js';
import * as m0002 from './0002-automations.js';
import * as m0003 from './0003-allowlist-provenance.js';
import * as m0004 from './0004-automation-folder-shares.js';
import * as m0005 from './0005-effort-and-cache-usage.js';
import * as m0006 from './0006-usage-log-and-spend-limit.js';
import * as m0007 from './0007-changesets.js';
import * as m0008 from './0008-automation-review.js';
import * as m0009 from './0009-secrets.js';

/** Ordered migrations; migration N brings the schema to `PRAGMA user_version = N`. */
export const migrations: ReadonlyArray<{ up(db: Database): void }> = [
  m0001,
  m0002,
  m0003,
  m0004,
  m0005,
  m0006,
  m0007,
  m0008,
  m0009,
];

export const LATEST_SCHEMA_VERSION = migrations.length;
