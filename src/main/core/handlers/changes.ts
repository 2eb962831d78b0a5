import type { Core } from '../core.js';
import type { Handlers } from '../dispatch.js';

/** Staged folder edits of review grants: listed, shown, refreshed, applied, discarded, undone. */
export function changeHandlers(core: Core) {
  const changes = core.changes;
  return {
    'changes:list': (req) => ({ changesets: changes.list(req.taskId) }),
    'changes:get': (req) => changes.get(req.id),
    'changes:file': (req) => changes.file(req.id, req.path),
    'changes:refresh': async (req) => ({ changesets: await changes.refresh(req.taskId) }),
    'changes:apply': (req) => changes.apply(req.id, req.paths),
    'changes:discard': (req) => changes.discard(req.id, req.paths),
    'changes:undo': (req) => changes.undo(req.id, req.paths),
    'changes:storage': () => changes.storage(),
  } satisfies Partial<Handlers>;
}
