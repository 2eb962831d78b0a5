import Anthropic, { APIConnectionError, APIError, APIUserAbortError } from '@anthropic-ai/sdk';
import type {
  Message,
  MessageCreateParamsStreaming,
  RawMessageStreamEvent,
} from '@anthropic-ai/sdk/resources/messages';
import { PaddockError } from '../../shared/result.js';

/** How a model call is retried: exponential backoff from `baseMs`, at most `attempts` tries. */
export interface RetryPolicy {
  attempts: number;
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseMs: 1000, maxMs: 60_000 };

/**
 * One request's parameters. With `betas` (server-side compaction) it goes through the beta
 * Messages API, which also takes `context_management`; its replies may hold `compaction` blocks,
 * which go back to the API unchanged like every other block.
 */
export type TurnParams = Omit<MessageCreateParamsStreaming, 'stream'> & {
  betas?: string[];
  context_management?: { edits: Array<Record<string, unknown>> };
};

function openStream(client: Anthropic, params: TurnParams, signal: AbortSignal) {
  const { betas, ...rest } = params;
  if (betas?.length)
    return client.beta.messages.stream(
      { ...rest, betas } as Parameters<typeof client.beta.messages.stream>[0],
      { signal },
    );
  return client.messages.stream(rest as Omit<MessageCreateParamsStreaming, 'stream'>, { signal });
}

/** The API's exact count of a request's input tokens (the same parameters as the request). */
export async function countTokens(
  client: Anthropic,
  params: TurnParams,
  signal: AbortSignal,
): Promise<number> {
  const { betas, model, system, messages, tools, thinking, context_management } = params;
  const body = { model, system, messages, tools, thinking };
  const r = betas?.length
    ? await client.beta.messages.countTokens(
        { ...body, betas, context_management } as Parameters<
          typeof client.beta.messages.countTokens
        >[0],
        { signal },
      )
    : await client.messages.countTokens(body as Parameters<typeof client.messages.countTokens>[0], {
        signal,
      });
  return r.input_tokens;
}

/** Live events of one model call, for the UI and the CLI. */
export interface StreamCallbacks {
  onEvent?(event: RawMessageStreamEvent): void;
  /** A retryable failure; partial output of this attempt should be discarded. */
  onRetry?(info: { attempt: number; delayMs: number; reason: string }): void;
}

/** Builds the SDK client. Retries are ours (they also cover errors in the middle of a stream). */
export function createAnthropic(opts: { apiKey: string; baseURL?: string | undefined }): Anthropic {
  return new Anthropic({
    apiKey: opts.apiKey,
    ...(opts.baseURL ? { baseURL: opts.baseURL } : {}),
    maxRetries: 0,
  });
}

function retryAfterMs(err: APIError): number | undefined {
  const h = err.headers;
  const ms = h?.get?.('retry-after-ms');
  if (ms && !Number.isNaN(Number(ms))) return Number(ms);
  const s = h?.get?.('retry-after');
  if (!s) return undefined;
  if (!Number.isNaN(Number(s))) return Number(s) * 1000;
  const date = Date.parse(s);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

const RETRYABLE_TYPES = new Set([
  'overloaded_error',
  'api_error',
  'rate_limit_error',
  'timeout_error',
]);

/** Classifies a failure: retry (with the server's delay, if it gave one) or stop with a sentence. */
export function classify(err: unknown): { retry: boolean; delayMs?: number; reason: string } {
  if (err instanceof APIUserAbortError) return { retry: false, reason: 'cancelled' };
  if (err instanceof APIConnectionError)
    return { retry: true, reason: `connection failed (${err.message})` };
  if (err instanceof APIError) {
    const status = err.status;
    const type =
      err.type ??
      (err.error as { error?: { type?: string } } | undefined)?.error?.type ??
      undefined;
    const delayMs = retryAfterMs(err);
    if (status === undefined) {
      // An `error` event in the middle of a stream.
      return {
        retry: type === undefined || RETRYABLE_TYPES.has(type),
        ...(delayMs !== undefined ? { delayMs } : {}),
        reason: `stream error ${type ?? ''}`.trim(),
      };
    }
    if (status === 429 || status === 529 || status >= 500 || status === 408) {
      return {
        retry: true,
        ...(delayMs !== undefined ? { delayMs } : {}),
        reason: `HTTP ${status}${type ? ` ${type}` : ''}`,
      };
    }
    return { retry: false, reason: `HTTP ${status}` };
  }
  return { retry: false, reason: String(err) };
}

/** Turns a final model failure into a sentence a person can act on. */
export function explain(err: unknown): PaddockError {
  if (err instanceof APIError && (err.status === 401 || err.status === 403)) {
    return new PaddockError(
      'AUTH',
      err.status === 401
        ? 'The Anthropic API key is missing or wrong: set ANTHROPIC_API_KEY (or enter the key in Settings) and try again.'
        : 'The Anthropic API key is not allowed to use this model or endpoint: check the key’s workspace and permissions in the Anthropic Console.',
    );
  }
  if (err instanceof APIError) {
    const msg =
      (err.error as { error?: { message?: string } } | undefined)?.error?.message ?? err.message;
    if (err.status === 400)
      return new PaddockError('MODEL_REQUEST', `The model rejected the request: ${msg}`);
    if (err.status === 404)
      return new PaddockError(
        'MODEL_NOT_FOUND',
        `The model was not found: ${msg} Check the model name in Settings.`,
      );
    return new PaddockError(
      'MODEL_ERROR',
      `The model service failed (${err.status ?? 'stream'}): ${msg} Try again in a minute.`,
    );
  }
  if (err instanceof APIConnectionError) {
    return new PaddockError(
      'MODEL_UNREACHABLE',
      'Could not reach the Anthropic API: check the network connection (or ANTHROPIC_BASE_URL) and try again.',
    );
  }
  if (err instanceof PaddockError) return err;
  return new PaddockError(
    'MODEL_ERROR',
    `The model call failed: ${(err as Error)?.message ?? String(err)}`,
  );
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new APIUserAbortError());
      },
      { once: true },
    );
  });

/**
 * One model turn, streamed, with retries: 429/529/5xx and mid-stream `error` events are retried
 * with exponential backoff that honours retry-after; anything else ends with a sentence.
 */
export async function streamTurn(
  client: Anthropic,
  params: TurnParams,
  cb: StreamCallbacks,
  signal: AbortSignal,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<Message> {
  for (let attempt = 1; ; attempt++) {
    try {
      const stream = openStream(client, params, signal);
      for await (const event of stream) cb.onEvent?.(event as RawMessageStreamEvent);
      return (await stream.finalMessage()) as Message;
    } catch (err) {
      if (signal.aborted) throw new APIUserAbortError();
      const c = classify(err);
      if (!c.retry || attempt >= policy.attempts) throw explain(err);
      const backoff = Math.min(policy.maxMs, policy.baseMs * 2 ** (attempt - 1));
      const delayMs = Math.min(policy.maxMs, c.delayMs ?? backoff * (0.8 + Math.random() * 0.4));
      cb.onRetry?.({ attempt, delayMs, reason: c.reason });
      await sleep(delayMs, signal);
    }
  }
}
