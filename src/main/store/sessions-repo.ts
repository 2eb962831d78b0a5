import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';
import { nextNumber, RowCodec } from './rows.js';

export interface SessionRow {
  id: string;
  title: string;
  status: string;
  model: string;
  approvalMode: string;
  folders: unknown[];
  /** Entries a person configured (Settings, the task's form, `--allow-host`). */
  allowlist: string[];
  /** Entries from answers to a prompt ("always allow"); they never open internal addresses. */
  promptAllowlist: string[];
  /** Names of the secrets it may use (placeholders in its VM, swapped by the egress proxy). */
  secrets: string[];
  /** Hosts pinned to the person's secrets for this session, on top of Settings' and the secrets'. */
  pinHosts: string[];
  /** Uncached input tokens. */
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  costUsd: number;
  createdAt: number;
  updatedAt: number;
}

/** Tokens of one or more model calls, as billed: uncached input, output, cache reads, cache writes. */
export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

/** Tokens and cost summed over model calls. */
export type UsageTotals = TokenUsage & { costUsd: number };

/**
 * The SELECT list that sums usage columns of the table aliased `u` (usage_log or sessions) into
 * the fields of {@link UsageTotals}; zero when no row matches.
 */
export const USAGE_SUMS = `COALESCE(SUM(u.input_tokens), 0) AS inputTokens,
  COALESCE(SUM(u.output_tokens), 0) AS outputTokens,
  COALESCE(SUM(u.cache_read_tokens), 0) AS cacheReadTokens,
  COALESCE(SUM(u.cache_write_tokens), 0) AS cacheWriteTokens,
  COALESCE(SUM(u.cost_usd), 0) AS costUsd`;

export interface SessionEventRow {
  sessionId: string;
  seq: number;
  type: string;
  payload: unknown;
  createdAt: number;
}

const sessionRows = new RowCodec<SessionRow>('sessions', {
  json: ['folders', 'allowlist', 'promptAllowlist', 'secrets', 'pinHosts'],
});
const eventRows = new RowCodec<SessionEventRow>('session_events', { json: ['payload'] });

/** Agent sessions and their append-only event log, written as things happen. */
export class SessionsRepo {
  constructor(private readonly db: Database) {}

  create(input: {
    title: string;
    model: string;
    approvalMode: string;
    folders?: unknown[];
    allowlist?: string[];
    promptAllowlist?: string[];
    secrets?: string[];
    pinHosts?: string[];
  }): SessionRow {
    const now = Date.now();
    const id = newId('ses');
    // Unset folders and allowlists take the schema's default: none.
    sessionRows.insert(this.db, { ...input, id, status: 'idle', createdAt: now, updatedAt: now });
    return this.get(id)!;
  }

  get(id: string): SessionRow | undefined {
    return sessionRows.byId(this.db, id);
  }

  list(): SessionRow[] {
    return this.db
      .prepare('SELECT * FROM sessions ORDER BY updated_at DESC')
      .all()
      .map(sessionRows.read);
  }

  setStatus(id: string, status: string): void {
    this.db
      .prepare('UPDATE sessions SET status = ?, updated_at = ? WHERE id = ?')
      .run(status, Date.now(), id);
  }

  /**
   * Adds one model call's tokens (cache reads and writes apart from uncached input) and cost to
   * the session, and logs the call with its time, so usage can be totalled over any span.
   */
  addUsage(id: string, usage: TokenUsage, costUsd: number, at = Date.now()): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `UPDATE sessions SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,
           cache_read_tokens = cache_read_tokens + ?, cache_write_tokens = cache_write_tokens + ?,
           cost_usd = cost_usd + ?, updated_at = ? WHERE id = ?`,
        )
        .run(
          usage.inputTokens,
          usage.outputTokens,
          usage.cacheReadTokens,
          usage.cacheWriteTokens,
          costUsd,
          at,
          id,
        );
      this.db
        .prepare(
          `INSERT INTO usage_log (session_id, at, input_tokens, output_tokens, cache_read_tokens,
           cache_write_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          id,
          at,
          usage.inputTokens,
          usage.outputTokens,
          usage.cacheReadTokens,
          usage.cacheWriteTokens,
          costUsd,
        );
    })();
  }

  /** Every model call's tokens and cost from `from` (inclusive) to `to` (exclusive), epoch ms. */
  usageBetween(from: number, to: number): UsageTotals {
    return this.db
      .prepare(`SELECT ${USAGE_SUMS} FROM usage_log AS u WHERE u.at >= ? AND u.at < ?`)
      .get(from, to) as UsageTotals;
  }

  /** Appends one event with the next sequence number, atomically. */
  appendEvent(sessionId: string, type: string, payload: unknown): SessionEventRow {
    const event = { sessionId, seq: 0, type, payload, createdAt: Date.now() };
    this.db.transaction(() => {
      event.seq = nextNumber(this.db, 'session_events', 'seq', 'session_id', sessionId);
      eventRows.insert(this.db, event);
    })();
    return event;
  }

  events(sessionId: string, afterSeq = 0): SessionEventRow[] {
    return this.db
      .prepare('SELECT * FROM session_events WHERE session_id = ? AND seq > ? ORDER BY seq')
      .all(sessionId, afterSeq)
      .map(eventRows.read);
  }
}
