// The mock Messages API refuses, per model, what the real API refuses, with the real error shape;
// and GET /v1/models reports each model's capabilities. All through the real SDK.
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  MODEL_TABLE,
  startMessagesApi,
  type MockMessagesApi,
} from '../support/messages-api/server.js';

const OPUS = 'claude-opus-5-5';
const SONNET45 = 'claude-sonnet-4-5';
const HAIKU45 = 'claude-haiku-4-5';

let api: MockMessagesApi;
let client: Anthropic;

beforeEach(async () => {
  api = await startMessagesApi({ apiKey: 'k' });
  client = new Anthropic({ baseURL: api.url, apiKey: 'k', maxRetries: 0 });
});
afterEach(async () => {
  await api.close();
});

type Params = Record<string, unknown>;
const base = (model: string, extra: Params = {}): Params => ({
  model,
  max_tokens: 4096,
  messages: [{ role: 'user', content: 'Sort my photos by date.' }],
  ...extra,
});

/** Sends `params` (through the beta API when `betas` is given). */
function send(params: Params, betas?: string[]) {
  // An explicit timeout lets a non-streaming request ask for a large max_tokens.
  const options = { timeout: 30_000 };
  return betas
    ? client.beta.messages.create({ ...params, betas } as never, options)
    : client.messages.create(params as never, options);
}

/** The request succeeds and takes one scripted step. */
async function accepted(params: Params, betas?: string[]): Promise<void> {
  api.enqueue({ reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } });
  const msg = await send(params, betas);
  expect(msg.stop_reason).toBe('end_turn');
  expect(api.remaining).toBe(0);
}

/** The request fails with 400 invalid_request_error before taking a step; returns the message. */
async function rejected(params: Params, betas?: string[]): Promise<string> {
  const err = (await send(params, betas).then(
    () => {
      throw new Error('expected a 400');
    },
    (e: unknown) => e,
  )) as InstanceType<typeof Anthropic.APIError>;
  expect(err).toBeInstanceOf(Anthropic.BadRequestError);
  expect(err.status).toBe(400);
  expect(err.type).toBe('invalid_request_error');
  expect(err.error).toMatchObject({ type: 'error', error: { type: 'invalid_request_error' } });
  expect(err.requestID).toMatch(/^req_/);
  expect(api.problems.at(-1)).toContain(err.apiMessage);
  return String(err.apiMessage);
}

describe('models', () => {
  it('lists every model of the table with full capabilities, newest first', async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual([
      'claude-opus-5-5',
      'claude-sonnet-5-5',
      'claude-haiku-5-5',
      'claude-sonnet-4-5',
      'claude-haiku-4-5',
    ]);
    const opus = page.data[0]!;
    expect(opus).toMatchObject({ max_input_tokens: 200_000, max_tokens: 64_000, line: 'opus' });
    expect(Object.keys(opus.capabilities!).sort()).toEqual([
      'batch',
      'citations',
      'code_execution',
      'context_management',
      'effort',
      'image_input',
      'pdf_input',
      'server_tools',
      'structured_outputs',
      'thinking',
    ]);
    expect(opus.capabilities!.thinking.types).toEqual({
      adaptive: { supported: true },
      between_tools: { supported: true },
      disabled: { supported: false },
      enabled: { supported: false },
    });
    expect(opus.capabilities!.effort).toEqual({
      low: { supported: true },
      medium: { supported: true },
      high: { supported: true },
      xhigh: { supported: true },
      max: { supported: true },
      supported: true,
    });

    const sonnet45 = await client.models.retrieve(SONNET45);
    expect(sonnet45.capabilities).toEqual(MODEL_TABLE[SONNET45]!.capabilities);
    expect(sonnet45.capabilities!.thinking.types.enabled.supported).toBe(true);
    expect(sonnet45.capabilities!.effort.supported).toBe(false);
    expect(sonnet45.capabilities!.effort.xhigh).toBeNull();
    expect(sonnet45.capabilities!.context_management).toEqual({
      clear_thinking_20251015: { supported: true },
      clear_tool_uses_20250919: { supported: true },
      compact_20260112: { supported: false },
      supported: true,
    });
    const haiku45 = await client.models.retrieve(HAIKU45);
    expect(haiku45.capabilities!.context_management.supported).toBe(false);
    expect((await client.models.retrieve('claude-haiku-5-5')).max_tokens).toBe(32_000);
  });

  it('keeps the models option, giving ids the table lacks opus 5.5 capabilities', async () => {
    await api.close();
    api = await startMessagesApi({ models: ['claude-test-1', SONNET45] });
    client = new Anthropic({ baseURL: api.url, apiKey: 'k', maxRetries: 0 });
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual(['claude-test-1', SONNET45]);
    expect(page.data[0]!.capabilities).toEqual(MODEL_TABLE[OPUS]!.capabilities);
    // The listed id follows opus 5.5's rules; an unlisted one is not found.
    await accepted(base('claude-test-1', { thinking: { type: 'adaptive' } }));
    await rejected(base('claude-test-1', { thinking: { type: 'enabled', budget_tokens: 2048 } }));
    const err = await client.messages.create(base(OPUS) as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.NotFoundError);
    expect((err as InstanceType<typeof Anthropic.APIError>).apiMessage).toBe(`model: ${OPUS}`);
  });

  it('answers 404 not_found_error for a model it does not serve, and accepts a dated id', async () => {
    const err = await client.messages
      .create(base('claude-nope-9') as never)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.NotFoundError);
    expect((err as InstanceType<typeof Anthropic.APIError>).type).toBe('not_found_error');
    expect((err as InstanceType<typeof Anthropic.APIError>).apiMessage).toBe(
      'model: claude-nope-9',
    );
    expect(api.requests[0]!.outcome).toBe(404);
    await accepted(base('claude-opus-5-5-20261101'));
  });
});

describe('per-model request rules', () => {
  it('thinking: 5.5 models take adaptive only; 4.5 models take enabled or disabled', async () => {
    const adaptiveHint =
      'Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.';
    expect(await rejected(base(OPUS, { thinking: { type: 'disabled' } }))).toBe(
      `"thinking.type.disabled" is not supported for this model. ${adaptiveHint}`,
    );
    expect(await rejected(base(OPUS, { thinking: { type: 'enabled', budget_tokens: 2048 } }))).toBe(
      `"thinking.type.enabled" is not supported for this model. ${adaptiveHint}`,
    );
    await accepted(base(OPUS, { thinking: { type: 'adaptive' } }));
    await accepted(base('claude-haiku-5-5', { thinking: { type: 'adaptive' } }));

    expect(await rejected(base(SONNET45, { thinking: { type: 'adaptive' } }))).toMatch(
      /^"thinking\.type\.adaptive" is not supported for this model\./,
    );
    await accepted(base(SONNET45, { thinking: { type: 'enabled', budget_tokens: 2048 } }));
    await accepted(base(HAIKU45, { thinking: { type: 'disabled' } }));
  });

  it('thinking budget: at least 1024 and below max_tokens', async () => {
    expect(
      await rejected(base(SONNET45, { thinking: { type: 'enabled', budget_tokens: 1000 } })),
    ).toBe('thinking.enabled.budget_tokens: Input should be greater than or equal to 1024');
    expect(
      await rejected(base(SONNET45, { thinking: { type: 'enabled', budget_tokens: 4096 } })),
    ).toMatch(/^`max_tokens` must be greater than `thinking.budget_tokens`/);
    await accepted(base(SONNET45, { thinking: { type: 'enabled', budget_tokens: 4095 } }));
  });

  it('forced tool_choice: refused where thinking is always on or enabled', async () => {
    const tools = [{ name: 'ls', description: 'list', input_schema: { type: 'object' } }];
    const msg = 'Thinking may not be enabled when tool_choice forces tool use.';
    expect(await rejected(base(OPUS, { tools, tool_choice: { type: 'any' } }))).toBe(msg);
    expect(await rejected(base(OPUS, { tools, tool_choice: { type: 'tool', name: 'ls' } }))).toBe(
      msg,
    );
    await accepted(base(OPUS, { tools, tool_choice: { type: 'auto' } }));
    await accepted(base(SONNET45, { tools, tool_choice: { type: 'any' } }));
    expect(
      await rejected(
        base(SONNET45, {
          tools,
          tool_choice: { type: 'any' },
          thinking: { type: 'enabled', budget_tokens: 1024 },
        }),
      ),
    ).toBe(msg);
  });

  it('sampling parameters: none on 5.5 models; 4.5 models take one of temperature / top_p', async () => {
    expect(await rejected(base(OPUS, { temperature: 0.2 }))).toBe(
      '`temperature` is not supported for this model.',
    );
    expect(await rejected(base('claude-sonnet-5-5', { top_p: 0.9 }))).toBe(
      '`top_p` is not supported for this model.',
    );
    expect(await rejected(base('claude-haiku-5-5', { top_k: 5 }))).toBe(
      '`top_k` is not supported for this model.',
    );
    await accepted(base(SONNET45, { temperature: 0.2 }));
    await accepted(base(HAIKU45, { top_k: 5 }));
    expect(await rejected(base(SONNET45, { temperature: 0.2, top_p: 0.9 }))).toMatch(
      /cannot both be specified/,
    );
    expect(
      await rejected(
        base(SONNET45, { temperature: 0.2, thinking: { type: 'enabled', budget_tokens: 1024 } }),
      ),
    ).toMatch(/^`temperature` may only be set to 1 when thinking is enabled/);
  });

  it('prefill: a final assistant text is refused on 5.5 models only', async () => {
    const messages = [
      { role: 'user', content: 'Name a colour.' },
      { role: 'assistant', content: [{ type: 'text', text: 'The colour is' }] },
    ];
    expect(await rejected(base(OPUS, { messages }))).toMatch(
      /^Prefilling assistant messages is not supported for this model/,
    );
    expect(
      await rejected(base(OPUS, { messages: [messages[0], { role: 'assistant', content: 'A' }] })),
    ).toMatch(/^Prefilling/);
    await accepted(base(SONNET45, { messages }));

    // A pause_turn reply sent back as it came is a continuation, which 5.5 models accept.
    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Searching…' }], stop_reason: 'pause_turn' },
    });
    const paused = await client.messages.create(base(OPUS) as never);
    await accepted(
      base(OPUS, { messages: [messages[0], { role: 'assistant', content: paused.content }] }),
    );
  });

  it('effort: every level on 5.5 models, none on 4.5 models', async () => {
    for (const effort of ['low', 'medium', 'high', 'xhigh', 'max']) {
      await accepted(base(OPUS, { output_config: { effort } }));
    }
    expect(await rejected(base(SONNET45, { output_config: { effort: 'high' } }))).toBe(
      'output_config.effort: This model does not support the effort parameter.',
    );
    expect(await rejected(base(OPUS, { output_config: { effort: 'extreme' } }))).toMatch(
      /^output_config\.effort: Input should be 'low'/,
    );
  });

  it("max_tokens: at most the model's output limit", async () => {
    expect(await rejected(base(OPUS, { max_tokens: 64_001 }))).toBe(
      'max_tokens: 64001 > 64000, which is the maximum allowed number of output tokens for claude-opus-5-5',
    );
    expect(await rejected(base('claude-haiku-5-5', { max_tokens: 40_000 }))).toMatch(
      /^max_tokens: 40000 > 32000/,
    );
    await accepted(base(OPUS, { max_tokens: 64_000 }));
  });

  it('a prompt over the context window: prompt is too long', async () => {
    const messages = [{ role: 'user', content: 'y'.repeat(800_100) }];
    const { input_tokens } = await client.messages.countTokens({ model: OPUS, messages } as never);
    expect(input_tokens).toBeGreaterThan(200_000);
    expect(await rejected(base(OPUS, { messages }))).toBe(
      `prompt is too long: ${input_tokens} tokens > 200000 maximum`,
    );
    await accepted(base(OPUS, { messages: [{ role: 'user', content: 'y'.repeat(790_000) }] }));
  });

  it('cache breakpoints: at most four, the top-level one included', async () => {
    const cc = { type: 'ephemeral' };
    const system = [1, 2, 3, 4].map((n) => ({
      type: 'text',
      text: `part ${n}`,
      cache_control: cc,
    }));
    await accepted(base(OPUS, { system }));
    expect(await rejected(base(OPUS, { system, cache_control: cc }))).toBe(
      'A maximum of 4 blocks with cache_control may be provided. Found 5.',
    );
    expect(
      await rejected(
        base(OPUS, { system: [...system, { type: 'text', text: 'five', cache_control: cc }] }),
      ),
    ).toMatch(/Found 5\.$/);
  });

  it('context management: needs its beta header and a model that supports the edit', async () => {
    const compact = { edits: [{ type: 'compact_20260112' }] };
    const clear = { edits: [{ type: 'clear_tool_uses_20250919' }] };
    expect(await rejected(base(OPUS, { context_management: compact }))).toBe(
      'context_management: Extra inputs are not permitted',
    );
    expect(
      await rejected(base(OPUS, { context_management: compact }), [
        'context-management-2025-06-27',
      ]),
    ).toBe(
      "context_management.edits.0: 'compact_20260112' requires the beta header 'anthropic-beta: compact-2026-01-12'.",
    );
    await accepted(base(OPUS, { context_management: compact }), ['compact-2026-01-12']);
    expect(
      await rejected(base(SONNET45, { context_management: compact }), ['compact-2026-01-12']),
    ).toBe(
      "context_management.edits.0: 'compact_20260112' is not supported for model 'claude-sonnet-4-5'.",
    );
    await accepted(base(SONNET45, { context_management: clear }), [
      'context-management-2025-06-27',
    ]);
    expect(
      await rejected(base(HAIKU45, { context_management: clear }), [
        'context-management-2025-06-27',
      ]),
    ).toMatch(/'clear_tool_uses_20250919' is not supported for model 'claude-haiku-4-5'/);
    const lowTrigger = {
      edits: [{ type: 'compact_20260112', trigger: { type: 'input_tokens', value: 1000 } }],
    };
    expect(
      await rejected(base(OPUS, { context_management: lowTrigger }), ['compact-2026-01-12']),
    ).toBe(
      'context_management.edits.0.trigger.value: Input should be greater than or equal to 50000',
    );
  });

  it('with validate off, answers whatever it is sent', async () => {
    await api.close();
    api = await startMessagesApi({ validate: false });
    client = new Anthropic({ baseURL: api.url, apiKey: 'k', maxRetries: 0 });
    await accepted(base('claude-nope-9', { temperature: 3, max_tokens: 1_000_000 }));
    await accepted(base(OPUS, { thinking: { type: 'enabled', budget_tokens: 5 } }));
    expect(api.problems).toEqual([]);
  });
});
