// Server-side compaction (compact_20260112) and context editing (clear_tool_uses_20250919) in the
// mock Messages API, through the real SDK's beta client: the compaction block comes first in the
// reply (streamed as the beta API streams it), a request that carries it back is counted from
// the block on, and usage reports the compaction pass in `usage.iterations`.
import Anthropic from '@anthropic-ai/sdk';
import type {
  BetaMessage,
  BetaMessageParam,
  BetaRawMessageStreamEvent,
} from '@anthropic-ai/sdk/resources/beta/messages/messages';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const OPUS = 'claude-opus-5-5';
const COMPACT_BETA = 'compact-2026-01-12';
const TRIGGER = 50_000;
const compact = (extra: Record<string, unknown> = {}) => ({
  edits: [
    {
      type: 'compact_20260112' as const,
      trigger: { type: 'input_tokens' as const, value: TRIGGER },
      ...extra,
    },
  ],
});

let api: MockMessagesApi;
let client: Anthropic;

beforeEach(async () => {
  api = await startMessagesApi({ apiKey: 'k' });
  client = new Anthropic({ baseURL: api.url, apiKey: 'k', maxRetries: 0 });
});
afterEach(async () => {
  await api.close();
});

const FIRST = 'Please go through every photo in ~/Pictures and sort them into folders by year. ';
/** A first user message of about 55k tokens: over the trigger, under the window. */
const bigTask: BetaMessageParam[] = [
  { role: 'user', content: FIRST + 'Here is the list of files: ' + 'IMG_0001.jpg '.repeat(17_000) },
];
const system = 'You are Paddock, a careful desktop agent.';

const enqueueText = (text: string) =>
  api.enqueue({ reply: { content: [{ type: 'text', text }], stop_reason: 'end_turn' } });

async function count(messages: BetaMessageParam[]): Promise<number> {
  const r = await client.beta.messages.countTokens({
    model: OPUS,
    system,
    messages,
    betas: [COMPACT_BETA],
  });
  return r.input_tokens;
}

describe('server-side compaction', () => {
  it('streams the compaction block first when the trigger is reached, and the SDK keeps it', async () => {
    const before = await count(bigTask);
    expect(before).toBeGreaterThanOrEqual(TRIGGER);
    enqueueText('Sorted: 3 folders.');
    const stream = client.beta.messages.stream({
      model: OPUS,
      max_tokens: 4096,
      system,
      messages: bigTask,
      context_management: compact(),
      betas: [COMPACT_BETA],
    });
    const events: BetaRawMessageStreamEvent[] = [];
    const summaries: string[] = [];
    stream.on('streamEvent', (e) => events.push(e));
    stream.on('compaction', (c) => summaries.push(c));
    const msg = await stream.finalMessage();

    expect(msg.content.map((b) => b.type)).toEqual(['compaction', 'text']);
    const block = msg.content[0]!;
    if (block.type !== 'compaction') throw new Error('expected a compaction block');
    expect(block.encrypted_content).toBeNull();
    expect(block.content).toContain('Summary of the 1 earlier message of this conversation');
    expect(block.content).toContain(FIRST.slice(0, 60));
    expect(summaries).toEqual([block.content]);
    expect(msg.content[1]).toMatchObject({ type: 'text', text: 'Sorted: 3 folders.' });
    expect(msg.stop_reason).toBe('end_turn');
    // As the beta API streams it: an empty block, then its whole summary in one delta.
    expect(events.find((e) => e.type === 'content_block_start')).toMatchObject({
      index: 0,
      content_block: { type: 'compaction', content: null },
    });
    expect(
      events.filter((e) => e.type === 'content_block_delta' && e.index === 0).map((e) => e.type),
    ).toHaveLength(1);

    // The compaction pass read the whole prompt; the sampling pass read system and summary.
    const after = await count([{ role: 'assistant', content: [block] }]);
    const iterations = msg.usage.iterations!;
    expect(iterations.map((i) => i.type)).toEqual(['compaction', 'message']);
    expect(iterations[0]).toMatchObject({ input_tokens: before, cache_read_input_tokens: 0 });
    expect(iterations[0]!.output_tokens).toBeGreaterThan(0);
    expect(iterations[1]).toMatchObject({ input_tokens: after, model: OPUS });
    // The top-level fields are the sampling pass's alone, as the API documents.
    expect(msg.usage.input_tokens).toBe(after);
    expect(msg.usage.output_tokens).toBe(iterations[1]!.output_tokens);
    expect(msg.context_management).toEqual({ applied_edits: [] });
  });

  it('compacts without streaming too, and counts a request that carries the block back from it on', async () => {
    enqueueText('Sorted.');
    const first = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      system,
      messages: bigTask,
      context_management: compact({ instructions: 'Keep the folder names.' }),
      betas: [COMPACT_BETA],
    });
    expect(first.content[0]).toMatchObject({ type: 'compaction' });
    expect((first.content[0] as { content: string }).content).toContain('Keep the folder names.');

    const carried: BetaMessageParam[] = [
      ...bigTask,
      { role: 'assistant', content: first.content },
      { role: 'user', content: 'Now rename them by place.' },
    ];
    const effective: BetaMessageParam[] = carried.slice(1);
    const counted = await count(carried);
    expect(counted).toBe(await count(effective));
    expect(counted).toBeLessThan(TRIGGER);

    enqueueText('Renamed.');
    const second = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      system,
      messages: carried,
      context_management: compact(),
      betas: [COMPACT_BETA],
    });
    // Under the trigger once the block stands in for what came before: no new compaction.
    expect(second.content.map((b) => b.type)).toEqual(['text']);
    expect(second.usage.input_tokens).toBe(counted);
    expect(second.usage.iterations).toBeNull();
  });

  it('pause_after_compaction: answers with the block alone and keeps the scripted reply', async () => {
    enqueueText('Continuing from the summary.');
    const paused = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      system,
      messages: bigTask,
      context_management: compact({ pause_after_compaction: true }),
      betas: [COMPACT_BETA],
    });
    expect(paused.stop_reason).toBe('compaction');
    expect(paused.content.map((b) => b.type)).toEqual(['compaction']);
    expect(paused.usage.iterations!.map((i) => i.type)).toEqual(['compaction']);
    expect(paused.usage).toMatchObject({ input_tokens: 0, output_tokens: 0 });
    expect(api.remaining).toBe(1);

    const resumed = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      system,
      messages: [...bigTask, { role: 'assistant', content: paused.content }],
      context_management: compact({ pause_after_compaction: true }),
      betas: [COMPACT_BETA],
    });
    expect(resumed.content).toEqual([
      { type: 'text', text: 'Continuing from the summary.', citations: null },
    ]);
    expect(api.remaining).toBe(0);
  });

  it('does not compact under the trigger (150000 by default)', async () => {
    enqueueText('Done.');
    const msg = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      system,
      messages: bigTask,
      context_management: { edits: [{ type: 'compact_20260112' }] },
      betas: [COMPACT_BETA],
    });
    expect(msg.content.map((b) => b.type)).toEqual(['text']);
  });

  it('caches the compacted conversation: the summary written, then read by the next turn', async () => {
    const longSystem = `${system} ${'Always check the folder before moving files. '.repeat(450)}`;
    const cc = { type: 'ephemeral' as const };
    enqueueText('Sorted.');
    const first: BetaMessage = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      system: longSystem,
      messages: bigTask,
      cache_control: cc,
      context_management: compact(),
      betas: [COMPACT_BETA],
    });
    const [compaction, sampling] = first.usage.iterations!;
    // The compaction pass wrote the whole prompt (the top-level breakpoint is on its last block)...
    const whole = await client.beta.messages.countTokens({
      model: OPUS,
      system: longSystem,
      messages: bigTask,
      betas: [COMPACT_BETA],
    });
    expect(compaction).toMatchObject({
      input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: whole.input_tokens,
    });
    // ...and the sampling pass the system prompt with the summary, where the next turn reads it.
    const summaryPrefix = await client.beta.messages.countTokens({
      model: OPUS,
      system: longSystem,
      messages: [{ role: 'assistant', content: [first.content[0]!] }],
      betas: [COMPACT_BETA],
    });
    expect(sampling!.cache_creation_input_tokens).toBe(summaryPrefix.input_tokens);

    enqueueText('Renamed.');
    const next = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      system: longSystem,
      messages: [
        ...bigTask,
        { role: 'assistant', content: first.content },
        { role: 'user', content: 'Now rename them by place.' },
      ],
      cache_control: cc,
      context_management: compact(),
      betas: [COMPACT_BETA],
    });
    expect(next.usage.cache_read_input_tokens).toBe(summaryPrefix.input_tokens);
  });
});

describe('context editing: clear_tool_uses_20250919', () => {
  it('clears all but the newest tool results and reports the applied edit', async () => {
    const CM_BETA = 'context-management-2025-06-27';
    const messages: BetaMessageParam[] = [{ role: 'user', content: 'Read the five logs.' }];
    for (let i = 1; i <= 5; i++) {
      messages.push(
        {
          role: 'assistant',
          content: [{ type: 'tool_use', id: `toolu_${i}`, name: 'read_file', input: { i } }],
        },
        {
          role: 'user',
          content: [
            { type: 'tool_result', tool_use_id: `toolu_${i}`, content: `log ${i} `.repeat(500) },
          ],
        },
      );
    }
    const context_management = {
      edits: [
        {
          type: 'clear_tool_uses_20250919' as const,
          trigger: { type: 'tool_uses' as const, value: 3 },
          keep: { type: 'tool_uses' as const, value: 3 },
        },
      ],
    };
    const counted = await client.beta.messages.countTokens({
      model: OPUS,
      messages,
      context_management,
      betas: [CM_BETA],
    });
    expect(counted.context_management!.original_input_tokens).toBeGreaterThan(counted.input_tokens);

    enqueueText('All five read.');
    const msg = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      messages,
      context_management,
      betas: [CM_BETA],
    });
    const cleared = counted.context_management!.original_input_tokens - counted.input_tokens;
    expect(msg.context_management).toEqual({
      applied_edits: [
        { type: 'clear_tool_uses_20250919', cleared_tool_uses: 2, cleared_input_tokens: cleared },
      ],
    });
    expect(msg.usage.input_tokens).toBe(counted.input_tokens);
  });
});

describe('context editing: clear_thinking_20251015 and the plain response shape', () => {
  it('drops thinking from all but the newest assistant turn', async () => {
    const CM_BETA = 'context-management-2025-06-27';
    const thought = (n: number) => ({
      type: 'thinking' as const,
      thinking: `Step ${n}: `.repeat(200),
      signature: `sig${n}`,
    });
    const messages: BetaMessageParam[] = [
      { role: 'user', content: 'Plan the trip.' },
      { role: 'assistant', content: [thought(1), { type: 'text', text: 'Day one.' }] },
      { role: 'user', content: 'And then?' },
      { role: 'assistant', content: [thought(2), { type: 'text', text: 'Day two.' }] },
      { role: 'user', content: 'Thanks.' },
    ];
    enqueueText('Bon voyage.');
    const msg = await client.beta.messages.create({
      model: OPUS,
      max_tokens: 4096,
      messages,
      thinking: { type: 'adaptive' },
      context_management: { edits: [{ type: 'clear_thinking_20251015' }] },
      betas: [CM_BETA],
    });
    expect(msg.context_management!.applied_edits).toEqual([
      {
        type: 'clear_thinking_20251015',
        cleared_thinking_turns: 1,
        cleared_input_tokens: expect.any(Number),
      },
    ]);
    const withoutFirst = messages.map((m, i) =>
      i === 1 ? { role: m.role, content: [{ type: 'text' as const, text: 'Day one.' }] } : m,
    );
    const { input_tokens } = await client.messages.countTokens({
      model: OPUS,
      messages: withoutFirst as Anthropic.MessageParam[],
    });
    expect(msg.usage.input_tokens).toBe(input_tokens);
  });

  it('leaves the beta-only fields out without an anthropic-beta header, and refuses compaction blocks there', async () => {
    enqueueText('Plain.');
    const msg = await client.messages.create({
      model: OPUS,
      max_tokens: 1024,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(msg).not.toHaveProperty('context_management');
    expect(msg.usage).not.toHaveProperty('iterations');

    const err = await client.messages
      .create({
        model: OPUS,
        max_tokens: 1024,
        messages: [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: [{ type: 'compaction', content: 'Summary.' }] as never },
          { role: 'user', content: 'go on' },
        ],
      })
      .catch((e: unknown) => e);
    expect((err as InstanceType<typeof Anthropic.APIError>).status).toBe(400);
    expect((err as InstanceType<typeof Anthropic.APIError>).apiMessage).toBe(
      "messages.1.content.0: 'compaction' blocks require the beta header 'anthropic-beta: compact-2026-01-12'.",
    );
  });
});
