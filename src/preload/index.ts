import { contextBridge, ipcRenderer, webUtils } from 'electron';
import { DROP_FOLDER_CHANNEL } from '../shared/ipc-channels.js';
import { buildApi, isEventName } from '../shared/api.js';
import type { Grant } from '../shared/app-contract.js';
import type { Result } from '../shared/result.js';

/**
 * Exposes exactly the contract as `window.paddock` — one method per channel, one `on` per event —
 * plus `dropFolder`, and nothing else: no generic send, no Node, no way to name a path.
 */
const api = buildApi(
  (channel, req) => ipcRenderer.invoke(channel, req) as Promise<Result<unknown>>,
  (event, listener) => {
    // SECURITY: only contract events can be subscribed to; the IPC event object never leaks.
    if (!isEventName(event)) throw new Error(`Unknown event ${event}`);
    const wrapped = (_e: unknown, payload: unknown) => listener(payload);
    ipcRenderer.on(event, wrapped);
    return () => ipcRenderer.off(event, wrapped);
  },
);

// SECURITY: the path is read here from a File the person dropped; the page only hands over the
// File object, so it can never ask main to grant a path it made up.
api.dropFolder = (file: File) => {
  const path = webUtils.getPathForFile(file);
  if (!path) {
    return Promise.resolve<Result<Grant>>({
      ok: false,
      error: { code: 'BAD_DROP', message: 'Drop a folder from your file manager.' },
    });
  }
  return ipcRenderer.invoke(DROP_FOLDER_CHANNEL, { path }) as Promise<Result<Grant>>;
};

contextBridge.exposeInMainWorld('paddock', api);
