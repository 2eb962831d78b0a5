import type { Settings } from '../../../shared/api.js';
import { checkedAllowlistEntry, parseAllowlistEntry } from '../../vm/egress/allowlist.js';
import type { Core } from '../core.js';
import type { Handlers } from '../dispatch.js';

/**
 * A settings patch with its allowlists checked and canonicalised before anything is saved (so
 * `*` and other entries that would switch the allowlist off are refused with a sentence), and an
 * entry typed in Settings taken out of the prompt-answer list: typing it makes it configured.
 */
function checkedAllowlists(patch: Partial<Settings>, current: Settings): Partial<Settings> {
  const out = { ...patch };
  if (patch.networkAllowlist)
    out.networkAllowlist = [
      ...new Set(patch.networkAllowlist.map((e) => checkedAllowlistEntry(e, 'configured'))),
    ];
  if (patch.promptAllowlist)
    out.promptAllowlist = [
      ...new Set(patch.promptAllowlist.map((e) => checkedAllowlistEntry(e, 'prompt'))),
    ];
  if (out.networkAllowlist) {
    const configured = new Set(out.networkAllowlist);
    const prompt = out.promptAllowlist ?? current.promptAllowlist;
    const kept = prompt.filter((e) => {
      try {
        return !configured.has(parseAllowlistEntry(e, { source: 'prompt' }).text);
      } catch {
        return true;
      }
    });
    if (kept.length !== prompt.length || out.promptAllowlist) out.promptAllowlist = kept;
  }
  return out;
}

/** Settings and the API key. */
export function settingsHandlers(core: Core) {
  return {
    'settings:get': () => core.store.settings.get(),
    'settings:update': (patch) => {
      const next = core.store.settings.update(
        checkedAllowlists(patch as Partial<Settings>, core.store.settings.get()),
      );
      core.events.emit('settings:changed', next);
      return next;
    },
    'settings:apiKey': () => core.apiKeys.status(),
    'settings:setApiKey': (req) => core.apiKeys.set(req.key),
    'models:list': async () => ({ models: await core.apiKeys.models() }),
  } satisfies Partial<Handlers>;
}
