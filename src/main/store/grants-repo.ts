import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';
import { PaddockError } from '../../shared/result.js';

export interface GrantRow {
  id: string;
  hostPath: string;
  name: string;
  readOnly: boolean;
  createdAt: number;
}

/** Folders the person granted by an explicit act; the VM layer resolves and mounts them. */
export class GrantsRepo {
  constructor(private readonly db: Database) {}

  add(hostPath: string, name: string, readOnly: boolean): GrantRow {
    const row = { id: newId('grant'), hostPath, name, readOnly, createdAt: Date.now() };
    this.db
      .prepare(
        'INSERT INTO grants (id, host_path, name, read_only, created_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(row.id, hostPath, name, readOnly ? 1 : 0, row.createdAt);
    return row;
  }

  /**
   * The folders of granted ids, each with the mode asked for (`review` passed on when asked);
   * GRANT_MISSING when one is no longer granted. Callers judge the paths again (resolveGrants)
   * before a VM sees them.
   */
  folders(
    wanted: { id: string; readOnly: boolean; review?: boolean | undefined }[],
  ): { hostPath: string; readOnly: boolean; review?: boolean }[] {
    const grants = this.list();
    return wanted.map((f) => {
      const g = grants.find((x) => x.id === f.id);
      if (!g)
        throw new PaddockError(
          'GRANT_MISSING',
          'One of the folders is no longer granted; add it again.',
        );
      return {
        hostPath: g.hostPath,
        readOnly: f.readOnly,
        ...(f.review !== undefined ? { review: f.review } : {}),
      };
    });
  }

  list(): GrantRow[] {
    const rows = this.db
      .prepare('SELECT id, host_path, name, read_only, created_at FROM grants ORDER BY created_at')
      .all() as {
      id: string;
      host_path: string;
      name: string;
      read_only: number;
      created_at: number;
    }[];
    return rows.map((r) => ({
      id: r.id,
      hostPath: r.host_path,
      name: r.name,
      readOnly: r.read_only === 1,
      createdAt: r.created_at,
    }));
  }

  remove(id: string): boolean {
    return this.db.prepare('DELETE FROM grants WHERE id = ?').run(id).changes > 0;
  }
}
