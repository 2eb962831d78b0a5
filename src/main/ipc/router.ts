import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import { z } from 'zod';
import { DROP_FOLDER_CHANNEL } from '../../shared/ipc-channels.js';
import { channels } from '../../shared/api.js';
import { err, ok, PaddockError } from '../../shared/result.js';
import type { Core } from '../core/core.js';
import { dispatch } from '../core/dispatch.js';

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

export { DROP_FOLDER_CHANNEL };

const dropRequest = z.object({ path: z.string().min(1).max(4096) }).strict();

/**
 * Grants a folder dropped on the window. The path comes from the preload's
 * webUtils.getPathForFile on a File the person dropped, never from text the page typed.
 */
export function registerDropFolder(
  core: Core,
  isTrustedSender: (event: IpcMainInvokeEvent) => boolean,
): () => void {
  ipcMain.handle(DROP_FOLDER_CHANNEL, (event, raw: unknown) => {
    // SECURITY: only our own top-level page may grant a folder this way.
    if (!isTrustedSender(event)) {
      return err('FORBIDDEN', 'This request did not come from the Paddock window.');
    }
    const parsed = dropRequest.safeParse(raw);
    if (!parsed.success) return err('BAD_REQUEST', 'Drop a folder from your file manager.');
    try {
      return ok(core.grantFolder(parsed.data.path, false));
    } catch (e) {
      if (e instanceof PaddockError) return err(e.code, e.message);
      return err('INTERNAL', 'Paddock could not grant that folder; see the logs folder.');
    }
  });
  return () => ipcMain.removeHandler(DROP_FOLDER_CHANNEL);
}
