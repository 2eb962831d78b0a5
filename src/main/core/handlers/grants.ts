import os from 'node:os';
import { PaddockError } from '../../../shared/result.js';
import type { Core, CoreOptions } from '../core.js';
import type { Handlers } from '../dispatch.js';
import { browseFolders } from '../folders.js';

/**
 * Granting folders. The web host grants a typed path or one browsed to; the Electron app only a
 * folder dropped on the window or chosen in the native picker.
 */
export function grantHandlers(core: Core, opts: CoreOptions) {
  const typedPaths = opts.typedPaths ?? opts.host === 'web';
  return {
    'grants:add': (req) => {
      if (!typedPaths) {
        throw new PaddockError(
          'USE_PICKER',
          'In the app, drag the folder onto the window or use Choose folder… to grant it.',
        );
      }
      return core.grantFolder(req.path, req.readOnly);
    },
    'grants:pick': async (req) => {
      if (!opts.pickFolder) {
        throw new PaddockError(
          'NOT_AVAILABLE',
          'There is no folder picker in the browser: type the folder’s path or browse to it.',
        );
      }
      const picked = await opts.pickFolder();
      return { grant: picked ? core.grantFolder(picked, req.readOnly) : null };
    },
    'grants:browse': (req) => {
      if (!typedPaths) {
        throw new PaddockError(
          'USE_PICKER',
          'In the app, use Choose folder… or drag a folder onto the window.',
        );
      }
      return browseFolders(req.path, os.homedir(), opts.dataDir);
    },
  } satisfies Partial<Handlers>;
}
