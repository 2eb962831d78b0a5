import type { Database } from 'better-sqlite3';

/**
 * Secrets the VM never sees (issue 16).
 *
 * - `secrets`: a named value encrypted with the vault key (AES-256-GCM; `ciphertext` is
 *   iv ‖ tag ‖ data, the name bound as associated data), the hosts it may be sent to, whether it
 *   is swapped in request bodies and whether its hosts are pinned, and where it was added.
 *   SECURITY: no column ever holds a value in the clear.
 * - `sessions.secrets` / `automations.secrets`: names of the secrets chosen (JSON arrays).
 * - `sessions.pin_hosts`: hosts pinned for the session without a secret (JSON array).
 * - `egress_log`: per request, which secrets were swapped in (names, JSON, or NULL), whether
 *   pinning refused it, and whether the proxy terminated TLS for it.
 */
export function up(db: Database): void {
  db.exec(`
    CREATE TABLE secrets (
      name TEXT PRIMARY KEY,
      env_name TEXT NOT NULL,
      hosts TEXT NOT NULL,
      in_body INTEGER NOT NULL DEFAULT 0,
      pin INTEGER NOT NULL DEFAULT 1,
      ciphertext BLOB NOT NULL,
      source TEXT NOT NULL CHECK (source IN ('settings', 'cli')),
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    ) STRICT;
    ALTER TABLE sessions ADD COLUMN secrets TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE sessions ADD COLUMN pin_hosts TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE automations ADD COLUMN secrets TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE egress_log ADD COLUMN secrets TEXT;
    ALTER TABLE egress_log ADD COLUMN pin_refused INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE egress_log ADD COLUMN intercepted INTEGER NOT NULL DEFAULT 0;
  `);
}
