import { useEffect, useRef } from 'react';
import type { ApiChannel, EventName, EventPayload, Req, Res } from '../../shared/api.js';
import { getApi } from './paddock.js';

/** An API failure, carrying the code and the sentence to show. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Calls one channel and returns its value, or throws ApiError with the core's sentence. */
export async function call<C extends ApiChannel>(channel: C, req: Req<C>): Promise<Res<C>> {
  const api = getApi() as unknown as Record<C, (r: Req<C>) => Promise<{ ok: boolean }>>;
  const r = (await api[channel](req)) as
    { ok: true; value: Res<C> } | { ok: false; error: { code: string; message: string } };
  if (!r.ok) throw new ApiError(r.error.code, r.error.message);
  return r.value;
}

/** Subscribes to a contract event for the life of the component. */
export function useEvent<E extends EventName>(
  event: E,
  listener: (payload: EventPayload<E>) => void,
): void {
  const ref = useRef(listener);
  useEffect(() => {
    ref.current = listener;
  });
  useEffect(() => getApi().on(event, (p) => ref.current(p)), [event]);
}
