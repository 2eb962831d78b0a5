// The Messages API's wire shapes, built from a scripted reply: the JSON Message, the SSE events
// of the same message, and error bodies. Typed against the SDK's own (beta, superset)
// declarations so a field the SDK expects cannot be left out; a request without an
// `anthropic-beta` header gets the plain shape, without the beta-only fields.
import { randomBytes } from 'node:crypto';
import type {
  BetaContentBlock,
  BetaContextManagementResponse,
  BetaIterationsUsage,
  BetaMessage,
  BetaRawContentBlockDelta,
  BetaRawMessageStreamEvent,
  BetaUsage,
} from '@anthropic-ai/sdk/resources/beta/messages/messages';
import { estimateInputTokens, estimateTokens } from './blocks.js';
import type { InputUsage } from './cache.js';
import { uncached } from './cache.js';
import type { AssistantReply, MessagesRequestBody, ReplyBlock } from './script.js';

export { estimateInputTokens, estimateTokens } from './blocks.js';

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** An id in the API's style (`msg_01...`, `toolu_01...`, `req_01...`), random per call. */
export function apiId(prefix: 'msg' | 'toolu' | 'req'): string {
  const bytes = randomBytes(22);
  let s = '';
  for (const b of bytes) s += ALNUM[b % ALNUM.length];
  return `${prefix}_01${s}`;
}

function blockText(block: ReplyBlock): string {
  switch (block.type) {
    case 'text':
      return block.text;
    case 'tool_use':
      return block.name + JSON.stringify(block.input);
    case 'thinking':
      return block.thinking;
    case 'redacted_thinking':
      return '';
    case 'compaction':
      return block.content ?? '';
  }
}

function contentBlock(block: ReplyBlock): BetaContentBlock {
  switch (block.type) {
    case 'text':
      return { type: 'text', text: block.text, citations: null };
    case 'tool_use':
      return {
        type: 'tool_use',
        id: block.id ?? apiId('toolu'),
        name: block.name,
        input: block.input,
        caller: { type: 'direct' },
      };
    case 'thinking':
      return { type: 'thinking', thinking: block.thinking, signature: block.signature };
    case 'redacted_thinking':
      return { type: 'redacted_thinking', data: block.data };
    case 'compaction':
      return {
        type: 'compaction',
        content: block.content,
        encrypted_content: block.encrypted_content ?? null,
      };
  }
}

/** What the server worked out about a request's tokens, for `usage`. */
export interface TurnUsage {
  /** The sampling pass's input side (cache reads and writes included); null: nothing was sampled. */
  input: InputUsage | null;
  /** A compaction the request ran before sampling: its input side and its summary's tokens. */
  compaction?: { input: InputUsage; output_tokens: number };
}

/** How {@link buildMessage} shapes the reply beyond the script. */
export interface BuildOptions {
  /** Computed usage; by default the whole prompt is uncached input. */
  usage?: TurnUsage;
  /** Blocks the server puts before the scripted ones (the compaction block it produced). */
  prepend?: BetaContentBlock[];
  /** The response's `context_management` (beta only; null when the request sent none). */
  contextManagement?: BetaContextManagementResponse | null;
  /** Include the beta-only fields: `context_management`, `usage.iterations`. */
  beta?: boolean;
}

/**
 * The complete Message the API would return for `reply`, with ids generated where the script
 * left them out and the request's model echoed. Streaming sends this same message as events.
 * A scripted `usage` replaces the computed sampling-pass numbers. As the API documents it, a
 * compaction's tokens are reported in `usage.iterations` only, not in the top-level fields.
 */
export function buildMessage(
  reply: AssistantReply,
  request: MessagesRequestBody,
  opts: BuildOptions = {},
): BetaMessage {
  const content = [...(opts.prepend ?? []), ...reply.content.map(contentBlock)];
  const computed: TurnUsage = opts.usage ?? { input: uncached(estimateInputTokens(request)) };
  const sampled = computed.input !== null;
  const u = reply.usage;
  const input: InputUsage = u
    ? {
        input_tokens: u.input_tokens,
        cache_read_input_tokens: u.cache_read_input_tokens ?? 0,
        cache_creation_input_tokens: u.cache_creation_input_tokens ?? 0,
        cache_creation: {
          ephemeral_5m_input_tokens: u.cache_creation_input_tokens ?? 0,
          ephemeral_1h_input_tokens: 0,
        },
      }
    : (computed.input ?? uncached(0));
  const output_tokens =
    u?.output_tokens ?? (sampled ? estimateTokens(reply.content.map(blockText).join('')) : 0);
  const model = request.model ?? 'unknown-model';
  let iterations: BetaIterationsUsage | null = null;
  if (computed.compaction) {
    iterations = [
      {
        type: 'compaction',
        ...computed.compaction.input,
        output_tokens: computed.compaction.output_tokens,
      },
    ];
    if (sampled) iterations.push({ type: 'message', ...input, output_tokens, model });
  }
  const usage: BetaUsage = {
    ...input,
    output_tokens,
    iterations,
    fallback_credit: null,
    server_tool_use: null,
    service_tier: 'standard',
    inference_geo: null,
    output_tokens_details: null,
    speed: null,
  };
  const message: BetaMessage = {
    id: reply.id ?? apiId('msg'),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: reply.stop_reason,
    stop_sequence: reply.stop_sequence ?? null,
    stop_details: null,
    container: null,
    context_management: opts.contextManagement ?? null,
    diagnostics: null,
    usage,
  };
  return opts.beta ? message : plainMessage(message);
}

/** `message` without the fields only the beta API sends. */
function plainMessage(message: BetaMessage): BetaMessage {
  const { context_management: _cm, ...rest } = message;
  const { iterations: _it, fallback_credit: _fc, ...usage } = message.usage;
  return { ...rest, usage } as BetaMessage;
}

/** Splits `text` into at most `parts` non-empty pieces on code-point boundaries (never inside a surrogate pair). */
export function splitPieces(text: string, parts: number): string[] {
  const chars = Array.from(text);
  if (chars.length === 0) return [];
  const size = Math.max(1, Math.ceil(chars.length / Math.max(1, parts)));
  const out: string[] = [];
  for (let i = 0; i < chars.length; i += size) out.push(chars.slice(i, i + size).join(''));
  return out;
}

/** One server-sent event: its `event:` name and the JSON written as its `data:`. */
export interface SseEvent {
  event: string;
  data: BetaRawMessageStreamEvent | { type: 'ping' } | ErrorBody;
}

/**
 * The SSE events the API streams for `message`, in its order: message_start (empty content,
 * null stop_reason), one ping, per block content_block_start / deltas / content_block_stop,
 * message_delta (stop_reason, cumulative usage, iterations and context_management), message_stop.
 * Text, thinking and tool-input JSON are cut into up to `parts` deltas; a thinking block ends
 * with one signature_delta; a compaction block starts empty and gets its whole summary in one
 * compaction_delta, as the beta API sends it.
 */
export function messageEvents(message: BetaMessage, parts = 3): SseEvent[] {
  const ev = (data: BetaRawMessageStreamEvent): SseEvent => ({ event: data.type, data });
  const beta = 'context_management' in message;
  const out: SseEvent[] = [];
  const startUsage = { ...message.usage, output_tokens: Math.min(1, message.usage.output_tokens) };
  if (beta) startUsage.iterations = null;
  out.push(
    ev({
      type: 'message_start',
      message: {
        ...message,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        stop_details: null,
        ...(beta ? { context_management: null } : {}),
        usage: startUsage,
      },
    }),
  );
  out.push({ event: 'ping', data: { type: 'ping' } });
  message.content.forEach((block, index) => {
    switch (block.type) {
      case 'text':
        out.push(ev({ type: 'content_block_start', index, content_block: { ...block, text: '' } }));
        for (const text of splitPieces(block.text, parts)) {
          out.push(ev({ type: 'content_block_delta', index, delta: { type: 'text_delta', text } }));
        }
        break;
      case 'tool_use':
        out.push(
          ev({ type: 'content_block_start', index, content_block: { ...block, input: {} } }),
        );
        for (const partial_json of splitPieces(JSON.stringify(block.input ?? {}), parts)) {
          out.push(
            ev({
              type: 'content_block_delta',
              index,
              delta: { type: 'input_json_delta', partial_json },
            }),
          );
        }
        break;
      case 'thinking':
        out.push(
          ev({
            type: 'content_block_start',
            index,
            content_block: { type: 'thinking', thinking: '', signature: '' },
          }),
        );
        for (const thinking of splitPieces(block.thinking, parts)) {
          out.push(
            ev({
              type: 'content_block_delta',
              index,
              // estimated_tokens comes only with the thinking-token-count beta.
              delta: { type: 'thinking_delta', thinking } as BetaRawContentBlockDelta,
            }),
          );
        }
        out.push(
          ev({
            type: 'content_block_delta',
            index,
            delta: { type: 'signature_delta', signature: block.signature },
          }),
        );
        break;
      case 'compaction':
        out.push(
          ev({
            type: 'content_block_start',
            index,
            content_block: { type: 'compaction', content: null, encrypted_content: null },
          }),
        );
        out.push(
          ev({
            type: 'content_block_delta',
            index,
            delta: {
              type: 'compaction_delta',
              content: block.content,
              encrypted_content: block.encrypted_content,
            },
          }),
        );
        break;
      default:
        // redacted_thinking (and anything else) arrives whole in content_block_start.
        out.push(ev({ type: 'content_block_start', index, content_block: block }));
    }
    out.push(ev({ type: 'content_block_stop', index }));
  });
  const u = message.usage;
  const delta = {
    type: 'message_delta' as const,
    delta: {
      stop_reason: message.stop_reason,
      stop_sequence: message.stop_sequence,
      stop_details: message.stop_details,
      container: null,
    },
    context_management: message.context_management ?? null,
    usage: {
      output_tokens: u.output_tokens,
      input_tokens: u.input_tokens,
      cache_creation_input_tokens: u.cache_creation_input_tokens,
      cache_read_input_tokens: u.cache_read_input_tokens,
      server_tool_use: null,
      output_tokens_details: null,
      iterations: u.iterations ?? null,
      fallback_credit: null,
    },
  };
  if (!beta) {
    const { context_management: _cm, ...plain } = delta;
    const { iterations: _it, fallback_credit: _fc, ...usage } = delta.usage;
    out.push(ev({ ...plain, usage } as BetaRawMessageStreamEvent));
  } else {
    out.push(ev(delta));
  }
  out.push(ev({ type: 'message_stop' }));
  return out;
}

/** Writes one event in SSE framing: `event: NAME`, `data: JSON`, blank line. */
export function formatSse(e: SseEvent): string {
  return `event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`;
}

/** The API's error body: `{type:'error', error:{type, message}, request_id}`. */
export interface ErrorBody {
  type: 'error';
  error: { type: string; message: string };
  request_id: string | null;
}

const DEFAULT_MESSAGES: Record<string, string> = {
  invalid_request_error: 'Invalid request',
  authentication_error: 'invalid x-api-key',
  billing_error: 'Your credit balance is too low to access the Anthropic API.',
  permission_error: 'Your API key does not have permission to use the specified resource.',
  not_found_error: 'Not found',
  request_too_large: 'Request exceeds the maximum allowed number of bytes.',
  rate_limit_error: 'This request would exceed the rate limit for your organization.',
  api_error: 'Internal server error',
  timeout_error: 'Request timed out',
  overloaded_error: 'Overloaded',
};

const STATUS_FOR_TYPE: Record<string, number> = {
  invalid_request_error: 400,
  authentication_error: 401,
  billing_error: 402,
  permission_error: 403,
  not_found_error: 404,
  request_too_large: 413,
  rate_limit_error: 429,
  api_error: 500,
  timeout_error: 504,
  overloaded_error: 529,
};

/** The HTTP status the API uses for an `error.type` (500 for one it does not know). */
export function statusForErrorType(errorType: string): number {
  return STATUS_FOR_TYPE[errorType] ?? 500;
}

/** An error body for `errorType`, with the API's usual wording when `message` is left out. */
export function errorBody(
  errorType: string,
  message: string | undefined,
  requestId: string,
): ErrorBody {
  return {
    type: 'error',
    error: { type: errorType, message: message ?? DEFAULT_MESSAGES[errorType] ?? errorType },
    request_id: requestId,
  };
}

/** A plausible reply for stream-error and hang steps that did not script one. */
export const FILLER_REPLY: AssistantReply = {
  content: [{ type: 'text', text: 'Working on it: reading the files you gave me now.' }],
  stop_reason: 'end_turn',
};

/**
 * The checks of the real API an agent loop most often trips over, as its 400 message, or null:
 * required fields, and tool_use / tool_result pairing between neighbouring messages.
 */
export function requestProblem(body: MessagesRequestBody): string | null {
  if (typeof body.model !== 'string' || !body.model) return 'model: Field required';
  if (typeof body.max_tokens !== 'number') return 'max_tokens: Field required';
  if (!Array.isArray(body.messages)) return 'messages: Field required';
  const blocks = (content: unknown): Array<Record<string, unknown>> =>
    Array.isArray(content) ? (content as Array<Record<string, unknown>>) : [];
  for (let i = 0; i < body.messages.length; i++) {
    const m = body.messages[i]!;
    if (m.role !== 'user' && m.role !== 'assistant') {
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    }
    const prev = i > 0 ? body.messages[i - 1] : undefined;
    const toolUseIds =
      prev?.role === 'assistant'
        ? blocks(prev.content)
            .filter((b) => b.type === 'tool_use')
            .map((b) => String(b.id))
        : [];
    const resultIds = blocks(m.content)
      .filter((b) => b.type === 'tool_result')
      .map((b) => String(b.tool_use_id));
    const unexpected = resultIds.filter((id) => !toolUseIds.includes(id));
    if (unexpected.length > 0) {
      return (
        `messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ` +
        `${unexpected.join(', ')}. Each \`tool_result\` block must have a corresponding ` +
        '`tool_use` block in the previous message.'
      );
    }
    if (prev && toolUseIds.length > 0) {
      const missing = toolUseIds.filter((id) => !resultIds.includes(id));
      if (missing.length > 0) {
        return (
          `messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks ` +
          `immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a ` +
          'corresponding `tool_result` block in the next message.'
        );
      }
    }
  }
  return null;
}
