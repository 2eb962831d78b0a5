import type { Core } from '../core.js';
import type { Handlers } from '../dispatch.js';

/** Automations, their runs, and the inbox their results land in. */
export function automationHandlers(core: Core) {
  const a = core.automations;
  return {
    'automations:list': () => ({ automations: a.list() }),
    'automations:create': (req) => a.create(req),
    'automations:update': (req) => a.update(req),
    'automations:preview': (req) => a.preview(req.schedule, req.tz),
    'automations:pause': (req) => a.pause(req.id),
    'automations:resume': (req) => a.resume(req.id),
    'automations:remove': (req) => a.remove(req.id),
    'automations:runNow': (req) => a.runNow(req.id),
    'automations:runs': (req) => ({ runs: a.runs(req.automationId, req.limit) }),
    'inbox:list': (req) => a.inbox(req.includeArchived),
    'inbox:markRead': (req) => a.markRead(req.id, req.read),
    'inbox:archive': (req) => a.archive(req.id, req.archived),
    'inbox:unreadCount': () => ({ unread: a.unreadCount() }),
  } satisfies Partial<Handlers>;
}
