import { artifactFileName } from '../../../shared/app-contract.js';
import { PaddockError } from '../../../shared/result.js';
import type { ArtifactRow } from '../../store/artifacts-repo.js';
import { artifactDocument } from '../artifact-frame.js';
import type { Core } from '../core.js';
import type { Handlers } from '../dispatch.js';

/** What the agent made with `create_artifact`: by task, each version, and as a standalone file. */
export function artifactHandlers(core: Core) {
  const repo = core.store.artifacts;
  const find = (id: string, version?: number): ArtifactRow & { latestVersion: number } => {
    const summary = repo.summary(id);
    if (!summary) throw new PaddockError('NOT_FOUND', `There is no artifact ${id}.`);
    const row = repo.get(id, version);
    if (!row)
      throw new PaddockError(
        'NOT_FOUND',
        `Artifact ${id} has no version ${version}; its versions are 1 to ${summary.latestVersion}.`,
      );
    return { ...row, title: summary.title, latestVersion: summary.latestVersion };
  };
  return {
    'artifacts:list': (req) => {
      if (req.taskId !== undefined && !core.store.sessions.get(req.taskId))
        throw new PaddockError('NOT_FOUND', `There is no task ${req.taskId}.`);
      const rows = repo.list(req.taskId !== undefined ? { sessionId: req.taskId } : {});
      return {
        artifacts: rows.map((r) => ({
          id: r.id,
          taskId: r.sessionId,
          title: r.title,
          kind: r.kind,
          latestVersion: r.latestVersion,
          createdAt: r.createdAt,
          updatedAt: r.updatedAt,
        })),
      };
    },
    'artifacts:get': (req) => {
      const a = find(req.id, req.version);
      return {
        id: a.id,
        sessionId: a.sessionId,
        title: a.title,
        kind: a.kind,
        version: a.version,
        latestVersion: a.latestVersion,
        content: a.content,
        createdAt: a.createdAt,
      };
    },
    'artifacts:versions': (req) => {
      if (!repo.summary(req.id))
        throw new PaddockError('NOT_FOUND', `There is no artifact ${req.id}.`);
      return { versions: repo.versions(req.id) };
    },
    'artifacts:export': (req) => {
      const a = find(req.id, req.version);
      return {
        filename: artifactFileName(a.title, a.version, 'html'),
        html: artifactDocument(
          { kind: a.kind, title: a.title, content: a.content },
          { inline: true },
        ),
      };
    },
  } satisfies Partial<Handlers>;
}
