import type { PaddockApi } from '../../shared/api.js';
import { connectWebSocketApi } from './ws-client.js';

declare global {
  interface Window {
    paddock?: PaddockApi;
  }
}

/** Where this tab keeps the per-launch token: sessionStorage is per origin, so per port. */
const TOKEN_KEY = 'paddock.token';
/** What `paddock serve` mints (base64url); anything else could not be sent as a subprotocol. */
const TOKEN_SHAPE = /^[\w-]{16,256}$/;

/**
 * The API the UI talks to: Electron's preload provides `window.paddock`; in a browser served by
 * `paddock serve` the same interface is built over a WebSocket. Nothing else differs.
 */
export function getApi(): PaddockApi {
  if (window.paddock) return window.paddock;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const api = connectWebSocketApi(`${proto}//${location.host}/api`, takeToken());
  window.paddock = api;
  return api;
}

/**
 * The token from the printed address (`?token=`), kept in this tab's sessionStorage so that a
 * reload, whose address no longer has it, still connects. The socket needs it as a subprotocol
 * value: the HttpOnly cookie only loads the files, since every server on 127.0.0.1 is sent it.
 * Null when this tab was never given the token (the bare address typed into a new tab).
 */
function takeToken(): string | null {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get('token');
  if (fromUrl !== null) {
    // Keep it out of the address bar, history and bookmarks.
    url.searchParams.delete('token');
    history.replaceState(history.state, '', url.pathname + url.search + url.hash);
    if (TOKEN_SHAPE.test(fromUrl)) {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
      return fromUrl;
    }
  }
  const kept = sessionStorage.getItem(TOKEN_KEY);
  return kept !== null && TOKEN_SHAPE.test(kept) ? kept : null;
}
