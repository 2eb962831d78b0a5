import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';
import { RowCodec } from './rows.js';
import { USAGE_SUMS, type UsageTotals } from './sessions-repo.js';

/** A run's state; a run is one scheduled slot (or one manual "run now"). */
export type RunStatus =
  'scheduled' | 'running' | 'succeeded' | 'failed' | 'missed' | 'skipped' | 'interrupted';
/** Why a run exists: its slot came due, or the person asked for it now. */
export type RunTrigger = 'schedule' | 'manual';

/** One run: one slot of one automation. */
export interface RunRow {
  id: string;
  automationId: string;
  slotAt: number;
  status: RunStatus;
  trigger: RunTrigger;
  /** Started after its slot had passed, under the missed-run policy `once` or `all`. */
  late: boolean;
  attempt: number;
  sessionId: string | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  summary: string | null;
  createdAt: number;
}

const runRows = new RowCodec<RunRow>('runs', { bool: ['late'] });

/**
 * Runs (one per slot of an automation) and their leases. A run is claimed with a lease inside a
 * `BEGIN IMMEDIATE` transaction (`Store.immediate`), so two processes on one database (the
 * app and `paddock daemon`) never run the same slot.
 */
export class RunsRepo {
  constructor(private readonly db: Database) {}

  /** Records a slot as a run; returns undefined when that slot was already recorded. */
  insert(
    input: {
      automationId: string;
      slotAt: number;
      status: RunStatus;
      trigger?: RunTrigger;
      late?: boolean;
      error?: string | null;
    },
    now = Date.now(),
  ): RunRow | undefined {
    const id = newId('run');
    const done = input.status === 'missed' || input.status === 'skipped';
    const changes = runRows.insert(
      this.db,
      { ...input, id, finishedAt: done ? now : null, createdAt: now },
      'ON CONFLICT(automation_id, slot_at) DO NOTHING',
    );
    return changes > 0 ? this.get(id) : undefined;
  }

  get(id: string): RunRow | undefined {
    return runRows.byId(this.db, id);
  }

  /** Runs, newest slot first; of one automation when `automationId` is given. */
  list(automationId?: string, limit = 1000): RunRow[] {
    const rows = automationId
      ? this.db
          .prepare('SELECT * FROM runs WHERE automation_id = ? ORDER BY slot_at DESC LIMIT ?')
          .all(automationId, limit)
      : this.db.prepare('SELECT * FROM runs ORDER BY slot_at DESC LIMIT ?').all(limit);
    return rows.map(runRows.read);
  }

  /** The earliest lease among running runs: when one may have to be declared interrupted. */
  earliestLeaseEnd(): number | null {
    const r = this.db
      .prepare(`SELECT MIN(lease_until) AS at FROM runs WHERE status = 'running'`)
      .get() as { at: number | null };
    return r.at;
  }

  /**
   * Declares runs whose lease ran out as interrupted (the process running them died or hung).
   * Call inside `Store.immediate`. Returns them, so the caller can record inbox items.
   */
  expireLeases(now: number): RunRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM runs WHERE status = 'running' AND lease_until IS NOT NULL AND lease_until < ?`,
      )
      .all(now)
      .map(runRows.read);
    const mark = this.db.prepare(
      `UPDATE runs SET status = 'interrupted', finished_at = ?, lease_owner = NULL, lease_until = NULL,
         error = ? WHERE id = ? AND status = 'running'`,
    );
    return rows.map((r) => {
      const error = `Attempt ${r.attempt} was interrupted: the process running it (${r.leaseOwner}) stopped renewing its lease.`;
      mark.run(now, error, r.id);
      return { ...r, status: 'interrupted' as const, finishedAt: now, error };
    });
  }

  /** Runs holding a live lease, across every process on this database. */
  runningCount(): number {
    return (
      this.db.prepare(`SELECT COUNT(*) AS n FROM runs WHERE status = 'running'`).get() as {
        n: number;
      }
    ).n;
  }

  /**
   * Claims the oldest run that may start: a scheduled one, or an interrupted one with attempts
   * left, of an automation still enabled (a manual run goes even when paused). Call inside
   * `Store.immediate`. With `runId`, claims that run only.
   */
  claim(owner: string, now: number, leaseMs: number, runId?: string): RunRow | undefined {
    const r = this.db
      .prepare(
        `SELECT r.id FROM runs r JOIN automations a ON a.id = r.automation_id
         WHERE (r.status = 'scheduled' OR (r.status = 'interrupted' AND r.attempt < a.max_attempts))
           AND ((a.enabled = 1 AND a.removed_at IS NULL) OR r.trigger = 'manual')
           AND (? IS NULL OR r.id = ?)
         ORDER BY r.slot_at, r.id LIMIT 1`,
      )
      .get(runId ?? null, runId ?? null) as { id: string } | undefined;
    if (!r) return undefined;
    this.db
      .prepare(
        `UPDATE runs SET status = 'running', attempt = attempt + 1, lease_owner = ?, lease_until = ?,
           started_at = ?, finished_at = NULL WHERE id = ?`,
      )
      .run(owner, now + leaseMs, now, r.id);
    return this.get(r.id);
  }

  /** Extends a lease; false when the lease was lost (the run was declared interrupted). */
  renewLease(runId: string, owner: string, until: number): boolean {
    return (
      this.db
        .prepare(
          `UPDATE runs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND status = 'running'`,
        )
        .run(until, runId, owner).changes > 0
    );
  }

  /** Records the agent session doing the run's work. */
  setSession(runId: string, sessionId: string): void {
    this.db.prepare('UPDATE runs SET session_id = ? WHERE id = ?').run(sessionId, runId);
  }

  /**
   * Each run's tokens and cost, by run id: those of the session that did its work (a run's
   * session is its own). Runs without a session (missed, skipped, failed before starting) are
   * left out.
   */
  usageOf(runIds: readonly string[]): Map<string, UsageTotals> {
    const out = new Map<string, UsageTotals>();
    // SQLite's default limit on host parameters is 32,766; lists here are at most 1,000 long.
    for (let i = 0; i < runIds.length; i += 500) {
      const ids = runIds.slice(i, i + 500);
      const rows = this.db
        .prepare(
          `SELECT r.id AS runId, u.input_tokens AS inputTokens, u.output_tokens AS outputTokens,
             u.cache_read_tokens AS cacheReadTokens, u.cache_write_tokens AS cacheWriteTokens,
             u.cost_usd AS costUsd
           FROM runs r JOIN sessions u ON u.id = r.session_id
           WHERE r.id IN (${ids.map(() => '?').join(', ')})`,
        )
        .all(...ids) as (UsageTotals & { runId: string })[];
      for (const { runId, ...usage } of rows) out.set(runId, usage);
    }
    return out;
  }

  /** The tokens and cost of every run of an automation, together. */
  automationUsage(automationId: string): UsageTotals {
    return this.db
      .prepare(
        `SELECT ${USAGE_SUMS} FROM runs r JOIN sessions u ON u.id = r.session_id
         WHERE r.automation_id = ?`,
      )
      .get(automationId) as UsageTotals;
  }

  /** Ends a run this owner holds; false when its lease was lost meanwhile. */
  finish(
    runId: string,
    owner: string,
    outcome: {
      status: 'succeeded' | 'failed' | 'interrupted';
      error?: string | null;
      summary?: string | null;
    },
    now = Date.now(),
  ): boolean {
    return (
      this.db
        .prepare(
          `UPDATE runs SET status = ?, error = ?, summary = ?, finished_at = ?, lease_owner = NULL,
             lease_until = NULL WHERE id = ? AND lease_owner = ? AND status = 'running'`,
        )
        .run(outcome.status, outcome.error ?? null, outcome.summary ?? null, now, runId, owner)
        .changes > 0
    );
  }

  /** Marks runs still waiting for a worker as skipped (the automation was paused or removed). */
  skipQueued(automationId: string, reason: string, now = Date.now()): RunRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM runs WHERE automation_id = ? AND trigger = 'schedule'
         AND status = 'scheduled'`,
      )
      .all(automationId)
      .map(runRows.read);
    const mark = this.db.prepare(
      `UPDATE runs SET status = 'skipped', error = ?, finished_at = ? WHERE id = ?`,
    );
    for (const r of rows) mark.run(reason, now, r.id);
    return rows.map((r) => ({ ...r, status: 'skipped' as const, error: reason }));
  }
}
