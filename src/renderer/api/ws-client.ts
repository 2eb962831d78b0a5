import type { Channel, EventName, PaddockApi } from '../../shared/api.js';
import type { Result } from '../../shared/result.js';

/** The protocol `paddock serve` speaks on its socket (the server's `SUBPROTOCOL`). */
const SUBPROTOCOL = 'paddock.v1';

/**
 * The web host's transport: the same PaddockApi as Electron's preload, carried over a WebSocket to
 * `paddock serve`. The per-launch token travels as a second subprotocol value,
 * `paddock.token.<token>`, which no cookie can supply; the server echoes only `paddock.v1`.
 * Without a token every call answers DISCONNECTED with how to get one.
 */
export function connectWebSocketApi(url: string, token: string | null): PaddockApi {
  let nextId = 1;
  const pending = new Map<number, (r: Result<unknown>) => void>();
  const listeners = new Map<EventName, Set<(p: unknown) => void>>();
  const queue: string[] = [];
  const reopen = 'Open the address that `paddock serve` printed.';
  let opened = false;
  let closed = token === null;
  let closedMessage = `This tab has no Paddock token. ${reopen}`;
  const ws = token === null ? null : new WebSocket(url, [SUBPROTOCOL, `paddock.token.${token}`]);

  ws?.addEventListener('open', () => {
    opened = true;
    for (const m of queue.splice(0)) ws.send(m);
  });
  ws?.addEventListener('message', (e) => {
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
  const disconnected = (): Result<unknown> => ({
    ok: false,
    error: { code: 'DISCONNECTED', message: closedMessage },
  });
  ws?.addEventListener('close', () => {
    closed = true;
    // Refused before it opened: a stale or wrong token, or the server is gone.
    closedMessage = opened
      ? 'Lost the connection to Paddock; reload the page.'
      : `Could not connect to Paddock: it may have stopped, or this tab's token is from an earlier launch. ${reopen}`;
    for (const resolve of pending.values()) resolve(disconnected());
    pending.clear();
    queue.length = 0;
  });

  const invoke = (channel: Channel, req: unknown) =>
    new Promise<Result<unknown>>((resolve) => {
      if (closed || !ws) return resolve(disconnected());
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
