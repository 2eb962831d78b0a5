import type { Settings } from '../../shared/api.js';
import { Store } from '../store/store.js';
import { runDoctor, type DoctorInputs } from './doctor.js';
import type { Handlers } from './dispatch.js';
import { EventBus } from './events.js';
import { vmDoctorInputs } from './vm-doctor.js';

export const APP_VERSION = '0.1.0';

export interface CoreOptions {
  dataDir: string;
  host: 'electron' | 'web';
  env?: NodeJS.ProcessEnv;
  doctor?: Omit<DoctorInputs, 'dataDir' | 'env'>;
}

/**
 * The core services wired once and shared by every host; hosts only add a transport.
 * Plain constructor wiring, no container, and one dispose() for all of it.
 */
export class Core {
  readonly store: Store;
  readonly events = new EventBus();
  readonly handlers: Handlers;

  constructor(private readonly opts: CoreOptions) {
    this.store = Store.open(opts.dataDir);
    this.handlers = {
      'app:info': () => ({
        version: APP_VERSION,
        schemaVersion: this.store.schemaVersion,
        dataDir: opts.dataDir,
        host: opts.host,
      }),
      'doctor:run': async () => ({
        checks: await runDoctor({
          dataDir: opts.dataDir,
          env: opts.env ?? process.env,
          ...(opts.doctor ?? (await vmDoctorInputs(opts.dataDir))),
        }),
      }),
      'settings:get': () => this.store.settings.get(),
      'settings:update': (patch) => {
        const next = this.store.settings.update(patch as Partial<Settings>);
        this.events.emit('settings:changed', next);
        return next;
      },
    };
  }

  dispose(): void {
    this.events.dispose();
    this.store.dispose();
  }
}
