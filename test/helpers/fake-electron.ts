import { fork as forkProcess, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';

/**
 * A thin stand-in for the `electron` module, which cannot run here (no Electron binary). Tests
 * install it with `vi.mock('electron', () => import('../helpers/fake-electron.js'))`.
 *
 * It only records what the code under test asks of Electron (calls, listeners, handlers) and
 * answers with fixed values the test sets in `config`; it never acts on its own (no events fire,
 * nothing is evaluated). Tests pull the recorded listeners out and call them. The one exception
 * is utilityProcess.fork, which really starts the child (with Node's child_process.fork), since
 * the core process is real code that can run here.
 */

type Fn = (...args: never[]) => unknown;

/** Fixed answers, set per test. */
export const config = {
  singleInstanceLock: true,
  /** What app.whenReady() returns; pending by default so nothing after "ready" runs. */
  whenReady: (): Promise<void> => new Promise<void>(() => undefined),
  userData: '/nonexistent/userData',
  encryptionAvailable: true,
  notificationsSupported: true,
  windowFocused: false,
  windowMinimized: false,
  /** What webUtils.getPathForFile returns for any File. */
  droppedPath: '',
  /** The folder dialog.showOpenDialog answers with; empty: the person cancelled. */
  pickedFolder: '',
};

/** Every call the code made, in order: [what, ...args]. */
export const calls: unknown[][] = [];
const record =
  (name: string) =>
  (...args: unknown[]): void => {
    calls.push([name, ...args]);
  };

/** Something with `.on`/`.once`: keeps each listener under its event name. */
export class Listeners {
  readonly listeners = new Map<string, Fn[]>();
  on(event: string, fn: Fn): this {
    this.listeners.set(event, [...(this.listeners.get(event) ?? []), fn]);
    return this;
  }
  once(event: string, fn: Fn): this {
    return this.on(event, fn);
  }
  off(event: string, fn: Fn): this {
    calls.push(['off', event, fn]);
    return this;
  }
  /** The one listener registered for `event` (fails the test if there is not exactly one). */
  only(event: string): Fn {
    const fns = this.listeners.get(event) ?? [];
    if (fns.length !== 1) throw new Error(`expected one ${event} listener, got ${fns.length}`);
    return fns[0]!;
  }
}

export const app = Object.assign(new Listeners(), {
  isPackaged: false,
  requestSingleInstanceLock: () => config.singleInstanceLock,
  whenReady: () => config.whenReady(),
  getPath: () => config.userData,
  quit: record('app.quit'),
});

export class FakeWebContents extends Listeners {
  windowOpenHandler: Fn | undefined;
  setWindowOpenHandler(fn: Fn): void {
    this.windowOpenHandler = fn;
  }
  send = record('webContents.send');
  webRTCIPHandlingPolicy: string | undefined;
  setWebRTCIPHandlingPolicy(policy: string): void {
    this.webRTCIPHandlingPolicy = policy;
  }
}

/** Every BrowserWindow constructed, in order. */
export const windows: BrowserWindow[] = [];

export class BrowserWindow extends Listeners {
  static getAllWindows(): BrowserWindow[] {
    return [...windows];
  }
  readonly webContents = new FakeWebContents();
  constructor(readonly options: Record<string, unknown>) {
    super();
    windows.push(this);
  }
  loadFile(file: string): Promise<void> {
    calls.push(['win.loadFile', file]);
    return Promise.resolve();
  }
  isDestroyed = () => false;
  isFocused = () => config.windowFocused;
  isMinimized = () => config.windowMinimized;
  restore = record('win.restore');
  show = record('win.show');
  focus = record('win.focus');
}

/** A session's protocol: the handler registered per scheme. */
export class FakeProtocol {
  readonly handlers = new Map<string, Fn>();
  handle(scheme: string, fn: Fn): void {
    this.handlers.set(scheme, fn);
  }
}

/** A session from session.fromPartition: its permission handlers and protocol. */
export class FakeSession {
  permissionRequestHandler: Fn | undefined;
  permissionCheckHandler: Fn | undefined;
  beforeRequest: Fn | undefined;
  readonly protocol = new FakeProtocol();
  readonly webRequest = {
    onBeforeRequest: (fn: Fn) => {
      this.beforeRequest = fn;
    },
  };
  setPermissionRequestHandler(fn: Fn) {
    this.permissionRequestHandler = fn;
  }
  setPermissionCheckHandler(fn: Fn) {
    this.permissionCheckHandler = fn;
  }
}

/** Sessions made with session.fromPartition, by partition. */
export const partitions = new Map<string, FakeSession>();

export const protocol = {
  /** Every scheme registered with registerSchemesAsPrivileged, in order. */
  privileged: [] as unknown[],
  registerSchemesAsPrivileged(schemes: unknown[]) {
    protocol.privileged.push(...schemes);
  },
};

export const session = {
  fromPartition(partition: string): FakeSession {
    if (!partitions.has(partition)) partitions.set(partition, new FakeSession());
    return partitions.get(partition)!;
  },
  defaultSession: {
    protocol: new FakeProtocol(),
    permissionRequestHandler: undefined as Fn | undefined,
    permissionCheckHandler: undefined as Fn | undefined,
    headersReceived: undefined as Fn | undefined,
    beforeRequest: undefined as Fn | undefined,
    setPermissionRequestHandler(fn: Fn) {
      this.permissionRequestHandler = fn;
    },
    setPermissionCheckHandler(fn: Fn) {
      this.permissionCheckHandler = fn;
    },
    webRequest: {
      onBeforeRequest(fn: Fn) {
        session.defaultSession.beforeRequest = fn;
      },
      onHeadersReceived(fn: Fn) {
        session.defaultSession.headersReceived = fn;
      },
    },
  },
};

export const shell = {
  openExternal: (url: string) => {
    calls.push(['shell.openExternal', url]);
    return Promise.resolve();
  },
  openPath: (p: string) => {
    calls.push(['shell.openPath', p]);
    return Promise.resolve('');
  },
};

export const dialog = {
  showOpenDialog: (...args: unknown[]) => {
    calls.push(['dialog.showOpenDialog', ...args]);
    const p = config.pickedFolder;
    return Promise.resolve({ canceled: p === '', filePaths: p ? [p] : ([] as string[]) });
  },
  showErrorBox: record('dialog.showErrorBox'),
};

export const powerMonitor = new Listeners();

export const Menu = {
  buildFromTemplate: (template: unknown[]) => ({ template }),
  setApplicationMenu: record('Menu.setApplicationMenu'),
};

export class Notification extends Listeners {
  static isSupported = () => config.notificationsSupported;
  constructor(readonly options: Record<string, unknown>) {
    super();
    calls.push(['new Notification', options]);
  }
  show(): void {
    calls.push(['notification.show', this]);
  }
}

/** Handlers registered with ipcMain.handle, by channel. */
export const ipcHandlers = new Map<string, (event: unknown, raw: unknown) => unknown>();
export const ipcMain = {
  handle(channel: string, fn: (event: unknown, raw: unknown) => unknown) {
    ipcHandlers.set(channel, fn);
  },
  removeHandler(channel: string) {
    calls.push(['ipcMain.removeHandler', channel]);
    ipcHandlers.delete(channel);
  },
};

/**
 * A fixed, reversible stand-in for the OS keychain: XOR with one byte, so the "encrypted" bytes
 * never contain the plain text and the test can see what went through it.
 */
const seal = (bytes: Uint8Array) => Buffer.from(bytes.map((b) => b ^ 0x5a));
export const safeStorage = {
  isEncryptionAvailable: () => config.encryptionAvailable,
  encryptString: (plain: string) => {
    calls.push(['safeStorage.encryptString']);
    return seal(Buffer.from(plain, 'utf8'));
  },
  decryptString: (data: Buffer) => {
    calls.push(['safeStorage.decryptString']);
    return seal(data).toString('utf8');
  },
};

export const contextBridge = {
  exposed: new Map<string, unknown>(),
  exposeInMainWorld(name: string, api: unknown) {
    contextBridge.exposed.set(name, api);
  },
};

export const ipcRenderer = Object.assign(new Listeners(), {
  invoke: (channel: string, req: unknown) => {
    calls.push(['ipcRenderer.invoke', channel, req]);
    return Promise.resolve({ ok: true, value: null });
  },
});

export const webUtils = {
  getPathForFile: (file: unknown) => {
    calls.push(['webUtils.getPathForFile', file]);
    return config.droppedPath;
  },
};

/**
 * The part of Electron's UtilityProcess the app uses, over a real Node child: postMessage,
 * `message` and `exit` (with a code) events, kill() and pid. Node's `advanced` serialization is the
 * structured clone Electron uses.
 */
export class FakeUtilityProcess extends EventEmitter {
  constructor(readonly proc: ChildProcess) {
    super();
    proc.on('message', (m) => this.emit('message', m));
    proc.on('spawn', () => this.emit('spawn'));
    // Electron reports a code for every exit; a signal has none in Node, so say 1.
    proc.on('exit', (code) => this.emit('exit', code ?? 1));
  }
  get pid(): number | undefined {
    return this.proc.pid;
  }
  postMessage(message: unknown): void {
    if (this.proc.connected) this.proc.send(message as never);
  }
  kill(): boolean {
    return this.proc.kill();
  }
}

/** Every utility process started, in order. */
export const utilityProcesses: FakeUtilityProcess[] = [];

export const utilityProcess = {
  fork(modulePath: string, args: string[] = [], options: { env?: NodeJS.ProcessEnv } = {}) {
    calls.push(['utilityProcess.fork', modulePath]);
    const child = new FakeUtilityProcess(
      forkProcess(modulePath, args, {
        env: options.env ?? process.env,
        // A .ts entry (from source) runs through tsx, as the tests themselves do.
        execArgv: modulePath.endsWith('.ts') ? ['--import', 'tsx'] : [],
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    utilityProcesses.push(child);
    return child;
  },
};

/** Clears what was recorded (the module's fixed answers go back to their defaults). */
export function resetFake(): void {
  calls.length = 0;
  windows.length = 0;
  utilityProcesses.length = 0;
  ipcHandlers.clear();
  app.listeners.clear();
  powerMonitor.listeners.clear();
  ipcRenderer.listeners.clear();
  contextBridge.exposed.clear();
  session.defaultSession.permissionRequestHandler = undefined;
  session.defaultSession.permissionCheckHandler = undefined;
  session.defaultSession.headersReceived = undefined;
  session.defaultSession.beforeRequest = undefined;
  session.defaultSession.protocol.handlers.clear();
  partitions.clear();
  protocol.privileged.length = 0;
  Object.assign(config, {
    singleInstanceLock: true,
    whenReady: () => new Promise<void>(() => undefined),
    encryptionAvailable: true,
    notificationsSupported: true,
    windowFocused: false,
    windowMinimized: false,
    droppedPath: '',
    pickedFolder: '',
  });
}
