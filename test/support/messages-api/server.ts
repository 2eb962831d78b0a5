// A local server that speaks the Anthropic Messages API, so tests run the real @anthropic-ai/sdk
// without reaching the internet. Each POST /v1/messages takes the next scripted step; an empty
// queue is a loud 500, never a made-up answer.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type {
  AssistantReply,
  MessagesRequestBody,
  RecordedRequest,
  ScriptStep,
  Step,
} from './script.js';
import { checkStep } from './script.js';
import { contentKey, estimateTokens, promptBlocks } from './blocks.js';
import { PromptCache } from './cache.js';
import { compactionBlock, planContext } from './context.js';
import { DEFAULT_MODEL_IDS, FALLBACK_MODEL_ID, modelInfo, modelSpec } from './models.js';
import type { ModelSpec } from './models.js';
import { betasOf, modelProblem, promptTooLong } from './rules.js';
import type { BuildOptions } from './wire.js';
import {
  FILLER_REPLY,
  apiId,
  buildMessage,
  errorBody,
  formatSse,
  messageEvents,
  requestProblem,
  statusForErrorType,
} from './wire.js';

export type {
  AssistantReply,
  HandlerStep,
  HangStep,
  HttpErrorStep,
  MessagesRequestBody,
  RecordedRequest,
  ReplyBlock,
  ReplyStep,
  ScriptStep,
  ScriptUsage,
  Step,
  StreamErrorStep,
} from './script.js';
export type { ModelSpec } from './models.js';
export { DEFAULT_MODEL_IDS, MODEL_TABLE } from './models.js';

/** Options for {@link startMessagesApi}. */
export interface MessagesApiOptions {
  /** When set, a request must carry `Authorization: Bearer <key>` or `x-api-key: <key>`, else 401. */
  apiKey?: string;
  /**
   * Answer as the real API does to requests it refuses (default true): 400 invalid_request_error
   * for malformed requests and for what the named model does not accept (see rules.ts), 404 for a
   * model that is not listed. Off, every request is answered, with opus 5.5's numbers.
   */
  validate?: boolean;
  /** Port to listen on (default 0: any free port). Always 127.0.0.1. */
  port?: number;
  /**
   * Model ids GET /v1/models lists and POST /v1/messages accepts (default: every id of
   * MODEL_TABLE). An id the table lacks gets claude-opus-5-5's limits and capabilities.
   */
  models?: string[];
  /** The clock the prompt cache expires entries by, in ms (default Date.now). */
  now?: () => number;
  /** Called for every POST /v1/messages as it arrives (the CLI uses it to log requests to a file). */
  onRequest?: (request: RecordedRequest) => void;
  /** Called with each entry added to `problems`, e.g. to print it as it happens. */
  onProblem?: (problem: string) => void;
  /** How many deltas to cut each text, thinking or tool-input block into (default 3). */
  deltasPerBlock?: number;
}

/** A request to any other route (count_tokens, models, unknown paths), for assertions. */
export interface SideRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  status: number;
}

/** A running mock Messages API; see {@link startMessagesApi}. */
export interface MockMessagesApi {
  /** Base URL for the SDK's `baseURL` / ANTHROPIC_BASE_URL, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  /** Every POST /v1/messages received, in order, including ones answered with an error. */
  readonly requests: RecordedRequest[];
  /** Requests to the other routes (count_tokens, models, unknown). */
  readonly sideRequests: SideRequest[];
  /** What went wrong on the server's side (no step left, a handler threw, a request the API would reject). */
  readonly problems: string[];
  /** Steps still queued. */
  readonly remaining: number;
  /** Appends steps to the queue; each POST /v1/messages takes one. */
  enqueue(...steps: Step[]): void;
  /** Stops listening and drops open connections (including hanging ones). */
  close(): Promise<void>;
}

function lowerHeaders(req: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

async function readBody(req: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Starts the mock Messages API on 127.0.0.1. Routes: POST /v1/messages (scripted, streaming or
 * not), POST /v1/messages/count_tokens (characters / 4 per block), GET /v1/models and
 * /v1/models/:id. Every response carries a `request-id` header, as the real API's do. Usage is
 * computed from the prompt (blocks.ts), the server's prompt cache (cache.ts) and the request's
 * context management (context.ts) unless the step scripts it.
 */
export async function startMessagesApi(opts: MessagesApiOptions = {}): Promise<MockMessagesApi> {
  const queue: Step[] = [];
  const requests: RecordedRequest[] = [];
  const sideRequests: SideRequest[] = [];
  const problems: string[] = [];
  const complain = (problem: string) => {
    problems.push(problem);
    opts.onProblem?.(problem);
  };
  const validate = opts.validate ?? true;
  const models = opts.models ?? [...DEFAULT_MODEL_IDS];
  const parts = opts.deltasPerBlock ?? 3;
  const cache = new PromptCache(opts.now ?? Date.now);
  /** The content of every pause_turn reply sent, so sending one back is not taken for prefill. */
  const pausedTurns = new Set<string>();
  /** The rules for `model`: its row, or (when not validating) the fallback model's. */
  const specFor = (model: unknown): ModelSpec | undefined => {
    const spec = typeof model === 'string' ? modelSpec(model, models) : undefined;
    if (spec || validate) return spec;
    return { ...modelSpec(FALLBACK_MODEL_ID, [FALLBACK_MODEL_ID])!, id: String(model) };
  };

  const sendJson = (
    res: http.ServerResponse,
    status: number,
    body: unknown,
    requestId: string,
    headers: Record<string, string> = {},
  ) => {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(text),
      'request-id': requestId,
      ...headers,
    });
    res.end(text);
  };
  const sendError = (
    res: http.ServerResponse,
    status: number,
    errorType: string,
    message: string | undefined,
    requestId: string,
    headers: Record<string, string> = {},
  ) => sendJson(res, status, errorBody(errorType, message, requestId), requestId, headers);

  /** The auth error the API gives, or null when the key matches (or none is required). */
  const authProblem = (headers: Record<string, string>): string | null => {
    if (opts.apiKey === undefined) return null;
    const bearer = /^Bearer (.+)$/i.exec(headers['authorization'] ?? '')?.[1];
    const key = headers['x-api-key'] ?? bearer;
    if (key === undefined) return 'x-api-key header is required';
    return key === opts.apiKey ? null : 'invalid x-api-key';
  };

  const server = http.createServer({ noDelay: true }, (req, res) => {
    handle(req, res).catch((err: unknown) => {
      complain(`server error: ${String(err)}`);
      if (!res.headersSent) sendError(res, 500, 'api_error', String(err), apiId('req'));
      else res.destroy();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = apiId('req');
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    const headers = lowerHeaders(req);
    const raw = await readBody(req);

    if (!(method === 'POST' && path === '/v1/messages')) {
      const side: SideRequest = { method, path, headers, status: 0 };
      sideRequests.push(side);
      const answer = (status: number, body: unknown) => {
        side.status = status;
        sendJson(res, status, body, requestId);
      };
      const authMsg = authProblem(headers);
      if (authMsg) return answer(401, errorBody('authentication_error', authMsg, requestId));
      if (method === 'POST' && path === '/v1/messages/count_tokens') {
        let body: MessagesRequestBody;
        try {
          const parsed: unknown = JSON.parse(raw);
          if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
            throw new Error('not an object');
          }
          body = parsed as MessagesRequestBody;
        } catch {
          return answer(400, errorBody('invalid_request_error', 'Invalid JSON body', requestId));
        }
        if (!specFor(body.model)) {
          return answer(404, errorBody('not_found_error', `model: ${body.model}`, requestId));
        }
        const plan = planContext(body);
        return answer(200, {
          input_tokens: plan.tokens,
          ...(body.context_management != null
            ? { context_management: { original_input_tokens: plan.originalTokens } }
            : {}),
        });
      }
      if (method === 'GET' && path === '/v1/models') {
        const data = models.map((id) => modelInfo(modelSpec(id, models)!));
        return answer(200, {
          data,
          has_more: false,
          first_id: data[0]?.id ?? null,
          last_id: data.at(-1)?.id ?? null,
        });
      }
      const modelMatch = /^\/v1\/models\/([^/]+)$/.exec(path);
      if (method === 'GET' && modelMatch) {
        const id = decodeURIComponent(modelMatch[1]!);
        if (models.includes(id)) return answer(200, modelInfo(modelSpec(id, models)!));
        return answer(404, errorBody('not_found_error', `model: ${id}`, requestId));
      }
      return answer(404, errorBody('not_found_error', `Not found: ${method} ${path}`, requestId));
    }

    let body: MessagesRequestBody;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error();
      body = parsed as MessagesRequestBody;
    } catch {
      body = {};
    }
    const record: RecordedRequest = {
      n: requests.length + 1,
      method,
      path,
      headers,
      body,
      aborted: false,
    };
    requests.push(record);
    res.on('close', () => {
      if (!res.writableFinished) record.aborted = true;
    });
    opts.onRequest?.(record);
    const label = `request #${record.n}`;

    const authMsg = authProblem(headers);
    if (authMsg) {
      record.outcome = 401;
      return sendError(res, 401, 'authentication_error', authMsg, requestId);
    }
    const reject = (status: number, errorType: string, problem: string) => {
      complain(`${label}: the real API would reject it: ${problem}`);
      record.outcome = status;
      sendError(res, status, errorType, problem, requestId);
    };
    const problem = validate ? requestProblem(body) : null;
    if (problem) return reject(400, 'invalid_request_error', problem);
    const spec = specFor(body.model);
    if (!spec) return reject(404, 'not_found_error', `model: ${body.model}`);
    const betas = betasOf(headers);
    const isPausedTurn = (content: unknown) => pausedTurns.has(contentKey(content));
    const ruleProblem = validate ? modelProblem(body, spec, betas, isPausedTurn) : null;
    if (ruleProblem) return reject(400, 'invalid_request_error', ruleProblem);
    const plan = planContext(body);
    const tooLong = validate ? promptTooLong(plan.tokens, spec) : null;
    if (tooLong) return reject(400, 'invalid_request_error', tooLong);
    const compaction = plan.compacts ? compactionBlock(plan) : undefined;
    const paused = compaction !== undefined && plan.compact?.pause === true;

    // Usage is worked out once, when the reply is built: the compaction pass (if any) reads the
    // whole prompt, the sampling pass reads tools, system and the new summary.
    let built: BuildOptions | undefined;
    const options = (): BuildOptions => {
      if (built) return built;
      const min = spec.min_cacheable_tokens;
      const use = (p: typeof plan.prompt) =>
        cache.use(spec.id, promptBlocks(p, body.cache_control), min);
      const whole = use(plan.prompt);
      const compacted = { tools: plan.prompt.tools, system: plan.prompt.system };
      built = {
        usage: compaction
          ? {
              input: paused
                ? null
                : use({ ...compacted, messages: [{ role: 'assistant', content: [compaction] }] }),
              compaction: { input: whole, output_tokens: estimateTokens(compaction.content) },
            }
          : { input: whole },
        prepend: compaction ? [compaction] : [],
        contextManagement: body.context_management != null ? { applied_edits: plan.applied } : null,
        beta: betas.size > 0,
      };
      return built;
    };
    if (paused) {
      // pause_after_compaction: the answer is the compaction block alone; no step is taken, so
      // the scripted reply answers the request that continues after it.
      const reply: AssistantReply = { content: [], stop_reason: 'compaction' };
      return answerStep({ reply }, body, record, res, requestId, options);
    }

    let step: Step | undefined = queue.shift();
    if (step === undefined) {
      const msg = `Mock Messages API: no scripted reply left for ${label} (model ${body.model}, ${body.messages?.length ?? 0} messages)`;
      complain(msg);
      record.outcome = 500;
      // x-should-retry: false keeps the SDK's own retries from hiding the failure.
      return sendError(res, 500, 'api_error', msg, requestId, { 'x-should-retry': 'false' });
    }
    try {
      for (let depth = 0; 'handler' in step; depth++) {
        if (depth > 10) throw new Error('handlers returned handlers more than 10 times');
        step = await step.handler(body, record);
        checkStep(step, `${label} handler result`);
      }
    } catch (err) {
      const msg = `Mock Messages API: the handler for ${label} failed: ${String(err)}`;
      complain(msg);
      record.outcome = 500;
      return sendError(res, 500, 'api_error', msg, requestId, { 'x-should-retry': 'false' });
    }
    await answerStep(step, body, record, res, requestId, options);
  }

  async function answerStep(
    step: ScriptStep,
    body: MessagesRequestBody,
    record: RecordedRequest,
    res: http.ServerResponse,
    requestId: string,
    options: () => BuildOptions,
  ): Promise<void> {
    const streaming = body.stream === true;
    const build = (reply: AssistantReply) => {
      const message = buildMessage(reply, body, options());
      if (message.stop_reason === 'pause_turn') pausedTurns.add(contentKey(message.content));
      return message;
    };
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const gone = () => record.aborted || res.destroyed;

    const stream = async (
      reply: AssistantReply,
      limit: number,
      delayMs: number,
      headers: Record<string, string> = {},
    ): Promise<boolean> => {
      record.outcome = 200;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
        'request-id': requestId,
        ...headers,
      });
      res.flushHeaders();
      const events = messageEvents(build(reply), parts).slice(0, limit);
      for (const [i, e] of events.entries()) {
        if (delayMs > 0 && i > 0) await sleep(delayMs);
        if (gone()) return false;
        res.write(formatSse(e));
      }
      return true;
    };

    if ('streamError' in step) {
      const { afterEvents, errorType, message } = step.streamError;
      if (!streaming) {
        record.outcome = statusForErrorType(errorType);
        return sendError(res, record.outcome, errorType, message, requestId);
      }
      const ok = await stream(step.reply ?? FILLER_REPLY, afterEvents, step.delayMs ?? 0);
      if (!ok) return;
      if (step.delayMs) await sleep(step.delayMs);
      if (gone()) return;
      res.end(formatSse({ event: 'error', data: errorBody(errorType, message, requestId) }));
      return;
    }
    if ('hang' in step) {
      if (streaming && step.afterEvents !== undefined) {
        await stream(step.reply ?? FILLER_REPLY, step.afterEvents, 0);
      } else {
        record.outcome = 'hang';
      }
      // Nothing more is written; the response stays open until the client or close() drops it.
      return;
    }
    if ('status' in step) {
      record.outcome = step.status;
      return sendError(res, step.status, step.errorType, step.message, requestId, step.headers);
    }
    // A reply.
    if (streaming) {
      const ok = await stream(step.reply, Infinity, step.delayMs ?? 0, step.headers);
      if (ok && !gone()) res.end();
      return;
    }
    if (step.delayMs) await sleep(step.delayMs);
    if (gone()) return;
    record.outcome = 200;
    sendJson(res, 200, build(step.reply), requestId, step.headers);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sideRequests,
    problems,
    get remaining() {
      return queue.length;
    },
    enqueue(...steps: Step[]) {
      steps.forEach((s, i) => checkStep(s, `enqueue step ${i}`));
      queue.push(...steps);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
