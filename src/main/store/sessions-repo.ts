import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';

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
  inputTokens: number;
  outputTokens: number;
  costUsd: number;
  createdAt: number;
  updatedAt: number;
}

export interface SessionEventRow {
  sessionId: string;
  seq: number;
  type: string;
  payload: unknown;
  createdAt: number;
}

interface RawSession {
  id: string;
  title: string;
  status: string;
  model: string;
  approval_mode: string;
  folders: string;
  allowlist: string;
  prompt_allowlist: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  created_at: number;
  updated_at: number;
}

function toSession(r: RawSession): SessionRow {
  return {
    id: r.id,
    title: r.title,
    status: r.status,
    model: r.model,
    approvalMode: r.approval_mode,
    folders: JSON.parse(r.folders) as unknown[],
    allowlist: JSON.parse(r.allowlist) as string[],
    promptAllowlist: JSON.parse(r.prompt_allowlist) as string[],
    inputTokens: r.input_tokens,
    outputTokens: r.output_tokens,
    costUsd: r.cost_usd,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

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
  }): SessionRow {
    const now = Date.now();
    const id = newId('ses');
    this.db
      .prepare(
        `INSERT INTO sessions (id, title, status, model, approval_mode, folders, allowlist, prompt_allowlist, created_at, updated_at)
         VALUES (?, ?, 'idle', ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        input.title,
        input.model,
        input.approvalMode,
        JSON.stringify(input.folders ?? []),
        JSON.stringify(input.allowlist ?? []),
        JSON.stringify(input.promptAllowlist ?? []),
        now,
        now,
      );
    return this.get(id)!;
  }

  get(id: string): SessionRow | undefined {
    const r = this.db.prepare('SELECT * FROM sessions WHERE id = ?').get(id) as
      RawSession | undefined;
    return r && toSession(r);
  }

  list(): SessionRow[] {
    const rows = this.db
      .prepare('SELECT * FROM sessions ORDER BY updated_at DESC')
      .all() as RawSession[];
    return rows.map(toSession);
  }

  setStatus(id: string, status: string): void {
    this.db
      .prepare('UPDATE sessions SET status = ?, updated_at = ? WHERE id = ?')
      .run(status, Date.now(), id);
  }

  addUsage(id: string, inputTokens: number, outputTokens: number, costUsd: number): void {
    this.db
      .prepare(
        `UPDATE sessions SET input_tokens = input_tokens + ?, output_tokens = output_tokens + ?,
         cost_usd = cost_usd + ?, updated_at = ? WHERE id = ?`,
      )
      .run(inputTokens, outputTokens, costUsd, Date.now(), id);
  }

  /** Appends one event with the next sequence number, atomically. */
  appendEvent(sessionId: string, type: string, payload: unknown): SessionEventRow {
    const createdAt = Date.now();
    const seq = this.db.transaction(() => {
      const { next } = this.db
        .prepare(
          'SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM session_events WHERE session_id = ?',
        )
        .get(sessionId) as { next: number };
      this.db
        .prepare(
          'INSERT INTO session_events (session_id, seq, type, payload, created_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(sessionId, next, type, JSON.stringify(payload), createdAt);
      return next;
    })();
    return { sessionId, seq, type, payload, createdAt };
  }

  events(sessionId: string, afterSeq = 0): SessionEventRow[] {
    const rows = this.db
      .prepare(
        'SELECT session_id, seq, type, payload, created_at FROM session_events WHERE session_id = ? AND seq > ? ORDER BY seq',
      )
      .all(sessionId, afterSeq) as {
      session_id: string;
      seq: number;
      type: string;
      payload: string;
      created_at: number;
    }[];
    return rows.map((r) => ({
      sessionId: r.session_id,
      seq: r.seq,
      type: r.type,
      payload: JSON.parse(r.payload) as unknown,
      createdAt: r.created_at,
    }));
  }
}
