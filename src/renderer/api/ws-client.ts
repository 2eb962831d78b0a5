import type { Channel, EventName, PaddockApi } from '../../shared/api.js';
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

  return proxyApi(invoke, subscribe);
}

/**
 * The PaddockApi shape without the contract's schemas: every `domain:verb` property is a call of
 * that channel. Keeps zod out of the page's bundle (the server parses every request anyway), and
 * has no `dropFolder`, which only Electron's preload can offer.
 */
function proxyApi(
  invoke: (channel: Channel, req: unknown) => Promise<Result<unknown>>,
  subscribe: (event: EventName, listener: (p: unknown) => void) => () => void,
): PaddockApi {
  const methods = new Map<string, (req?: unknown) => Promise<Result<unknown>>>();
  return new Proxy({} as PaddockApi, {
    get(_target, name) {
      if (name === 'on') return subscribe;
      if (typeof name !== 'string' || !/^[a-z]+:[a-zA-Z]+$/.test(name)) return undefined;
      let m = methods.get(name);
      if (!m) {
        m = (req?: unknown) => invoke(name as Channel, req ?? {});
        methods.set(name, m);
      }
      return m;
    },
  });
}
