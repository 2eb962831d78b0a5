import { buildApi, type Channel, type EventName, type PaddockApi } from '../../shared/api.js';
import type { Result } from '../../shared/result.js';

/**
 * The web host's transport: the same PaddockApi as Electron's preload, carried over a WebSocket to
 * `paddock serve`. The per-launch token travels as the HttpOnly cookie set when the page loaded.
 */
export function connectWebSocketApi(url: string): PaddockApi {
  let nextId = 1;
  const pending = new Map<number, (r: Result<unknown>) => void>();
  const listeners = new Map<EventName, Set<(p: unknown) => void>>();
  const queue: string[] = [];
  const ws = new WebSocket(url);

  ws.addEventListener('open', () => {
    for (const m of queue.splice(0)) ws.send(m);
  });
  ws.addEventListener('message', (e) => {
    const msg = JSON.parse(String(e.data)) as {
      id?: number;
      result?: Result<unknown>;
      event?: EventName;
      payload?: unknown;
    };
    if (msg.event) {
      for (const l of listeners.get(msg.event) ?? []) l(msg.payload);
    } else if (typeof msg.id === 'number' && msg.result) {
      pending.get(msg.id)?.(msg.result);
      pending.delete(msg.id);
    }
  });
  ws.addEventListener('close', () => {
    for (const resolve of pending.values()) {
      resolve({
        ok: false,
        error: {
          code: 'DISCONNECTED',
          message: 'Lost the connection to Paddock; reload the page.',
        },
      });
    }
    pending.clear();
  });

  const invoke = (channel: Channel, req: unknown) =>
    new Promise<Result<unknown>>((resolve) => {
      const id = nextId++;
      pending.set(id, resolve);
      const m = JSON.stringify({ id, channel, req });
      if (ws.readyState === WebSocket.OPEN) ws.send(m);
      else queue.push(m);
    });

  const subscribe = (event: EventName, listener: (p: unknown) => void) => {
    const set = listeners.get(event) ?? new Set();
    set.add(listener);
    listeners.set(event, set);
    return () => set.delete(listener);
  };

  return buildApi(invoke, subscribe);
}
