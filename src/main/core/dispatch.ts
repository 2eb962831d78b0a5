import { z } from 'zod';
import {
  describeSchemaError,
  isChannel,
  requests,
  type Channel,
  type Res,
} from '../../shared/api.js';
import { err, ok, PaddockError, type Result } from '../../shared/result.js';

export type Handlers = {
  [C in Channel]: (req: z.infer<(typeof requests)[C]['req']>) => Promise<Res<C>> | Res<C>;
};

/**
 * The single entry for every request from every transport: checks the channel, parses the
 * request with its schema, runs the handler, and maps whatever happens to a Result. A malformed
 * request gets a schema error back, never a crash.
 */
export async function dispatch(
  handlers: Handlers,
  channel: unknown,
  raw: unknown,
): Promise<Result<unknown>> {
  if (!isChannel(channel)) {
    return err('UNKNOWN_CHANNEL', `There is no API call named ${JSON.stringify(channel)}.`);
  }
  const parsed = requests[channel].req.safeParse(raw ?? {});
  if (!parsed.success) return err('BAD_REQUEST', describeSchemaError(parsed.error));
  try {
    const handler = handlers[channel] as (req: unknown) => Promise<unknown> | unknown;
    const value = await handler(parsed.data);
    return ok(value);
  } catch (e) {
    if (e instanceof PaddockError) return err(e.code, e.message);
    if (e instanceof z.ZodError) return err('BAD_REQUEST', describeSchemaError(e));
    console.error(`[paddock] ${channel} failed:`, e);
    return err(
      'INTERNAL',
      `Paddock hit an internal error while handling ${channel}; see the logs folder.`,
    );
  }
}
