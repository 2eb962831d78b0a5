import { utilityProcess, type UtilityProcess } from 'electron';
import type { CoreStatus, EventName, EventPayload } from '../../shared/api.js';
import type { Grant } from '../../shared/app-contract.js';
import type { AutomationRun } from '../../shared/automations-contract.js';
import { err, ok, PaddockError, type Result } from '../../shared/result.js';
import type { FromCore, HostOp, ToCore } from './core-protocol.js';
import type { MainVaultKey } from './secret-store.js';

/** Main's keychain, as the bridge needs it (SafeStorageSecretStore). */
export interface MainSecrets {
  get(): string | null;
  set(secret: string): void;
  clear(): void;
  /** Whether set() can keep a key (the OS offers encryption). */
  canKeep(): boolean;
}

export interface CoreBridgeOptions {
  /** The core process's entry: dist/main/core-process.js, or the .ts source under test. */
  entry: string;
  secrets: MainSecrets;
  /** The secrets' vault key, wrapped by safeStorage (SafeStorageVaultKey); without it, none. */
  vaultKey?: MainVaultKey;
  /** The native folder picker. */
  pickFolder(): Promise<string | null>;
  /** Opens a folder in the system's file manager. */
  openPath(p: string): Promise<void>;
  /** The core process's environment (default: main's). */
  env?: NodeJS.ProcessEnv;
  /** How long to wait before the n-th restart within the crash window (n from 1). */
  backoffMs?: (n: number) => number;
  /** How long a shutting-down core may take to close before it is killed. */
  shutdownTimeoutMs?: number;
}

/** After this many crashes within CRASH_WINDOW_MS the bridge stops restarting and waits. */
const MAX_CRASHES = 3;
const CRASH_WINDOW_MS = 60_000;

const RESTARTING = 'Paddock’s engine stopped unexpectedly and is restarting…';
const GAVE_UP =
  'Paddock’s engine stopped unexpectedly three times in a minute, so it was not restarted again. Press Restart to try again; if it keeps stopping, see the logs folder.';
const restarted = () =>
  err(
    'CORE_RESTARTED',
    'Paddock’s engine stopped unexpectedly while handling this and is restarting; try again in a moment.',
  );
const stoppedAfterCrashes = () =>
  err(
    'CORE_STOPPED',
    'Paddock’s engine stopped after crashing repeatedly; press Restart in the window, then try again.',
  );
const quitting = () => err('CORE_STOPPED', 'Paddock is quitting.');

type Listener = (event: EventName, payload: unknown) => void;
type Resolve = (r: Result<unknown>) => void;

/**
 * Main's side of the core process. Starts it with utilityProcess.fork, sends it the contract's
 * requests and matches the replies, re-emits its events, and answers what only main can do (the
 * picker, the file manager, the keychain). When the process dies unexpectedly, requests in flight
 * get CORE_RESTARTED, the windows get `core:status`, and a new process starts after a back-off;
 * after three crashes within a minute it waits for restart(). shutdown() is not a crash.
 */
export class CoreBridge {
  private child: UtilityProcess | undefined;
  /** The current child said hello (so it will read what is sent to it). */
  private greeted = false;
  private ready = false;
  private stopping = false;
  private nextId = 1;
  /** Sent to the current child, awaiting its reply. */
  private readonly pending = new Map<number, Resolve>();
  /** Waiting for a child that is ready. */
  private readonly queued: { id: number; msg: ToCore; resolve: Resolve }[] = [];
  private crashes: number[] = [];
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<Listener>();
  private readonly automationNames = new Map<string, string>();
  private onStopped: (() => void) | undefined;
  private current: CoreStatus | null = null;

  constructor(private readonly opts: CoreBridgeOptions) {}

  /** The core process's pid while one runs. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts the core process (once; later starts are the bridge's own restarts). */
  start(): void {
    if (this.child || this.stopping) return;
    const child = utilityProcess.fork(this.opts.entry, [], {
      serviceName: 'Paddock Core',
      env: this.opts.env ?? process.env,
    });
    this.child = child;
    this.greeted = false;
    this.ready = false;
    child.on('message', (m: FromCore) => {
      if (child === this.child) this.onMessage(child, m);
    });
    child.on('exit', (code: number) => {
      if (child === this.child) this.onExit(code);
    });
  }

  /** One contract request; always answers with a Result, never throws. */
  call(channel: string, raw: unknown): Promise<Result<unknown>> {
    return this.request((id) => ({ type: 'request', id, channel, raw }));
  }

  /**
   * Grants a folder main got from the OS (a drop on the window, or the menu's Open Folder).
   * SECURITY: callers pass only paths from the OS, never from the page.
   */
  grantFolder(path: string, readOnly: boolean): Promise<Result<Grant>> {
    return this.request((id) => ({ type: 'grant', id, path, readOnly })) as Promise<Result<Grant>>;
  }

  /** powerMonitor's events, for the core's scheduler (dropped while no core runs). */
  power(event: 'resume' | 'suspend'): void {
    if (this.ready) this.child?.postMessage({ type: 'power', event } satisfies ToCore);
  }

  /** Subscribes to every contract event, the core's and main's own; returns the unsubscribe. */
  onEvent(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Sends a contract event from main itself (menu commands, core status) to the listeners. */
  emit<E extends EventName>(event: E, payload: EventPayload<E>): void {
    for (const l of this.listeners) l(event, payload);
  }

  /** An automation's name, as the core last reported it with one of its runs. */
  automationName(id: string): string | undefined {
    return this.automationNames.get(id);
  }

  /**
   * The window's Restart: starts the core again after the bridge gave up (or cuts a back-off
   * short). A core that is running is left alone.
   */
  restart(): { restarted: boolean } {
    if (this.stopping || this.child) return { restarted: false };
    clearTimeout(this.restartTimer);
    this.crashes = [];
    this.setStatus('restarting', 'Paddock’s engine is starting again…');
    this.start();
    return { restarted: true };
  }

  /** Closes the core (tasks and VMs stop) and waits for its process to exit. Not a crash. */
  async shutdown(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.restartTimer);
    for (const q of this.queued.splice(0)) q.resolve(quitting());
    const child = this.child;
    if (!child) return;
    const stopped = new Promise<void>((resolve) => (this.onStopped = resolve));
    // A child that has not said hello may not read messages yet, and has built nothing.
    if (!this.greeted) child.kill();
    else child.postMessage({ type: 'shutdown' } satisfies ToCore);
    const timer = setTimeout(() => child.kill(), this.opts.shutdownTimeoutMs ?? 30_000);
    await stopped;
    clearTimeout(timer);
  }

  private request(make: (id: number) => ToCore): Promise<Result<unknown>> {
    if (this.stopping) return Promise.resolve(quitting());
    if (this.current?.state === 'failed') return Promise.resolve(stoppedAfterCrashes());
    return new Promise((resolve) => {
      const id = this.nextId++;
      const msg = make(id);
      if (this.ready && this.child) {
        this.pending.set(id, resolve);
        this.child.postMessage(msg);
      } else {
        this.queued.push({ id, msg, resolve });
      }
    });
  }

  private onMessage(child: UtilityProcess, m: FromCore): void {
    switch (m.type) {
      case 'hello':
        this.greeted = true;
        child.postMessage({
          type: 'init',
          secret: this.opts.secrets.get(),
          keychain: this.opts.secrets.canKeep(),
          // SECURITY: the raw vault key crosses only this private channel to the core process.
          vaultKey: this.opts.vaultKey?.get() ?? null,
          vaultKeychain: this.opts.vaultKey?.canKeep() ?? false,
        } satisfies ToCore);
        return;
      case 'ready':
        this.ready = true;
        for (const q of this.queued.splice(0)) {
          this.pending.set(q.id, q.resolve);
          child.postMessage(q.msg);
        }
        if (this.current && this.current.state !== 'ready') {
          this.setStatus('ready', 'Paddock’s engine is running again.');
        }
        return;
      case 'reply':
        this.pending.get(m.id)?.(m.result);
        this.pending.delete(m.id);
        return;
      case 'event':
        if (m.automationName) {
          this.automationNames.set((m.payload as AutomationRun).automationId, m.automationName);
        }
        for (const l of this.listeners) l(m.event, m.payload);
        return;
      case 'host':
        void this.host(m).then((result) => {
          // A child that died meanwhile is not answered; its successor never asked.
          if (child === this.child) {
            child.postMessage({ type: 'host-reply', id: m.id, result } satisfies ToCore);
          }
        });
        return;
    }
  }

  /** What only main can do, on the core's behalf. */
  private async host(op: HostOp): Promise<Result<unknown>> {
    try {
      switch (op.op) {
        case 'pickFolder':
          return ok(await this.opts.pickFolder());
        case 'openPath':
          await this.opts.openPath(op.path);
          return ok(null);
        case 'secret:set':
          this.opts.secrets.set(op.secret);
          return ok(null);
        case 'secret:clear':
          this.opts.secrets.clear();
          return ok(null);
        case 'vault-key:create':
          if (!this.opts.vaultKey)
            return err('NO_KEYCHAIN', 'This Paddock keeps no key for secrets.');
          return ok(this.opts.vaultKey.create());
      }
    } catch (e) {
      if (e instanceof PaddockError) return err(e.code, e.message);
      return err('HOST_FAILED', (e as Error).message);
    }
  }

  private onExit(code: number): void {
    this.child = undefined;
    this.ready = false;
    const inFlight = [...this.pending.values()];
    this.pending.clear();
    if (this.stopping) {
      for (const resolve of inFlight) resolve(quitting());
      this.onStopped?.();
      return;
    }
    console.error(`[paddock] the core process exited unexpectedly (code ${code})`);
    for (const resolve of inFlight) resolve(restarted());
    const now = Date.now();
    this.crashes = [...this.crashes.filter((t) => now - t < CRASH_WINDOW_MS), now];
    if (this.crashes.length >= MAX_CRASHES) {
      this.setStatus('failed', GAVE_UP);
      for (const q of this.queued.splice(0)) q.resolve(stoppedAfterCrashes());
      return;
    }
    this.setStatus('crashed', RESTARTING);
    const n = this.crashes.length;
    const wait = this.opts.backoffMs?.(n) ?? Math.min(500 * 2 ** (n - 1), 5000);
    this.restartTimer = setTimeout(() => {
      this.setStatus('restarting', RESTARTING);
      this.start();
    }, wait);
  }

  private setStatus(state: CoreStatus['state'], message: string): void {
    this.current = { state, message };
    this.emit('core:status', this.current);
  }
}
