import { afterEach, describe, expect, it } from 'vitest';
import { monthRange, usageSummary } from '../../src/main/core/usage.js';
import { LATEST_SCHEMA_VERSION } from '../../src/main/store/migrations/index.js';
import { Store } from '../../src/main/store/store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { databaseAtSchema } from '../helpers/old-database.js';

/** A database at schema 5 with two sessions (one that used the model, one that never did). */
function schema5(dir: string): void {
  const db = databaseAtSchema(dir, 5);
  const add = db.prepare(
    `INSERT INTO sessions (id, title, status, model, approval_mode, input_tokens, output_tokens,
       cache_read_tokens, cache_write_tokens, cost_usd, created_at, updated_at)
     VALUES (?, 't', 'done', 'claude-opus-5-5', 'auto', ?, ?, ?, ?, ?, ?, ?)`,
  );
  add.run('ses_old', 1200, 300, 9000, 400, 0.25, Date.UTC(2026, 9, 3), Date.UTC(2026, 9, 30, 12));
  add.run('ses_idle', 0, 0, 0, 0, 0, Date.UTC(2026, 9, 4), Date.UTC(2026, 9, 4));
  db.prepare(
    `INSERT INTO automations (id, name, prompt, rrule, missed_policy, enabled, created_at, updated_at)
     VALUES ('auto_1', 'Digest', 'p', 'RRULE:FREQ=DAILY', 'once', 1, 0, 0)`,
  ).run();
  db.close();
}

const usage = (i: number, o: number, r: number, w: number) => ({
  inputTokens: i,
  outputTokens: o,
  cacheReadTokens: r,
  cacheWriteTokens: w,
});

describe('migration 0006: a usage log per model call, and a spend limit per automation', () => {
  let home: { dir: string; cleanup(): void } | undefined;
  let store: Store | undefined;
  afterEach(() => {
    store?.dispose();
    store = undefined;
    home?.cleanup();
  });

  it('keeps what older sessions used as one row each, dated at their last change', () => {
    home = tempDir('paddock-m6-');
    schema5(home.dir);
    store = Store.open(home.dir);
    expect(store.schemaVersion).toBe(LATEST_SCHEMA_VERSION);
    const rows = store.db.prepare('SELECT * FROM usage_log').all();
    expect(rows).toEqual([
      {
        id: 1,
        session_id: 'ses_old',
        at: Date.UTC(2026, 9, 30, 12),
        input_tokens: 1200,
        output_tokens: 300,
        cache_read_tokens: 9000,
        cache_write_tokens: 400,
        cost_usd: 0.25,
      },
    ]);
    const oct = monthRange(Date.UTC(2026, 9, 15), 'UTC');
    expect(store.sessions.usageBetween(oct.from, oct.to)).toEqual({
      ...usage(1200, 300, 9000, 400),
      costUsd: 0.25,
    });
    expect(
      store.db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'usage_log'")
        .all(),
    ).toEqual([{ name: 'usage_log_at' }]);
  });

  it('gives existing automations no limit, and the table refuses a limit that is not positive', () => {
    home = tempDir('paddock-m6-');
    schema5(home.dir);
    store = Store.open(home.dir);
    expect(store.automations.get('auto_1')?.spendLimitUsd).toBeNull();
    expect(store.automations.update('auto_1', { spendLimitUsd: 2.5 })).toBe(true);
    expect(store.automations.get('auto_1')?.spendLimitUsd).toBe(2.5);
    expect(() => store!.automations.update('auto_1', { spendLimitUsd: 0 })).toThrow(/CHECK/);
    expect(() => store!.automations.update('auto_1', { spendLimitUsd: -1 })).toThrow(/CHECK/);
    expect(store.automations.update('auto_1', { spendLimitUsd: null })).toBe(true);
    expect(store.automations.get('auto_1')?.spendLimitUsd).toBeNull();
  });

  it('logs every model call with its time; totals count from `from` up to, not including, `to`', () => {
    home = tempDir('paddock-m6-');
    store = Store.open(home.dir);
    const s = store.sessions.create({ title: 't', model: 'claude-opus-5-5', approvalMode: 'auto' });
    store.sessions.addUsage(s.id, usage(10, 5, 900, 100), 0.01, 1000);
    store.sessions.addUsage(s.id, usage(1, 2, 1000, 0), 0.02, 2000);
    store.sessions.addUsage(s.id, usage(7, 7, 7, 7), 0.04, 3000);
    // The session keeps its running totals as before.
    expect(store.sessions.get(s.id)).toMatchObject({
      ...usage(18, 14, 1907, 107),
      updatedAt: 3000,
    });
    expect(store.sessions.get(s.id)!.costUsd).toBeCloseTo(0.07, 10);
    const between = (from: number, to: number) => store!.sessions.usageBetween(from, to);
    expect(between(1000, 3000)).toMatchObject(usage(11, 7, 1900, 100));
    expect(between(1000, 3000).costUsd).toBeCloseTo(0.03, 10);
    expect(between(1001, 3001)).toMatchObject(usage(8, 9, 1007, 7));
    expect(between(4000, 5000)).toEqual({ ...usage(0, 0, 0, 0), costUsd: 0 });
  });
});

describe('calendar months in the person’s time zone', () => {
  it('starts a month at local midnight, whatever UTC says', () => {
    // 31 March 2026, 23:30 UTC: already 1 April in Paris, still 31 March in New York.
    const now = Date.UTC(2026, 2, 31, 23, 30);
    expect(monthRange(now, 'Europe/Paris')).toEqual({
      month: '2026-04',
      from: Date.UTC(2026, 2, 31, 22), // midnight in Paris, summer time (+02:00)
      to: Date.UTC(2026, 3, 30, 22),
    });
    expect(monthRange(now, 'Europe/Paris', -1)).toEqual({
      month: '2026-03',
      // 1 March is winter time (+01:00); the month is an hour short, for the change on the 29th.
      from: Date.UTC(2026, 1, 28, 23),
      to: Date.UTC(2026, 2, 31, 22),
    });
    expect(monthRange(now, 'America/New_York')).toEqual({
      month: '2026-03',
      from: Date.UTC(2026, 2, 1, 5), // EST
      to: Date.UTC(2026, 3, 1, 4), // EDT
    });
    expect(monthRange(now, 'UTC').month).toBe('2026-03');
  });

  it('goes back across a year boundary', () => {
    const now = Date.UTC(2027, 0, 10, 12);
    expect(monthRange(now, 'Asia/Tokyo', -1)).toEqual({
      month: '2026-12',
      from: Date.UTC(2026, 10, 30, 15),
      to: Date.UTC(2026, 11, 31, 15),
    });
  });

  it('refuses a zone it does not know, with a sentence', () => {
    expect(() => monthRange(0, 'Mars/Olympus_Mons')).toThrow(
      /“Mars\/Olympus_Mons” is not a time zone Paddock knows/,
    );
  });

  it('totals this month and last month apart, each call counted in the month it was made in', () => {
    const home = tempDir('paddock-m6-');
    const store = Store.open(home.dir);
    try {
      const s = store.sessions.create({
        title: 't',
        model: 'claude-opus-5-5',
        approvalMode: 'auto',
      });
      const parisApril = Date.UTC(2026, 2, 31, 22); // 1 April 00:00 in Paris
      store.sessions.addUsage(s.id, usage(100, 10, 1000, 50), 0.5, parisApril - 1);
      store.sessions.addUsage(s.id, usage(200, 20, 2000, 0), 1.25, parisApril);
      store.sessions.addUsage(s.id, usage(1, 1, 1, 1), 9, Date.UTC(2026, 1, 27)); // February
      const now = Date.UTC(2026, 3, 2, 9);
      const paris = usageSummary(store, now, 'Europe/Paris');
      expect(paris.timeZone).toBe('Europe/Paris');
      expect(paris.thisMonth).toMatchObject({ month: '2026-04', ...usage(200, 20, 2000, 0) });
      expect(paris.thisMonth.costUsd).toBeCloseTo(1.25, 10);
      expect(paris.lastMonth).toMatchObject({ month: '2026-03', ...usage(100, 10, 1000, 50) });
      expect(paris.lastMonth.costUsd).toBeCloseTo(0.5, 10);
      // In New York both calls fall on 31 March: this month is empty, last month has both.
      const ny = usageSummary(store, Date.UTC(2026, 2, 31, 23, 59), 'America/New_York');
      expect(ny.thisMonth).toMatchObject({ month: '2026-03', ...usage(300, 30, 3000, 50) });
      expect(ny.lastMonth).toMatchObject({ month: '2026-02', ...usage(1, 1, 1, 1), costUsd: 9 });
    } finally {
      store.dispose();
      home.cleanup();
    }
  });
});
