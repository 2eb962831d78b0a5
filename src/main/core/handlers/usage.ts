import type { Core } from '../core.js';
import type { Handlers } from '../dispatch.js';
import { localTimeZone, usageSummary } from '../usage.js';

/** What the model calls of every task and automation run cost, by calendar month. */
export function usageHandlers(core: Core) {
  return {
    'usage:summary': (req) => usageSummary(core.store, Date.now(), req.tz ?? localTimeZone()),
  } satisfies Partial<Handlers>;
}
