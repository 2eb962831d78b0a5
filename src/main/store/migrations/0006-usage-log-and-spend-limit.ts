import type { Database } from 'better-sqlite3';

/**
 * Usage is kept per model call (`usage_log`), so totals can be taken over any span of time (this
 * month, last month) and not only per session. A session's tokens and cost from before this
 * version are kept as one row dated at the session's last change: a month's total then counts
 * them in the month the session last worked, which is the nearest the old totals can tell.
 * The log has no foreign key: what was spent stays counted whatever becomes of the session.
 *
 * Automations get a spend limit per run, in dollars (null: no limit).
 */
export function up(db: Database): void {
  db.exec(`
    CREATE TABLE usage_log (
      id INTEGER PRIMARY KEY,
      session_id TEXT NOT NULL,
      at INTEGER NOT NULL,
      input_tokens INTEGER NOT NULL,
      output_tokens INTEGER NOT NULL,
      cache_read_tokens INTEGER NOT NULL,
      cache_write_tokens INTEGER NOT NULL,
      cost_usd REAL NOT NULL
    ) STRICT;
    CREATE INDEX usage_log_at ON usage_log(at);

    INSERT INTO usage_log (session_id, at, input_tokens, output_tokens, cache_read_tokens,
                           cache_write_tokens, cost_usd)
      SELECT id, updated_at, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
             cost_usd
      FROM sessions
      WHERE input_tokens + output_tokens + cache_read_tokens + cache_write_tokens > 0
         OR cost_usd > 0;

    ALTER TABLE automations ADD COLUMN spend_limit_usd REAL
      CHECK (spend_limit_usd IS NULL OR spend_limit_usd > 0);
  `);
}
