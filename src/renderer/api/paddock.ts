import type { PaddockApi } from '../../shared/api.js';
import { connectWebSocketApi } from './ws-client.js';

declare global {
  interface Window {
    paddock?: PaddockApi;
  }
}

/**
 * The API the UI talks to: Electron's preload provides `window.paddock`; in a browser served by
 * `paddock serve` the same interface is built over a WebSocket. Nothing else differs.
 */
export function getApi(): PaddockApi {
  if (window.paddock) return window.paddock;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const api = connectWebSocketApi(`${proto}//${location.host}/api`);
  // The token now lives in an HttpOnly cookie; keep it out of the address bar and history.
  if (location.search.includes('token=')) history.replaceState(null, '', location.pathname);
  window.paddock = api;
  return api;
}
