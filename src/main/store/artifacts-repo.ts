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

/** One artifact as a list shows it: its newest version and when it last changed. */
export interface ArtifactSummaryRow {
  id: string;
  sessionId: string | null;
  title: string;
  kind: string;
  latestVersion: number;
  createdAt: number;
  updatedAt: number;
}

/** One stored version, without its content; `size` is in bytes (UTF-8). */
export interface ArtifactVersionRow {
  version: number;
  createdAt: number;
  size: number;
}

/** An artifact with one version, read from a join of both tables. */
const artifactRows = new RowCodec<ArtifactRow>('artifacts');
const summaryRows = new RowCodec<ArtifactSummaryRow>('artifacts');
const versionRows = new RowCodec<ArtifactVersionRow>('artifact_versions');

const SUMMARY_SELECT = `SELECT a.id, a.session_id, a.title, a.kind, a.created_at,
    MAX(v.version) AS latest_version, MAX(v.created_at) AS updated_at
  FROM artifacts a JOIN artifact_versions v ON v.artifact_id = a.id`;

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

  /**
   * Adds a version; a new `title` renames the artifact (the versions keep their content only).
   * Returns the new version's number.
   */
  addVersion(id: string, content: string, title?: string): number {
    return this.db.transaction(() => {
      if (title !== undefined)
        this.db.prepare('UPDATE artifacts SET title = ? WHERE id = ?').run(title, id);
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

  /** One version of an artifact; the newest when `version` is left out. */
  get(id: string, version?: number): ArtifactRow | undefined {
    if (version === undefined) return this.latest(id);
    const r = this.db
      .prepare(
        `SELECT a.id, a.session_id, a.title, a.kind, v.version, v.content, v.created_at
         FROM artifacts a JOIN artifact_versions v ON v.artifact_id = a.id
         WHERE a.id = ? AND v.version = ?`,
      )
      .get(id, version);
    return r === undefined ? undefined : artifactRows.read(r);
  }

  /** One artifact with its newest version number, without content. */
  summary(id: string): ArtifactSummaryRow | undefined {
    const r = this.db.prepare(`${SUMMARY_SELECT} WHERE a.id = ? GROUP BY a.id`).get(id);
    return r === undefined ? undefined : summaryRows.read(r);
  }

  /**
   * A session's artifacts in the order they were made (every artifact when `sessionId` is left
   * out, newest change first), at most `limit`.
   */
  list(opts: { sessionId?: string; limit?: number } = {}): ArtifactSummaryRow[] {
    const limit = opts.limit ?? 500;
    const rows =
      opts.sessionId === undefined
        ? this.db
            .prepare(`${SUMMARY_SELECT} GROUP BY a.id ORDER BY updated_at DESC, a.id LIMIT ?`)
            .all(limit)
        : this.db
            .prepare(
              `${SUMMARY_SELECT} WHERE a.session_id = ? GROUP BY a.id ORDER BY a.created_at, a.rowid LIMIT ?`,
            )
            .all(opts.sessionId, limit);
    return rows.map(summaryRows.read);
  }

  /** Every version of an artifact, oldest first, with its size in bytes. */
  versions(id: string): ArtifactVersionRow[] {
    return this.db
      .prepare(
        `SELECT version, created_at, length(CAST(content AS BLOB)) AS size
         FROM artifact_versions WHERE artifact_id = ? ORDER BY version`,
      )
      .all(id)
      .map(versionRows.read);
  }
}
