import type { Database } from 'better-sqlite3';

export interface EgressDecisionRow {
  at: number;
  sessionId: string | null;
  method: string;
  host: string;
  port: number;
  allowed: boolean;
  reason: string;
}

/** Every allow/deny decision of the egress proxy, so a person can see what the agent reached. */
export class EgressLogRepo {
  constructor(private readonly db: Database) {}

  record(d: EgressDecisionRow): void {
    this.db
      .prepare(
        'INSERT INTO egress_log (at, session_id, method, host, port, allowed, reason) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(d.at, d.sessionId, d.method, d.host, d.port, d.allowed ? 1 : 0, d.reason);
  }

  list(opts: { sessionId?: string; limit?: number } = {}): EgressDecisionRow[] {
    const limit = opts.limit ?? 500;
    const rows = (
      opts.sessionId
        ? this.db
            .prepare('SELECT * FROM egress_log WHERE session_id = ? ORDER BY id DESC LIMIT ?')
            .all(opts.sessionId, limit)
        : this.db.prepare('SELECT * FROM egress_log ORDER BY id DESC LIMIT ?').all(limit)
    ) as {
      at: number;
      session_id: string | null;
      method: string;
      host: string;
      port: number;
      allowed: number;
      reason: string;
    }[];
    return rows.map((r) => ({
      at: r.at,
      sessionId: r.session_id,
      method: r.method,
      host: r.host,
      port: r.port,
      allowed: r.allowed === 1,
      reason: r.reason,
    }));
  }
}
