import { ipcMain, type BrowserWindow, type IpcMainInvokeEvent } from 'electron';
import { z } from 'zod';
import { DROP_FOLDER_CHANNEL } from '../../shared/ipc-channels.js';
import {
  channels,
  describeSchemaError,
  hostChannels,
  hostRequests,
  type Channel,
  type EventName,
  type HostChannel,
  type Res,
} from '../../shared/api.js';
import type { Grant } from '../../shared/app-contract.js';
import { err, ok, type Result } from '../../shared/result.js';

/**
 * Where the router sends a trusted request: the core bridge in the app (the core runs in its own
 * process, which parses the request with the channel's schema).
 */
export interface Dispatcher {
  call(channel: Channel, raw: unknown): Promise<Result<unknown>>;
}

/** Main's own answers to the host channels (`core:restart`), which never reach the core. */
export type HostHandlers = { [C in HostChannel]: () => Res<C> | Promise<Res<C>> };

const forbidden = () => err('FORBIDDEN', 'This request did not come from the Paddock window.');

/**
 * The only importer of ipcMain. Each contract channel gets one handler that first checks the
 * sender is one of our windows showing our own page, then hands the raw request to the core.
 * The host channels are answered here, after the same check.
 */
export function registerIpc(
  core: Dispatcher,
  isTrustedSender: (event: IpcMainInvokeEvent) => boolean,
  host: HostHandlers,
): () => void {
  for (const channel of channels) {
    ipcMain.handle(channel, async (event, raw: unknown) => {
      // SECURITY: ignore IPC from frames that are not our top-level app page.
      if (!isTrustedSender(event)) return forbidden();
      return core.call(channel, raw);
    });
  }
  for (const channel of hostChannels) {
    ipcMain.handle(channel, async (event, raw: unknown) => {
      // SECURITY: the same check: only our own page may restart the core.
      if (!isTrustedSender(event)) return forbidden();
      const parsed = hostRequests[channel].req.safeParse(raw ?? {});
      if (!parsed.success) return err('BAD_REQUEST', describeSchemaError(parsed.error));
      return ok(await host[channel]());
    });
  }
  return () => {
    for (const channel of [...channels, ...hostChannels]) ipcMain.removeHandler(channel);
  };
}

/** Forwards contract events (the core's and main's own) to the app's windows. */
export function forwardEvents(
  source: { onEvent(listener: (event: EventName, payload: unknown) => void): () => void },
  windows: () => BrowserWindow[],
): () => void {
  return source.onEvent((event, payload) => {
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
  core: { grantFolder(path: string, readOnly: boolean): Promise<Result<Grant>> },
  isTrustedSender: (event: IpcMainInvokeEvent) => boolean,
): () => void {
  ipcMain.handle(DROP_FOLDER_CHANNEL, (event, raw: unknown) => {
    // SECURITY: only our own top-level page may grant a folder this way.
    if (!isTrustedSender(event)) return forbidden();
    const parsed = dropRequest.safeParse(raw);
    if (!parsed.success) return err('BAD_REQUEST', 'Drop a folder from your file manager.');
    return core.grantFolder(parsed.data.path, false);
  });
  return () => ipcMain.removeHandler(DROP_FOLDER_CHANNEL);
}
