import type { Database } from 'better-sqlite3';

/**
 * The Claude 5.5 models think adaptively only: a thinking budget or "thinking off" is refused
 * (HTTP 400), and depth is set by effort. The stored `thinkingBudget` setting becomes the nearest
 * `effort`: adaptive (null) → high, off (0) → low, a budget up to 4,096 tokens → low, up to
 * 16,384 → medium, up to 32,768 → high, more → xhigh.
 *
 * Sessions also keep cache reads and writes apart from uncached input, so a task's tokens and
 * cost say what prompt caching saved.
 */
export function up(db: Database): void {
  db.exec(`
    ALTER TABLE sessions ADD COLUMN cache_read_tokens INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
  `);
  const row = db.prepare("SELECT value FROM settings WHERE key = 'thinkingBudget'").get() as
    { value: string } | undefined;
  if (!row) return;
  let budget: unknown;
  try {
    budget = JSON.parse(row.value);
  } catch {
    budget = null;
  }
  db.prepare(
    "INSERT INTO settings (key, value) VALUES ('effort', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  ).run(JSON.stringify(effortForBudget(budget)));
  db.prepare("DELETE FROM settings WHERE key = 'thinkingBudget'").run();
}

/** The effort nearest to an old thinking setting (null: adaptive, 0: off, N: a budget). */
export function effortForBudget(budget: unknown): 'low' | 'medium' | 'high' | 'xhigh' {
  if (typeof budget !== 'number' || !Number.isFinite(budget)) return 'high';
  if (budget <= 4096) return 'low';
  if (budget <= 16_384) return 'medium';
  if (budget <= 32_768) return 'high';
  return 'xhigh';
}
