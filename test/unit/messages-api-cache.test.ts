// The mock Messages API reports prompt-cache reads and writes in `usage` from the breakpoints it
// is sent, with the real cache's rules: prefixes at block boundaries, a 20-block lookback, a
// minimum cacheable length per model, and entries that expire 5 minutes (or an hour) after use.
import Anthropic from '@anthropic-ai/sdk';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const SONNET = 'claude-sonnet-5-5'; // caches prefixes of 2048 tokens and more
const OPUS = 'claude-opus-5-5'; // 4096 and more
const CC = { type: 'ephemeral' as const };

let api: MockMessagesApi;
let client: Anthropic;
let clock = 0;

beforeEach(async () => {
  clock = 1_000_000;
  api = await startMessagesApi({ apiKey: 'k', now: () => clock });
  client = new Anthropic({ baseURL: api.url, apiKey: 'k', maxRetries: 0 });
});
afterEach(async () => {
  await api.close();
});

type Params = Omit<Anthropic.MessageCreateParamsNonStreaming, 'max_tokens'>;

/** Sends `params` and returns the reply's usage. */
async function usageOf(params: Params): Promise<Anthropic.Usage> {
  api.enqueue({ reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } });
  const msg = await client.messages.create({ max_tokens: 1024, ...params });
  return msg.usage;
}

/** The tokens the mock counts for `params`: what count_tokens reports. */
async function tokensOf(params: Partial<Params> & { model: string }): Promise<number> {
  const { input_tokens } = await client.messages.countTokens({ messages: [], ...params });
  return input_tokens;
}

const longText = (label: string, chars: number) =>
  `${label}: ` + 'The quick brown fox jumps over the lazy dog. '.repeat(chars / 45);

const system: Anthropic.TextBlockParam[] = [
  { type: 'text', text: longText('You are a careful assistant', 12_000), cache_control: CC },
];
const turn1: Anthropic.MessageParam[] = [{ role: 'user', content: 'Sort my photos by date.' }];
const turn2: Anthropic.MessageParam[] = [
  ...turn1,
  { role: 'assistant', content: 'Done: 120 photos sorted into 12 folders.' },
  { role: 'user', content: 'Now rename them by place.' },
];

describe('prompt cache', () => {
  it('writes on the first request, then reads that prefix and writes only the new part', async () => {
    const first = await usageOf({ model: SONNET, system, messages: turn1, cache_control: CC });
    const total1 = await tokensOf({ model: SONNET, system, messages: turn1 });
    expect(first).toMatchObject({
      input_tokens: 0,
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: total1,
      cache_creation: { ephemeral_5m_input_tokens: total1, ephemeral_1h_input_tokens: 0 },
    });

    const second = await usageOf({ model: SONNET, system, messages: turn2, cache_control: CC });
    const total2 = await tokensOf({ model: SONNET, system, messages: turn2 });
    expect(second).toMatchObject({
      input_tokens: 0,
      cache_read_input_tokens: total1,
      cache_creation_input_tokens: total2 - total1,
    });
    // Input, reads and writes always add up to the whole prompt.
    expect(
      second.input_tokens + second.cache_read_input_tokens! + second.cache_creation_input_tokens!,
    ).toBe(total2);
  });

  it('reports uncached input after the last breakpoint, and nothing cached without one', async () => {
    const plain = await usageOf({ model: SONNET, messages: turn2 });
    expect(plain).toMatchObject({
      input_tokens: await tokensOf({ model: SONNET, messages: turn2 }),
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
    });
    const withSystem = await usageOf({ model: SONNET, system, messages: turn2 });
    const systemTokens = await tokensOf({ model: SONNET, system });
    const total = await tokensOf({ model: SONNET, system, messages: turn2 });
    expect(withSystem).toMatchObject({
      cache_creation_input_tokens: systemTokens,
      input_tokens: total - systemTokens,
    });
  });

  it('a changed system prompt reads nothing past the tools', async () => {
    const tools: Anthropic.Tool[] = [
      { name: 'ls', description: longText('List files', 5000), input_schema: { type: 'object' } },
      {
        name: 'mv',
        description: longText('Move files', 5000),
        input_schema: { type: 'object' },
        cache_control: CC,
      },
    ];
    await usageOf({ model: SONNET, tools, system, messages: turn1, cache_control: CC });
    const otherSystem: Anthropic.TextBlockParam[] = [
      { type: 'text', text: longText('You are a terse assistant', 12_000), cache_control: CC },
    ];
    const changed = await usageOf({
      model: SONNET,
      tools,
      system: otherSystem,
      messages: turn1,
      cache_control: CC,
    });
    const toolTokens = await tokensOf({ model: SONNET, tools });
    const total = await tokensOf({ model: SONNET, tools, system: otherSystem, messages: turn1 });
    expect(changed).toMatchObject({
      cache_read_input_tokens: toolTokens,
      cache_creation_input_tokens: total - toolTokens,
      input_tokens: 0,
    });
  });

  it("writes nothing for a prompt shorter than the model's minimum", async () => {
    const short: Anthropic.TextBlockParam[] = [
      { type: 'text', text: longText('Be brief', 12_000), cache_control: CC },
    ];
    const shortTokens = await tokensOf({ model: SONNET, system: short, messages: turn1 });
    expect(shortTokens).toBeGreaterThan(2048);
    expect(shortTokens).toBeLessThan(4096);
    for (let i = 0; i < 2; i++) {
      const u = await usageOf({ model: OPUS, system: short, messages: turn1, cache_control: CC });
      expect(u).toMatchObject({
        input_tokens: shortTokens,
        cache_read_input_tokens: 0,
        cache_creation_input_tokens: 0,
      });
    }
    // The same prompt is long enough for Sonnet 5.5, and the cache is kept per model.
    const sonnet = await usageOf({
      model: SONNET,
      system: short,
      messages: turn1,
      cache_control: CC,
    });
    expect(sonnet.cache_creation_input_tokens).toBe(shortTokens);
  });

  it('expires entries 5 minutes after their last use, or an hour with ttl 1h', async () => {
    const params = { model: SONNET, system, messages: turn1 };
    const systemTokens = await tokensOf({ model: SONNET, system });
    expect((await usageOf(params)).cache_creation_input_tokens).toBe(systemTokens);
    clock += 4 * 60_000;
    expect((await usageOf(params)).cache_read_input_tokens).toBe(systemTokens);
    clock += 4 * 60_000; // 8 minutes after the write, 4 after the read that refreshed it
    expect((await usageOf(params)).cache_read_input_tokens).toBe(systemTokens);
    clock += 5 * 60_000 + 1;
    expect(await usageOf(params)).toMatchObject({
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: systemTokens,
    });

    const hourSystem: Anthropic.TextBlockParam[] = [
      { ...system[0]!, text: longText('Hourly', 12_000), cache_control: { ...CC, ttl: '1h' } },
    ];
    const hourTokens = await tokensOf({ model: SONNET, system: hourSystem });
    const written = await usageOf({ ...params, system: hourSystem });
    expect(written.cache_creation).toEqual({
      ephemeral_5m_input_tokens: 0,
      ephemeral_1h_input_tokens: hourTokens,
    });
    clock += 50 * 60_000;
    expect((await usageOf({ ...params, system: hourSystem })).cache_read_input_tokens).toBe(
      hourTokens,
    );
    clock += 61 * 60_000;
    expect((await usageOf({ ...params, system: hourSystem })).cache_read_input_tokens).toBe(0);
  });

  it('splits a write by the TTL of the breakpoint that ends each stretch', async () => {
    const hourSystem: Anthropic.TextBlockParam[] = [
      { ...system[0]!, cache_control: { ...CC, ttl: '1h' } },
    ];
    const u = await usageOf({
      model: SONNET,
      system: hourSystem,
      messages: turn2,
      cache_control: CC,
    });
    const systemTokens = await tokensOf({ model: SONNET, system });
    const total = await tokensOf({ model: SONNET, system, messages: turn2 });
    expect(u.cache_creation).toEqual({
      ephemeral_1h_input_tokens: systemTokens,
      ephemeral_5m_input_tokens: total - systemTokens,
    });
    expect(u.cache_creation_input_tokens).toBe(total);
  });

  it('top-level cache_control marks the last block; moving a breakpoint keeps the prefix', async () => {
    // An explicit breakpoint on the first user message...
    const marked: Anthropic.MessageParam[] = [
      {
        role: 'user',
        content: [{ type: 'text', text: longText('Photos', 10_000), cache_control: CC }],
      },
    ];
    const first = await usageOf({ model: SONNET, messages: marked });
    const firstTokens = await tokensOf({ model: SONNET, messages: marked });
    expect(first.cache_creation_input_tokens).toBe(firstTokens);
    // ...is found again when the next request carries only the top-level breakpoint, at its end.
    const unmarked: Anthropic.MessageParam[] = [
      { role: 'user', content: [{ type: 'text', text: longText('Photos', 10_000) }] },
      { role: 'assistant', content: 'Which folder?' },
      { role: 'user', content: 'The one on the desktop.' },
    ];
    const next = await usageOf({ model: SONNET, messages: unmarked, cache_control: CC });
    const total = await tokensOf({ model: SONNET, messages: unmarked });
    expect(next).toMatchObject({
      cache_read_input_tokens: firstTokens,
      cache_creation_input_tokens: total - firstTokens,
      input_tokens: 0,
    });
  });

  it('looks back at most 20 blocks before a breakpoint', async () => {
    await usageOf({ model: SONNET, system, messages: turn1 });
    const many: Anthropic.MessageParam[] = [
      {
        role: 'user',
        content: Array.from({ length: 25 }, (_, i) => ({
          type: 'text' as const,
          text: `note ${i}`,
        })),
      },
    ];
    const far = await usageOf({
      model: SONNET,
      system: [{ type: 'text', text: system[0]!.text }],
      messages: many,
      cache_control: CC,
    });
    expect(far.cache_read_input_tokens).toBe(0);
    const near = await usageOf({
      model: SONNET,
      system: [{ type: 'text', text: system[0]!.text }],
      messages: [
        { role: 'user', content: many[0]!.content.slice(0, 5) as Anthropic.TextBlockParam[] },
      ],
      cache_control: CC,
    });
    expect(near.cache_read_input_tokens).toBe(await tokensOf({ model: SONNET, system }));
  });

  it('keeps a scripted usage as it is', async () => {
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'ok' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 7, output_tokens: 8, cache_read_input_tokens: 900 },
      },
    });
    const msg = await client.messages.create({
      model: SONNET,
      max_tokens: 1024,
      system,
      messages: turn1,
      cache_control: CC,
    });
    expect(msg.usage).toMatchObject({
      input_tokens: 7,
      output_tokens: 8,
      cache_read_input_tokens: 900,
      cache_creation_input_tokens: 0,
    });
  });
});
