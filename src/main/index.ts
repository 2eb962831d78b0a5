import { app, BrowserWindow, dialog, powerMonitor, shell } from 'electron';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Core } from './core/core.js';
import { installMenu } from './electron/menu.js';
import { notifier } from './electron/notifications.js';
import { SafeStorageSecretStore } from './electron/secret-store.js';
import { hardenApp } from './electron/security.js';
import { createMainWindow } from './electron/windows.js';
import { forwardEvents, registerDropFolder, registerIpc } from './ipc/router.js';
import { dataDir } from './platform/app-paths.js';

/**
 * Electron composition root: build the core, register IPC, open the window, and connect the
 * desktop pieces (menu, notifications, folder picker, power events). No business logic.
 */
const distDir = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const rendererIndex = pathToFileURL(path.join(distDir, 'renderer', 'index.html')).href;
const isAppUrl = (url: string) => url.split('#')[0] === rendererIndex;

if (!app.requestSingleInstanceLock()) {
  app.quit();
} else {
  hardenApp(isAppUrl);
  let core: Core | undefined;
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
    core = new Core({
      dataDir: home,
      host: 'electron',
      secrets: new SafeStorageSecretStore(path.join(home, 'api-key.enc')),
      pickFolder,
      openPath: async (p) => {
        const problem = await shell.openPath(p);
        if (problem) throw new Error(problem);
      },
      typedPaths: false,
    });
    const c = core;
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
    registerIpc(c, trusted);
    registerDropFolder(c, trusted);
    forwardEvents(c, () => BrowserWindow.getAllWindows());
    c.events.onAny(
      notifier(
        currentWindow,
        (taskId) => c.events.emit('ui:command', { command: 'open-task', taskId }),
        () => c.events.emit('ui:command', { command: 'inbox' }),
        (id) => c.store.automations.get(id)?.name,
      ),
    );

    installMenu(
      {
        newTask: () => {
          showWindow();
          c.events.emit('ui:command', { command: 'new-task' });
        },
        openFolder: () => {
          void pickFolder().then((picked) => {
            if (!picked) return;
            try {
              const grant = c.grantFolder(picked, false);
              c.events.emit('ui:command', { command: 'new-task', grant });
            } catch (e) {
              dialog.showErrorBox('Paddock', (e as Error).message);
            }
          });
        },
        openSettings: () => {
          showWindow();
          c.events.emit('ui:command', { command: 'settings' });
        },
        openLogs: () => void c.handlers['app:openLogs']({}),
      },
      !app.isPackaged,
    );

    // The scheduler judges missed automation slots on wake; it listens on core.power.
    powerMonitor.on('resume', () => c.power.emit('resume'));
    powerMonitor.on('suspend', () => c.power.emit('suspend'));

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
    // Running tasks and their VMs are stopped before the app goes.
    closing = true;
    event.preventDefault();
    void core.close().finally(() => app.quit());
  });
}
