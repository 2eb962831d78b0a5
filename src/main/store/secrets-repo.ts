import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { SecretInfo } from '../../shared/secrets-contract.js';
import { DB_FILE } from './open.js';
import { RowCodec } from './rows.js';

/** A stored secret: what the person is shown, and its value sealed with the vault key. */
export interface SecretRow extends SecretInfo {
  /**
   * iv ‖ tag ‖ data (AES-256-GCM, the name bound as associated data); sealed and opened by the
   * core's vault, never here. SECURITY: the only form a value is ever stored in.
   */
  ciphertext: Buffer;
}

/** A row's name and sealed value: what the vault needs to tell which key it was sealed with. */
export type SealedSecret = Pick<SecretRow, 'name' | 'ciphertext'>;

const secretRows = new RowCodec<SecretRow>('secrets', { json: ['hosts'], bool: ['inBody', 'pin'] });

/** Everything but the value, for lists. */
const INFO_COLUMNS = 'name, env_name, hosts, in_body, pin, source, created_at, updated_at';

/** The secrets table (issue 16). Values arrive sealed and leave sealed. */
export class SecretsRepo {
  constructor(private readonly db: Database.Database) {}

  /** Every secret without its value, by name. */
  list(): SecretInfo[] {
    return this.db
      .prepare(`SELECT ${INFO_COLUMNS} FROM secrets ORDER BY name`)
      .all()
      .map((r) => secretRows.read(r) as SecretInfo);
  }

  get(name: string): SecretRow | undefined {
    const r = this.db.prepare('SELECT * FROM secrets WHERE name = ?').get(name);
    return r === undefined ? undefined : secretRows.read(r);
  }

  /** Every sealed value, newest first (the newest tells which key the vault uses now). */
  sealed(): SealedSecret[] {
    return this.db
      .prepare('SELECT name, ciphertext FROM secrets ORDER BY updated_at DESC, name')
      .all() as SealedSecret[];
  }

  /** Adds a secret, or replaces the one of the same name (keeping when it was first added). */
  put(row: SecretRow): SecretInfo {
    this.db.transaction(() => {
      const existing = this.db
        .prepare('SELECT created_at FROM secrets WHERE name = ?')
        .get(row.name) as { created_at: number } | undefined;
      const fields = { ...row, createdAt: existing?.created_at ?? row.createdAt };
      this.db.prepare('DELETE FROM secrets WHERE name = ?').run(row.name);
      secretRows.insert(this.db, fields);
    })();
    const { ciphertext: _sealed, ...info } = this.get(row.name)!;
    return info;
  }

  /** Whether a secret of that name existed. */
  remove(name: string): boolean {
    return this.db.prepare('DELETE FROM secrets WHERE name = ?').run(name).changes > 0;
  }
}

/**
 * The sealed values in the data folder's database, read without creating or migrating it (for
 * `paddock doctor`, which reports on the data folder without changing it): empty when there is no
 * database yet, or it predates secrets.
 */
export function readSealedSecrets(dataDir: string): SealedSecret[] {
  const file = path.join(dataDir, DB_FILE);
  if (!fs.existsSync(file)) return [];
  // SECURITY: readonly + fileMustExist, so reading can never create or alter the file.
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const table = db
      .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'secrets'")
      .get();
    return table ? new SecretsRepo(db).sealed() : [];
  } finally {
    db.close();
  }
}
