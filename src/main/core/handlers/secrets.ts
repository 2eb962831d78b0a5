import type { Core } from '../core.js';
import type { Handlers } from '../dispatch.js';

/** Secrets the VM never sees: listed without values, added from Settings, removed by name. */
export function secretHandlers(core: Core) {
  return {
    'secrets:list': () => {
      const { fix, ...store } = core.secrets.status();
      // The page shows one sentence: what is wrong, then what fixes it.
      return {
        secrets: core.secrets.list(),
        store: fix ? { ...store, detail: `${store.detail} ${fix}` } : store,
      };
    },
    'secrets:add': (req) => core.secrets.add(req, 'settings'),
    'secrets:remove': (req) => ({ removed: core.secrets.remove(req.name) }),
  } satisfies Partial<Handlers>;
}
