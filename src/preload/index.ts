import { contextBridge, ipcRenderer } from 'electron';
import { buildApi, isEventName } from '../shared/api.js';
import type { Result } from '../shared/result.js';

/**
 * Exposes exactly the contract as `window.paddock` — one method per channel, one `on` per event —
 * and nothing else: no generic send, no Node, no paths.
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

contextBridge.exposeInMainWorld('paddock', api);
