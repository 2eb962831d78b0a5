import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import { channels } from '../../shared/api.js';
import { err } from '../../shared/result.js';
import type { Core } from '../app/core.js';
import { dispatch } from '../app/dispatch.js';

/**
 * The only importer of ipcMain. Each contract channel gets one handler that first checks the
 * sender is one of our windows showing our own page, then hands the raw request to the shared
 * dispatcher, which parses it with the channel's schema.
 */
export function registerIpc(
  core: Core,
  isTrustedSender: (event: IpcMainInvokeEvent) => boolean,
): () => void {
  for (const channel of channels) {
    ipcMain.handle(channel, async (event, raw: unknown) => {
      // SECURITY: ignore IPC from frames that are not our top-level app page.
      if (!isTrustedSender(event)) {
        return err('FORBIDDEN', 'This request did not come from the Paddock window.');
      }
      return dispatch(core.handlers, channel, raw);
    });
  }
  return () => {
    for (const channel of channels) ipcMain.removeHandler(channel);
  };
}

/** Forwards contract events to the app's windows. */
export function forwardEvents(core: Core, windows: () => BrowserWindow[]): () => void {
  return core.events.onAny((event, payload) => {
    for (const w of windows()) {
      if (!w.isDestroyed()) w.webContents.send(event, payload);
    }
  });
}
