import type { Core } from '../core.js';
import type { Handlers } from '../dispatch.js';

/** Tasks and the questions their agents ask. */
export function taskHandlers(core: Core) {
  const { tasks } = core;
  return {
    'tasks:create': (req) => tasks.create(req),
    'tasks:list': (req) => ({ tasks: tasks.list(req.query) }),
    'tasks:get': (req) => tasks.get(req.id),
    'tasks:send': (req) => tasks.send(req.id, req.prompt),
    'tasks:cancel': (req) => tasks.cancel(req.id),
    'tasks:prewarm': async (req) => ({ warming: await tasks.prewarm(req.folders) }),
    'approvals:answer': (req) => ({ answered: tasks.answer(req.id, req.answer) }),
  } satisfies Partial<Handlers>;
}
