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
import {
  FILLER_REPLY,
  apiId,
  buildMessage,
  errorBody,
  estimateInputTokens,
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

/** Options for {@link startMessagesApi}. */
export interface MessagesApiOptions {
  /** When set, a request must carry `Authorization: Bearer <key>` or `x-api-key: <key>`, else 401. */
  apiKey?: string;
  /** Answer 400 invalid_request_error to malformed requests, as the real API does (default true). */
  validate?: boolean;
  /** Port to listen on (default 0: any free port). Always 127.0.0.1. */
  port?: number;
  /** Model ids GET /v1/models lists (default: three current ids). */
  models?: string[];
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

const DEFAULT_MODELS = ['claude-opus-5-5', 'claude-sonnet-5-5', 'claude-haiku-5-5'];

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
 * not), POST /v1/messages/count_tokens (characters / 4), GET /v1/models and /v1/models/:id.
 * Every response carries a `request-id` header, as the real API's do.
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
  const models = opts.models ?? DEFAULT_MODELS;
  const parts = opts.deltasPerBlock ?? 3;

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
          body = JSON.parse(raw) as MessagesRequestBody;
        } catch {
          return answer(400, errorBody('invalid_request_error', 'Invalid JSON body', requestId));
        }
        return answer(200, { input_tokens: estimateInputTokens(body) });
      }
      if (method === 'GET' && path === '/v1/models') {
        const data = models.map(modelInfo);
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
        if (models.includes(id)) return answer(200, modelInfo(id));
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
    const problem = validate ? requestProblem(body) : null;
    if (problem) {
      complain(`${label}: the real API would reject it: ${problem}`);
      record.outcome = 400;
      return sendError(res, 400, 'invalid_request_error', problem, requestId);
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
    await answerStep(step, body, record, res, requestId);
  }

  async function answerStep(
    step: ScriptStep,
    body: MessagesRequestBody,
    record: RecordedRequest,
    res: http.ServerResponse,
    requestId: string,
  ): Promise<void> {
    const streaming = body.stream === true;
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
      const events = messageEvents(buildMessage(reply, body), parts).slice(0, limit);
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
    sendJson(res, 200, buildMessage(step.reply, body), requestId, step.headers);
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

function modelInfo(id: string) {
  return {
    type: 'model' as const,
    id,
    display_name: id
      .replace(/^claude-/, 'Claude ')
      .replace(/-(\d+)-(\d+)$/, ' $1.$2')
      .replace(/\b[a-z]/g, (c) => c.toUpperCase()),
    created_at: '2026-01-01T00:00:00Z',
    capabilities: null,
    deprecated_at: null,
    lifecycle: 'active' as const,
    line: null,
    max_input_tokens: 200_000,
    max_tokens: 64_000,
    retires_at: null,
  };
}
