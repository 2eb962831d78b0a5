import type { Channel, Req, Res } from '../../shared/api.js';
import { createCore } from '../core/core.js';
import { dataDir } from '../platform/app-paths.js';

/**
 * Asks the core one question through the same handlers the app and `paddock serve` answer with
 * (no scheduler: a one-shot command), and closes it whatever happens.
 */
export async function askCore<C extends Channel>(channel: C, req: Req<C>): Promise<Res<C>> {
  const core = createCore({ dataDir: dataDir(), host: 'cli', runScheduler: false });
  try {
    const handler = core.handlers[channel] as (r: Req<C>) => Res<C> | Promise<Res<C>>;
    return await handler(req);
  } finally {
    await core.close();
  }
}
