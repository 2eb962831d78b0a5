import { EventEmitter } from 'node:events';
import path from 'node:path';
import type { Grant } from '../../shared/app-contract.js';
import { PaddockError } from '../../shared/result.js';
import { Store } from '../store/store.js';
import { chooseBackend, type BackendChoice } from '../vm/choose-backend.js';
import { resolveGrants } from '../vm/grants.js';
import { ProxyCa } from '../vm/egress/proxy-ca.js';
import { WarmPool } from '../vm/warm-pool.js';
import { ApiKeys, MemorySecretStore, type SecretStore } from './api-keys.js';
import type { SessionRunDeps } from './automation-runs.js';
import { AppAutomations, type AppSchedulerOptions } from './automations.js';
import { ChangeService } from './changes/service.js';
import type { DoctorInputs } from './doctor.js';
import type { Handlers } from './dispatch.js';
import { EventBus } from './events.js';
import { appHandlers } from './handlers/app.js';
import { artifactHandlers } from './handlers/artifacts.js';
import { automationHandlers } from './handlers/automations.js';
import { changeHandlers } from './handlers/changes.js';
import { fileHandlers } from './handlers/files.js';
import { grantHandlers } from './handlers/grants.js';
import { secretHandlers } from './handlers/secrets.js';
import { settingsHandlers } from './handlers/settings.js';
import { taskHandlers } from './handlers/tasks.js';
import { usageHandlers } from './handlers/usage.js';
import { ImageBuilds } from './image-builds.js';
import { localKeySource, type VaultKeySource } from './secrets/key-source.js';
import { SecretsService } from './secrets/service.js';
import { SessionFactory } from './sessions.js';
import { TaskManager } from './tasks.js';

export { APP_VERSION } from './handlers/app.js';

export interface CoreOptions {
  dataDir: string;
  /** Which host built this core (reported by `app:info`). */
  host: 'electron' | 'web' | 'cli';
  env?: NodeJS.ProcessEnv;
  doctor?: Omit<DoctorInputs, 'dataDir' | 'env'>;
  /** Where an API key entered in the UI is kept (Electron: safeStorage); default: in memory. */
  secrets?: SecretStore;
  /** The native folder picker (Electron); without it `grants:pick` says to type or browse. */
  pickFolder?: () => Promise<string | null>;
  /** Opens a folder in the system's file manager (Electron's shell.openPath). */
  openPath?: (p: string) => Promise<void>;
  /**
   * Whether the page may grant a folder by typing its path (`grants:add`). The web host: yes,
   * that is how folders are granted there. Electron: no, only drop or the native picker.
   */
  typedPaths?: boolean;
  /** Scheduler knobs (tests: a fake clock, short leases); defaults suit the app. */
  scheduler?: AppSchedulerOptions;
  /**
   * Whether this core runs the automation scheduler (the app, `serve`, `daemon`: yes; a one-shot
   * CLI command such as `paddock automations add`: no, the running ones notice its writes).
   */
  runScheduler?: boolean;
  /**
   * Where an automation run's staged changes are read from (default: the run's VM). Another
   * source stands in where no VM can run.
   */
  runStagedSource?: SessionRunDeps['stagedSource'];
  /**
   * Where the secrets' vault key is kept (Electron: main's safeStorage); default: the login
   * keychain on macOS, else a file only this user can read.
   */
  vaultKeys?: VaultKeySource;
}

/**
 * The one way every host builds the core: the Electron app's core process, `paddock serve`,
 * `run`, `exec`, `automations` and `daemon`. Hosts only parse arguments, print, and connect a
 * transport to what this returns.
 */
export function createCore(opts: CoreOptions): Core {
  return new Core(opts);
}

/** System power changes, for the scheduler: missed automation slots are judged on resume. */
type PowerEvents = { resume: []; suspend: [] };

/**
 * The core services wired once and shared by every host; hosts only add a transport.
 * Plain constructor wiring, no container, and one dispose() for all of it.
 */
export class Core {
  readonly store: Store;
  readonly events = new EventBus();
  /** Electron forwards powerMonitor here; the scheduler listens (`core.power.on('resume', …)`). */
  readonly power = new EventEmitter<PowerEvents>();
  readonly apiKeys: ApiKeys;
  /** The platform's VM backend, chosen once (and why, for `paddock doctor`). */
  readonly backend: BackendChoice;
  /** The one way a sandboxed agent session is made: tasks, automation runs, `paddock run`. */
  readonly sessions: SessionFactory;
  readonly tasks: TaskManager;
  readonly images: ImageBuilds;
  /** VMs booted ahead for the new-task page (one at a time: each holds its memory). */
  readonly pool: WarmPool;
  readonly handlers: Handlers;
  /** Automations: the scheduler of this app process, the inbox, and their contract view. */
  readonly automations: AppAutomations;
  /** Staged folder edits of review grants: changesets, applying them, the undo journal. */
  readonly changes: ChangeService;
  /** Secrets the VM never sees: stored sealed, handed to a session's egress proxy by name. */
  readonly secrets: SecretsService;
  /** The per-install CA of the egress proxy, opened (or made) the first time a session needs it. */
  private proxyCa: Promise<ProxyCa> | undefined;

  constructor(private readonly opts: CoreOptions) {
    const env = opts.env ?? process.env;
    this.store = Store.open(opts.dataDir);
    this.apiKeys = new ApiKeys(opts.secrets ?? new MemorySecretStore(), env);
    this.secrets = new SecretsService({
      store: this.store,
      events: this.events,
      keys: opts.vaultKeys ?? localKeySource(opts.dataDir),
    });
    this.backend = chooseBackend({ dataDir: opts.dataDir, env });
    this.pool = new WarmPool({
      backend: this.backend.backend,
      dir: path.join(opts.dataDir, 'warm'),
      maxVms: 1,
      refill: false,
    });
    this.sessions = new SessionFactory({
      store: this.store,
      dataDir: opts.dataDir,
      backend: this.backend.backend,
      apiKeys: this.apiKeys,
      pool: this.pool,
      scheduleFor: (grants) => this.automations.scheduleFor(grants),
      secrets: this.secrets,
      // SECURITY: the CA's key stays in the data folder (0600); only its certificate enters a VM.
      proxyCa: () =>
        (this.proxyCa ??= ProxyCa.open(path.join(opts.dataDir, 'proxy-ca')).catch((e: unknown) => {
          this.proxyCa = undefined;
          throw e;
        })),
    });
    // What every domain of the core is built on.
    const base = {
      store: this.store,
      events: this.events,
      dataDir: opts.dataDir,
      sessions: this.sessions,
    };
    this.changes = new ChangeService({
      store: this.store,
      events: this.events,
      dataDir: opts.dataDir,
      vmFor: (id) => this.tasks.vmOf(id),
    });
    this.automations = new AppAutomations({
      ...base,
      ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
      onAgentEvent: (taskId, event) => this.events.emit('task:event', { taskId, event }),
      onSessionChanged: (id) => this.tasks.touched(id),
      // A run's review folders are staged (and applied, if it says so) before its VM stops.
      changes: this.changes,
      ...(opts.runStagedSource ? { stagedSource: opts.runStagedSource } : {}),
    });
    this.tasks = new TaskManager({
      ...base,
      pool: this.pool,
      // What the run staged in review grants is read (and copied out of the VM) as it ends.
      onRunEnded: (id) =>
        void this.changes.refresh(id).catch((e: unknown) => {
          if (e instanceof PaddockError && e.code === 'CLOSING') return;
          this.events.emit('task:event', {
            taskId: id,
            event: {
              type: 'notice',
              message: `The changes to review could not be read: ${(e as Error).message}`,
            },
          });
        }),
    });
    this.images = new ImageBuilds(opts.dataDir, this.events);
    this.handlers = {
      ...appHandlers(this, opts),
      ...settingsHandlers(this),
      ...grantHandlers(this, opts),
      ...taskHandlers(this),
      ...fileHandlers(this),
      ...automationHandlers(this),
      ...artifactHandlers(this),
      ...changeHandlers(this),
      ...usageHandlers(this),
      ...secretHandlers(this),
    };
    // One scheduler per app process; `paddock daemon` may run too (leases keep them apart).
    if (opts.runScheduler !== false) this.automations.start();
    // Slots that passed while the machine slept are judged on wake (Electron's powerMonitor).
    this.power.on('resume', () => this.automations.scheduler.wake());
  }

  /**
   * Grants a folder the person chose (typed in the web host, dropped or picked in Electron):
   * resolved and judged by resolveGrants, then kept, or the same grant returned if it exists.
   */
  grantFolder(hostPath: string, readOnly: boolean): Grant {
    const [share] = resolveGrants([{ path: hostPath, readOnly }], { dataDir: this.opts.dataDir });
    if (!share) throw new PaddockError('BAD_GRANT', 'No folder was given.');
    const existing = this.store.grants
      .list()
      .find((g) => g.hostPath === share.hostPath && g.readOnly === share.readOnly);
    const g = existing ?? this.store.grants.add(share.hostPath, share.name, share.readOnly);
    return { id: g.id, hostPath: g.hostPath, name: g.name, readOnly: g.readOnly };
  }

  /** Stops running tasks and their VMs, then closes everything. */
  async close(): Promise<void> {
    // Runs in progress are recorded as interrupted (and retried on the next start).
    await this.automations.stop();
    await this.tasks.dispose();
    await this.pool.dispose();
    this.dispose();
  }

  /** Closes at once without waiting for running work (tests, and after close()). */
  dispose(): void {
    this.automations.dispose();
    this.images.dispose();
    this.changes.dispose();
    this.secrets.dispose();
    this.power.removeAllListeners();
    this.events.dispose();
    this.store.dispose();
  }
}
