import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';
import { nextNumber, RowCodec } from './rows.js';

export interface ArtifactRow {
  id: string;
  sessionId: string | null;
  title: string;
  kind: string;
  version: number;
  content: string;
  createdAt: number;
}

/** An artifact with one version, read from a join of both tables. */
const artifactRows = new RowCodec<ArtifactRow>('artifacts');

/** Artifacts with every version kept, so an edit by the agent never loses the previous one. */
export class ArtifactsRepo {
  constructor(private readonly db: Database) {}

  create(input: {
    sessionId: string | null;
    title: string;
    kind: string;
    content: string;
  }): ArtifactRow {
    const id = newId('art');
    const now = Date.now();
    this.db.transaction(() => {
      this.db
        .prepare(
          'INSERT INTO artifacts (id, session_id, title, kind, created_at) VALUES (?, ?, ?, ?, ?)',
        )
        .run(id, input.sessionId, input.title, input.kind, now);
      this.db
        .prepare(
          'INSERT INTO artifact_versions (artifact_id, version, content, created_at) VALUES (?, 1, ?, ?)',
        )
        .run(id, input.content, now);
    })();
    return {
      id,
      sessionId: input.sessionId,
      title: input.title,
      kind: input.kind,
      version: 1,
      content: input.content,
      createdAt: now,
    };
  }

  addVersion(id: string, content: string): number {
    return this.db.transaction(() => {
      const next = nextNumber(this.db, 'artifact_versions', 'version', 'artifact_id', id);
      this.db
        .prepare(
          'INSERT INTO artifact_versions (artifact_id, version, content, created_at) VALUES (?, ?, ?, ?)',
        )
        .run(id, next, content, Date.now());
      return next;
    })();
  }

  latest(id: string): ArtifactRow | undefined {
    const r = this.db
      .prepare(
        `SELECT a.id, a.session_id, a.title, a.kind, v.version, v.content, v.created_at
         FROM artifacts a JOIN artifact_versions v ON v.artifact_id = a.id
         WHERE a.id = ? ORDER BY v.version DESC LIMIT 1`,
      )
      .get(id);
    return r === undefined ? undefined : artifactRows.read(r);
  }
}
