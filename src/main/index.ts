import { app, BrowserWindow } from 'electron';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Core } from './app/core.js';
import { hardenApp } from './electron/security.js';
import { createMainWindow } from './electron/windows.js';
import { forwardEvents, registerIpc } from './ipc/router.js';
import { dataDir } from './store/app-paths.js';

/**
 * Electron composition root: build the core, register IPC, open the window. No business logic.
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

  app.on('second-instance', () => {
    if (win) {
      if (win.isMinimized()) win.restore();
      win.focus();
    }
  });

  void app.whenReady().then(() => {
    process.env.PADDOCK_HOME ??= app.getPath('userData');
    core = new Core({ dataDir: dataDir(), host: 'electron' });
    const c = core;
    registerIpc(c, (event) => {
      const frame = event.senderFrame;
      return (
        win !== undefined &&
        event.sender === win.webContents &&
        frame !== null &&
        frame.parent === null &&
        isAppUrl(frame.url)
      );
    });
    forwardEvents(c, () => BrowserWindow.getAllWindows());
    win = createMainWindow(distDir);
  });

  app.on('window-all-closed', () => {
    if (process.platform !== 'darwin') app.quit();
  });
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) win = createMainWindow(distDir);
  });
  app.on('will-quit', () => core?.dispose());
}
