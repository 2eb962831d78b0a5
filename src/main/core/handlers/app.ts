import fs from 'node:fs';
import path from 'node:path';
import { ELECTRON_ARTIFACT_ORIGIN } from '../../../shared/artifact-policy.js';
import type { Core, CoreOptions } from '../core.js';
import type { Handlers } from '../dispatch.js';
import { runDoctor } from '../doctor.js';
import { vmDoctorInputs } from '../vm-doctor.js';

/** The version the app reports (`app:info`). */
export const APP_VERSION = '0.1.0';

/** The app itself: what it is, its health check, its logs and its VM image. */
export function appHandlers(core: Core, opts: CoreOptions) {
  const env = opts.env ?? process.env;
  return {
    'app:info': () => ({
      version: APP_VERSION,
      schemaVersion: core.store.schemaVersion,
      dataDir: opts.dataDir,
      host: opts.host,
      // The web host adds its frame server's origin (it knows the port); Electron's is fixed.
      ...(opts.host === 'electron' ? { artifactOrigin: ELECTRON_ARTIFACT_ORIGIN } : {}),
    }),
    'doctor:run': async () => {
      const key = core.apiKeys.status();
      return {
        checks: await runDoctor({
          dataDir: opts.dataDir,
          env,
          apiKey: {
            configured: key.configured,
            detail: key.configured
              ? `${key.source === 'stored' ? 'Entered in Paddock' : 'ANTHROPIC_API_KEY'} (${key.masked})${key.baseURL ? `, base URL ${key.baseURL}` : ''}.`
              : 'No API key is set.',
          },
          secrets: core.secrets.status(),
          ...(opts.doctor ?? (await vmDoctorInputs(opts.dataDir, core.backend))),
        }),
      };
    },
    'image:build': () => ({ started: core.images.start() }),
    'app:openLogs': async () => {
      const dir = path.join(opts.dataDir, 'logs');
      fs.mkdirSync(dir, { recursive: true });
      if (!opts.openPath) return { path: dir, opened: false };
      await opts.openPath(dir);
      return { path: dir, opened: true };
    },
  } satisfies Partial<Handlers>;
}
