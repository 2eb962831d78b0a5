import { BrowserWindow } from 'electron';
import path from 'node:path';

/** Creates the main window with every renderer safety switch on. */
export function createMainWindow(distDir: string): BrowserWindow {
  const win = new BrowserWindow({
    width: 1200,
    height: 800,
    minWidth: 720,
    minHeight: 480,
    show: false,
    title: 'Paddock',
    webPreferences: {
      preload: path.join(distDir, 'preload', 'index.cjs'),
      // SECURITY: the renderer gets no Node, runs sandboxed and isolated from the preload.
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webviewTag: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win.show());
  void win.loadFile(path.join(distDir, 'renderer', 'index.html'));
  return win;
}
