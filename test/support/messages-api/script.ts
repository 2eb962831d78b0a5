// The script a mock Messages API replays: one step per POST /v1/messages, in order.
// Kept free of node:http so the CLI and the in-process server share the same shapes and checks.

/** One block of a scripted assistant reply, in the shape the real API returns it. */
export type ReplyBlock =
  | { type: 'text'; text: string }
  | { type: 'tool_use'; id?: string; name: string; input: unknown }
  | { type: 'thinking'; thinking: string; signature: string }
  | { type: 'redacted_thinking'; data: string }
  /** A server-side compaction summary, as the beta API returns it (null content: it failed). */
  | { type: 'compaction'; content: string | null; encrypted_content?: string | null };

/** Why the scripted turn stopped; the subset of the API's `stop_reason` values an agent loop meets. */
export type ScriptStopReason =
  | 'end_turn'
  | 'tool_use'
  | 'max_tokens'
  | 'pause_turn'
  | 'refusal'
  | 'stop_sequence'
  | 'model_context_window_exceeded'
  | 'compaction';

/**
 * Token counts to report instead of the computed ones (the sampling pass's input and the output);
 * cache fields left out are zero.
 */
export interface ScriptUsage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

/** A whole assistant turn: streamed as SSE when the request says `stream: true`, else one JSON Message. */
export interface AssistantReply {
  content: ReplyBlock[];
  stop_reason: ScriptStopReason;
  /** Set with `stop_reason: 'stop_sequence'`; null otherwise. */
  stop_sequence?: string | null;
  usage?: ScriptUsage;
  /** The message id; `msg_...` is generated when absent. */
  id?: string;
}

/** Reply with a scripted assistant turn, optionally waiting `delayMs` between SSE events. */
export interface ReplyStep {
  reply: AssistantReply;
  /** Pause between SSE events (streaming) or before the body (non-streaming), so progress is observable. */
  delayMs?: number;
  /** Extra response headers, e.g. rate-limit headers. */
  headers?: Record<string, string>;
}

/** Answer with an HTTP error in the real body shape `{type:'error', error:{type, message}, request_id}`. */
export interface HttpErrorStep {
  status: number;
  /** The API's `error.type`, e.g. `overloaded_error`, `rate_limit_error`, `api_error`, `authentication_error`. */
  errorType: string;
  message?: string;
  /** e.g. `{ 'retry-after': '1' }` or `{ 'retry-after-ms': '5' }`, which the SDK honours when it retries. */
  headers?: Record<string, string>;
}

/**
 * Start a 200 SSE stream, send `afterEvents` events of `reply` (or of a short default text reply),
 * then an `event: error` and end the response. Counted events include the `ping` after
 * `message_start`. A non-streaming request gets the matching HTTP error instead.
 */
export interface StreamErrorStep {
  streamError: { afterEvents: number; errorType: string; message: string };
  reply?: AssistantReply;
  delayMs?: number;
}

/**
 * Accept the request and never finish it, until the client goes away. With `afterEvents` a
 * streaming request first gets the 200 headers and that many events of `reply` (or a default),
 * so a cancel can be tested mid-stream.
 */
export interface HangStep {
  hang: true;
  afterEvents?: number;
  reply?: AssistantReply;
}

/** The steps a JSON script file can hold (everything but a handler function). */
export type ScriptStep = ReplyStep | HttpErrorStep | StreamErrorStep | HangStep;

/** What a handler sees of the request: the parsed JSON body and the lowercased headers. */
export interface RecordedRequest {
  /** 1-based position among POST /v1/messages requests. */
  n: number;
  method: string;
  path: string;
  headers: Record<string, string>;
  /** The parsed JSON body (model, system, messages, tools, thinking, max_tokens, stream, ...). */
  body: MessagesRequestBody;
  /** Set once the client closed the connection before the server finished the response. */
  aborted: boolean;
  /** What the server answered: an HTTP status, or 'hang'. Filled in as the answer starts. */
  outcome?: number | 'hang';
}

/** The request fields tests usually look at; anything else the client sent is kept as well. */
export interface MessagesRequestBody {
  model?: string;
  max_tokens?: number;
  stream?: boolean;
  system?: unknown;
  messages?: Array<{ role: string; content: unknown }>;
  tools?: unknown[];
  thinking?: unknown;
  [key: string]: unknown;
}

/** Decide the answer from the request, e.g. to echo a tool_result back as text. */
export interface HandlerStep {
  handler: (body: MessagesRequestBody, request: RecordedRequest) => Step | Promise<Step>;
}

/** One scripted answer to one POST /v1/messages. */
export type Step = ScriptStep | HandlerStep;

const BLOCK_TYPES = new Set(['text', 'tool_use', 'thinking', 'redacted_thinking', 'compaction']);
const STOP_REASONS = new Set<string>([
  'end_turn',
  'tool_use',
  'max_tokens',
  'pause_turn',
  'refusal',
  'stop_sequence',
  'model_context_window_exceeded',
  'compaction',
]);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkReply(reply: unknown, where: string): void {
  if (!isObject(reply)) throw new Error(`${where}: reply must be an object`);
  if (!Array.isArray(reply.content)) throw new Error(`${where}: reply.content must be an array`);
  if (typeof reply.stop_reason !== 'string' || !STOP_REASONS.has(reply.stop_reason)) {
    throw new Error(`${where}: reply.stop_reason must be one of ${[...STOP_REASONS].join(', ')}`);
  }
  reply.content.forEach((block: unknown, i) => {
    const at = `${where}: reply.content[${i}]`;
    if (!isObject(block) || typeof block.type !== 'string' || !BLOCK_TYPES.has(block.type)) {
      throw new Error(`${at} must have a type of ${[...BLOCK_TYPES].join(', ')}`);
    }
    const need = (field: string) => {
      if (typeof block[field] !== 'string') throw new Error(`${at} (${block.type}) needs ${field}`);
    };
    if (block.type === 'text') need('text');
    if (block.type === 'tool_use') {
      need('name');
      if (!('input' in block)) throw new Error(`${at} (tool_use) needs input`);
    }
    if (block.type === 'thinking') {
      need('thinking');
      need('signature');
    }
    if (block.type === 'redacted_thinking') need('data');
    if (
      block.type === 'compaction' &&
      typeof block.content !== 'string' &&
      block.content !== null
    ) {
      throw new Error(`${at} (compaction) needs content (a string, or null)`);
    }
  });
}

/**
 * Checks a step's shape and throws a sentence naming the first problem, so a typo in a JSON
 * script fails when it is loaded rather than as a confusing reply later.
 */
export function checkStep(step: unknown, where = 'step'): asserts step is Step {
  if (!isObject(step)) throw new Error(`${where}: must be an object`);
  if (typeof step.handler === 'function') return;
  if ('reply' in step && !('streamError' in step) && !('hang' in step)) {
    return checkReply(step.reply, where);
  }
  if ('streamError' in step) {
    const se = step.streamError;
    if (
      !isObject(se) ||
      typeof se.afterEvents !== 'number' ||
      typeof se.errorType !== 'string' ||
      typeof se.message !== 'string'
    ) {
      throw new Error(`${where}: streamError needs afterEvents (number), errorType and message`);
    }
    if (step.reply !== undefined) checkReply(step.reply, where);
    return;
  }
  if ('hang' in step) {
    if (step.hang !== true) throw new Error(`${where}: hang must be true`);
    if (step.reply !== undefined) checkReply(step.reply, where);
    return;
  }
  if ('status' in step) {
    if (typeof step.status !== 'number' || step.status < 400 || step.status > 599) {
      throw new Error(`${where}: status must be an HTTP error status (400-599)`);
    }
    if (typeof step.errorType !== 'string') throw new Error(`${where}: errorType is required`);
    return;
  }
  throw new Error(`${where}: not a step (expected reply, status, streamError, hang or handler)`);
}

/** Parses and checks a JSON script: an array of steps, as the CLI's `--script FILE.json` holds. */
export function parseScript(json: string): ScriptStep[] {
  const parsed: unknown = JSON.parse(json);
  if (!Array.isArray(parsed)) throw new Error('script: expected a JSON array of steps');
  parsed.forEach((step, i) => checkStep(step, `script[${i}]`));
  return parsed as ScriptStep[];
}
