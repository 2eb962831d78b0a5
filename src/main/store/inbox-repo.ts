import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';
import { RowCodec } from './rows.js';

/** Inbox states: new, opened, put away. */
export type InboxState = 'unread' | 'read' | 'archived';

/** One inbox item: what became of one run. */
export interface InboxItemRow {
  id: string;
  runId: string;
  automationId: string | null;
  /** The run status this item reports (succeeded, failed, missed, interrupted, skipped). */
  kind: string;
  title: string;
  state: InboxState;
  summary: string;
  createdAt: number;
  readAt: number | null;
}

const itemRows = new RowCodec<InboxItemRow>('inbox_items');

/** The inbox: one item per finished, missed or skipped run, unread until the person opens it. */
export class InboxRepo {
  constructor(private readonly db: Database) {}

  /** Adds an unread item; returns its id. */
  add(
    input: { runId: string; automationId: string; kind: string; title: string; summary: string },
    now = Date.now(),
  ): string {
    const id = newId('inbox');
    itemRows.insert(this.db, { ...input, id, state: 'unread', createdAt: now });
    return id;
  }

  /** Items, newest first; archived ones only when asked. */
  list(
    opts: { state?: InboxState; includeArchived?: boolean; limit?: number } = {},
  ): InboxItemRow[] {
    const rows = opts.state
      ? this.db
          .prepare(
            'SELECT * FROM inbox_items WHERE state = ? ORDER BY created_at DESC, rowid DESC LIMIT ?',
          )
          .all(opts.state, opts.limit ?? 1000)
      : this.db
          .prepare(
            `SELECT * FROM inbox_items ${opts.includeArchived ? '' : "WHERE state != 'archived'"}
             ORDER BY created_at DESC, rowid DESC LIMIT ?`,
          )
          .all(opts.limit ?? 1000);
    return rows.map(itemRows.read);
  }

  get(id: string): InboxItemRow | undefined {
    return itemRows.byId(this.db, id);
  }

  /** Items not opened yet: the number on the sidebar's badge. */
  unreadCount(): number {
    return (
      this.db.prepare(`SELECT COUNT(*) AS n FROM inbox_items WHERE state = 'unread'`).get() as {
        n: number;
      }
    ).n;
  }

  setState(id: string, state: InboxState, now = Date.now()): boolean {
    return (
      this.db
        .prepare(
          `UPDATE inbox_items SET state = ?, read_at = CASE WHEN ? = 'unread' THEN NULL ELSE COALESCE(read_at, ?) END
           WHERE id = ?`,
        )
        .run(state, state, now, id).changes > 0
    );
  }
}
