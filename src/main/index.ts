import { app, BrowserWindow, dialog, powerMonitor, shell } from 'electron';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { registerArtifactScheme, serveArtifactFrames } from './electron/artifact-protocol.js';
import { CoreBridge } from './electron/core-bridge.js';
import { installMenu } from './electron/menu.js';
import { notifier } from './electron/notifications.js';
import { SafeStorageSecretStore, SafeStorageVaultKey } from './electron/secret-store.js';
import { hardenApp } from './electron/security.js';
import { createMainWindow } from './electron/windows.js';
import { forwardEvents, registerDropFolder, registerIpc } from './ipc/router.js';
import { dataDir } from './platform/app-paths.js';
import { SAFE_KEY_FILE, SECRETS_DIR } from './core/secrets/key-source.js';

/**
 * Electron composition root: start the core process, register IPC, open the window, and connect
 * the desktop pieces (menu, notifications, folder picker, power events, the keychain). No business
 * logic: the core (agent loop, VMs, egress proxy, store) runs in its own process.
 */
const mainDir = path.dirname(fileURLToPath(import.meta.url));
const distDir = path.dirname(mainDir);
/** Bundled next to this file as dist/main/core-process.js; from source (tests), the .ts entry. */
const coreEntry = import.meta.url.endsWith('.ts')
  ? path.join(mainDir, 'electron', 'core-process-entry.ts')
  : path.join(mainDir, 'core-process.js');
const rendererIndex = pathToFileURL(path.join(distDir, 'renderer', 'index.html')).href;
const isAppUrl = (url: string) => url.split('#')[0] === rendererIndex;

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  hardenApp(isAppUrl);
  // The artifact frame's own origin; a scheme must be registered before "ready".
  registerArtifactScheme();
  let core: CoreBridge | undefined;
  let win: BrowserWindow | undefined;
  const currentWindow = () => (win && !win.isDestroyed() ? win : undefined);
  const showWindow = () => {
    const w = currentWindow();
    if (!w) return;
    if (w.isMinimized()) w.restore();
    w.show();
    w.focus();
  };

  app.on('second-instance', showWindow);

  void app.whenReady().then(() => {
    process.env.PADDOCK_HOME ??= app.getPath('userData');
    serveArtifactFrames();
    const home = dataDir();
    const pickFolder = async (): Promise<string | null> => {
      const w = currentWindow();
      const options = {
        title: 'Choose a folder for Paddock',
        buttonLabel: 'Grant',
        properties: ['openDirectory' as const, 'createDirectory' as const],
      };
      const r = w ? await dialog.showOpenDialog(w, options) : await dialog.showOpenDialog(options);
      return r.canceled ? null : (r.filePaths[0] ?? null);
    };
    core = new CoreBridge({
      entry: coreEntry,
      secrets: new SafeStorageSecretStore(path.join(home, 'api-key.enc')),
      vaultKey: new SafeStorageVaultKey(path.join(home, SECRETS_DIR, SAFE_KEY_FILE)),
      pickFolder,
      openPath: async (p) => {
        const problem = await shell.openPath(p);
        if (problem) throw new Error(problem);
      },
    });
    const c = core;
    c.start();
    const trusted = (event: Electron.IpcMainInvokeEvent) => {
      const frame = event.senderFrame;
      return (
        win !== undefined &&
        event.sender === win.webContents &&
        frame !== null &&
        frame.parent === null &&
        isAppUrl(frame.url)
      );
    };
    registerIpc(c, trusted, { 'core:restart': () => c.restart() });
    registerDropFolder(c, trusted);
    forwardEvents(c, () => BrowserWindow.getAllWindows());
    c.onEvent(
      notifier(
        currentWindow,
        (taskId) => c.emit('ui:command', { command: 'open-task', taskId }),
        () => c.emit('ui:command', { command: 'inbox' }),
        (id) => c.automationName(id),
      ),
    );

    installMenu(
      {
        newTask: () => {
          showWindow();
          c.emit('ui:command', { command: 'new-task' });
        },
        openFolder: () => {
          void pickFolder().then(async (picked) => {
            if (!picked) return;
            // SECURITY: the path comes from the OS picker, never from the page.
            const r = await c.grantFolder(picked, false);
            if (r.ok) c.emit('ui:command', { command: 'new-task', grant: r.value });
            else dialog.showErrorBox('Paddock', r.error.message);
          });
        },
        openSettings: () => {
          showWindow();
          c.emit('ui:command', { command: 'settings' });
        },
        openLogs: () => void c.call('app:openLogs', {}),
      },
      !app.isPackaged,
    );

    // The core's scheduler judges missed automation slots on wake.
    powerMonitor.on('resume', () => c.power('resume'));
    powerMonitor.on('suspend', () => c.power('suspend'));

    win = createMainWindow(distDir);
  });

  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) win = createMainWindow(distDir);
  });
  let closing = false;
  app.on('will-quit', (event) => {
    if (!core || closing) return;
    // Running tasks and their VMs are stopped (in the core process) before the app goes.
    closing = true;
    event.preventDefault();
    void core.shutdown().finally(() => app.quit());
  });
}
