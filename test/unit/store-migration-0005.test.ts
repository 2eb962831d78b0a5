import { afterEach, describe, expect, it } from 'vitest';
import { effortForBudget } from '../../src/main/store/migrations/0005-effort-and-cache-usage.js';
import { Store } from '../../src/main/store/store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { databaseAtSchema } from '../helpers/old-database.js';

/** A database at schema 4 with `thinkingBudget` stored as an older Paddock stored it. */
function schema4With(dir: string, thinkingBudget: unknown): void {
  const db = databaseAtSchema(dir, 4);
  if (thinkingBudget !== undefined)
    db.prepare("INSERT INTO settings (key, value) VALUES ('thinkingBudget', ?)").run(
      JSON.stringify(thinkingBudget),
    );
  db.close();
}

describe('migration 0005: effort instead of thinking budgets, cache tokens kept apart', () => {
  let home: { dir: string; cleanup(): void } | undefined;
  afterEach(() => home?.cleanup());

  it.each([
    [null, 'high'],
    [0, 'low'],
    [2048, 'low'],
    [10_000, 'medium'],
    [32_000, 'high'],
    [64_000, 'xhigh'],
  ])('turns a stored thinking budget of %s into effort %s', (budget, effort) => {
    home = tempDir('paddock-m5-');
    schema4With(home.dir, budget);
    const store = Store.open(home.dir);
    try {
      expect(store.settings.get().effort).toBe(effort);
      expect(
        store.db.prepare("SELECT count(*) AS n FROM settings WHERE key = 'thinkingBudget'").get(),
      ).toEqual({ n: 0 });
    } finally {
      store.dispose();
    }
  });

  it('keeps the default effort when nothing was stored, and counts cache tokens per session', () => {
    home = tempDir('paddock-m5-');
    schema4With(home.dir, undefined);
    const store = Store.open(home.dir);
    try {
      expect(store.settings.get().effort).toBe('high');
      const s = store.sessions.create({
        title: 't',
        model: 'claude-opus-5-5',
        approvalMode: 'auto',
      });
      store.sessions.addUsage(
        s.id,
        { inputTokens: 10, outputTokens: 5, cacheReadTokens: 900, cacheWriteTokens: 100 },
        0.01,
      );
      store.sessions.addUsage(
        s.id,
        { inputTokens: 1, outputTokens: 2, cacheReadTokens: 1000, cacheWriteTokens: 0 },
        0.02,
      );
      expect(store.sessions.get(s.id)).toMatchObject({
        inputTokens: 11,
        outputTokens: 7,
        cacheReadTokens: 1900,
        cacheWriteTokens: 100,
      });
    } finally {
      store.dispose();
    }
  });

  it('reads a value it cannot parse as the default effort', () => {
    expect(effortForBudget('lots')).toBe('high');
    expect(effortForBudget(Number.NaN)).toBe('high');
  });
});
