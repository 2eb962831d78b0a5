import type { Database } from 'better-sqlite3';

export interface EgressDecisionRow {
  at: number;
  sessionId: string | null;
  method: string;
  host: string;
  port: number;
  allowed: boolean;
  reason: string;
  /** Names of the secrets swapped into the request (never values). */
  secrets?: string[] | undefined;
  /** Refused because its host is pinned and a credential was not the person's. */
  pinRefused?: boolean | undefined;
  /** The proxy terminated TLS for it (a host with a secret or a pin). */
  intercepted?: boolean | undefined;
}

/** Every allow/deny decision of the egress proxy, so a person can see what the agent reached. */
export class EgressLogRepo {
  constructor(private readonly db: Database) {}

  record(d: EgressDecisionRow): void {
    this.db
      .prepare(
        `INSERT INTO egress_log (at, session_id, method, host, port, allowed, reason, secrets,
         pin_refused, intercepted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        d.at,
        d.sessionId,
        d.method,
        d.host,
        d.port,
        d.allowed ? 1 : 0,
        d.reason,
        d.secrets && d.secrets.length > 0 ? JSON.stringify(d.secrets) : null,
        d.pinRefused ? 1 : 0,
        d.intercepted ? 1 : 0,
      );
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
      secrets: string | null;
      pin_refused: number;
      intercepted: number;
    }[];
    return rows.map((r) => ({
      at: r.at,
      sessionId: r.session_id,
      method: r.method,
      host: r.host,
      port: r.port,
      allowed: r.allowed === 1,
      reason: r.reason,
      ...(r.secrets ? { secrets: parseNames(r.secrets) } : {}),
      ...(r.pin_refused ? { pinRefused: true } : {}),
      ...(r.intercepted ? { intercepted: true } : {}),
    }));
  }
}

/** The stored list of secret names; a damaged cell reads as none rather than failing the list. */
function parseNames(text: string): string[] {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
