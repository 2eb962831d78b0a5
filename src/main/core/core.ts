import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Settings } from '../../shared/api.js';
import type { Grant } from '../../shared/app-contract.js';
import { PaddockError } from '../../shared/result.js';
import { Store } from '../store/store.js';
import {
  InvalidAllowlistEntryError,
  parseAllowlistEntry,
  type AllowlistSource,
} from '../vm/egress/allowlist.js';
import { resolveGrants } from '../vm/grants.js';
import { WarmPool } from '../vm/warm-pool.js';
import { ApiKeys, MemorySecretStore, type SecretStore } from './api-keys.js';
import { AppAutomations, type AppSchedulerOptions } from './automations.js';
import { runDoctor, type DoctorInputs } from './doctor.js';
import type { Handlers } from './dispatch.js';
import { EventBus } from './events.js';
import { browseFolders } from './folders.js';
import { ImageBuilds } from './image-builds.js';
import { TaskManager } from './tasks.js';
import { vmDoctorInputs } from './vm-doctor.js';
import { chooseBackend } from '../vm/choose-backend.js';

/** The version the app reports (`app:info`). */
export const APP_VERSION = '0.1.0';

/** Canonical text of one entry, or a BAD_ALLOW_HOST error with the parser's sentence. */
function canonicalEntry(entry: string, source: AllowlistSource): string {
  try {
    return parseAllowlistEntry(entry, { source }).text;
  } catch (e) {
    if (e instanceof InvalidAllowlistEntryError)
      throw new PaddockError('BAD_ALLOW_HOST', e.message);
    throw e;
  }
}

/**
 * A settings patch with its allowlists checked and canonicalised before anything is saved (so
 * `*` and other entries that would switch the allowlist off are refused with a sentence), and an
 * entry typed in Settings taken out of the prompt-answer list: typing it makes it configured.
 */
function checkedAllowlists(patch: Partial<Settings>, current: Settings): Partial<Settings> {
  const out = { ...patch };
  if (patch.networkAllowlist)
    out.networkAllowlist = [
      ...new Set(patch.networkAllowlist.map((e) => canonicalEntry(e, 'configured'))),
    ];
  if (patch.promptAllowlist)
    out.promptAllowlist = [
      ...new Set(patch.promptAllowlist.map((e) => canonicalEntry(e, 'prompt'))),
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
export type PowerEvents = { resume: []; suspend: [] };

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
  readonly tasks: TaskManager;
  readonly images: ImageBuilds;
  /** VMs booted ahead for the new-task page (one at a time: each holds its memory). */
  readonly pool: WarmPool;
  readonly handlers: Handlers;
  /** Automations: the scheduler of this app process, the inbox, and their contract view. */
  readonly automations: AppAutomations;

  constructor(private readonly opts: CoreOptions) {
    const env = opts.env ?? process.env;
    this.store = Store.open(opts.dataDir);
    this.apiKeys = new ApiKeys(opts.secrets ?? new MemorySecretStore(), env);
    this.pool = new WarmPool({
      backend: chooseBackend({ dataDir: opts.dataDir, env }).backend,
      dir: path.join(opts.dataDir, 'warm'),
      maxVms: 1,
      refill: false,
    });
    this.automations = new AppAutomations({
      store: this.store,
      events: this.events,
      dataDir: opts.dataDir,
      apiKeys: this.apiKeys,
      ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
      onAgentEvent: (taskId, event) => this.events.emit('task:event', { taskId, event }),
      onSessionChanged: (id) => this.tasks.touched(id),
    });
    this.tasks = new TaskManager({
      store: this.store,
      events: this.events,
      dataDir: opts.dataDir,
      apiKeys: this.apiKeys,
      pool: this.pool,
      scheduleAutomation: (task) => this.automations.scheduleFor(task),
    });
    this.images = new ImageBuilds(opts.dataDir, this.events);
    const typedPaths = opts.typedPaths ?? opts.host === 'web';
    this.handlers = {
      'app:info': () => ({
        version: APP_VERSION,
        schemaVersion: this.store.schemaVersion,
        dataDir: opts.dataDir,
        host: opts.host,
      }),
      'doctor:run': async () => {
        const key = this.apiKeys.status();
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
            ...(opts.doctor ?? (await vmDoctorInputs(opts.dataDir))),
          }),
        };
      },
      'settings:get': () => this.store.settings.get(),
      'settings:update': (patch) => {
        const next = this.store.settings.update(
          checkedAllowlists(patch as Partial<Settings>, this.store.settings.get()),
        );
        this.events.emit('settings:changed', next);
        return next;
      },
      'tasks:create': (req) => this.tasks.create(req),
      'tasks:list': (req) => ({ tasks: this.tasks.list(req.query) }),
      'tasks:get': (req) => this.tasks.get(req.id),
      'tasks:send': (req) => this.tasks.send(req.id, req.prompt),
      'tasks:cancel': (req) => this.tasks.cancel(req.id),
      'tasks:prewarm': async (req) => ({ warming: await this.tasks.prewarm(req.folders) }),
      'approvals:answer': (req) => ({ answered: this.tasks.answer(req.id, req.answer) }),
      'grants:add': (req) => {
        if (!typedPaths) {
          throw new PaddockError(
            'USE_PICKER',
            'In the app, drag the folder onto the window or use Choose folder… to grant it.',
          );
        }
        return this.grantFolder(req.path, req.readOnly);
      },
      'grants:pick': async (req) => {
        if (!opts.pickFolder) {
          throw new PaddockError(
            'NOT_AVAILABLE',
            'There is no folder picker in the browser: type the folder’s path or browse to it.',
          );
        }
        const picked = await opts.pickFolder();
        return { grant: picked ? this.grantFolder(picked, req.readOnly) : null };
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
      'settings:apiKey': () => this.apiKeys.status(),
      'settings:setApiKey': (req) => this.apiKeys.set(req.key),
      'models:list': async () => ({ models: await this.apiKeys.models() }),
      'image:build': () => ({ started: this.images.start() }),
      'app:openLogs': async () => {
        const dir = path.join(opts.dataDir, 'logs');
        fs.mkdirSync(dir, { recursive: true });
        if (!opts.openPath) return { path: dir, opened: false };
        await opts.openPath(dir);
        return { path: dir, opened: true };
      },
      'automations:list': () => ({ automations: this.automations.list() }),
      'automations:create': (req) => this.automations.create(req),
      'automations:update': (req) => this.automations.update(req),
      'automations:preview': (req) => this.automations.preview(req.schedule, req.tz),
      'automations:pause': (req) => this.automations.pause(req.id),
      'automations:resume': (req) => this.automations.resume(req.id),
      'automations:remove': (req) => this.automations.remove(req.id),
      'automations:runNow': (req) => this.automations.runNow(req.id),
      'automations:runs': (req) => ({ runs: this.automations.runs(req.automationId, req.limit) }),
      'inbox:list': (req) => this.automations.inbox(req.includeArchived),
      'inbox:markRead': (req) => this.automations.markRead(req.id, req.read),
      'inbox:archive': (req) => this.automations.archive(req.id, req.archived),
      'inbox:unreadCount': () => ({ unread: this.automations.unreadCount() }),
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
    this.power.removeAllListeners();
    this.events.dispose();
    this.store.dispose();
  }
}
