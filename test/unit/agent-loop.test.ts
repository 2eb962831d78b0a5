import { rebuildConversation } from '../../src/main/agent/conversation.js';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { Tool } from '../../src/main/agent/tools/types.js';
import { Store } from '../../src/main/store/store.js';
import { agentSession, scriptedApprover } from '../helpers/agent.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

describe('the agent loop against a local Messages API (real SDK)', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let store: Store;

  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: 'test-key' });
  });
  afterAll(() => api.close());
  beforeEach(() => {
    home = tempDir();
    store = Store.open(home.dir);
    api.requests.length = 0;
  });
  afterEach(() => {
    expect(api.problems).toEqual([]);
    expect(api.remaining).toBe(0);
    store.dispose();
    home.cleanup();
  });

  it('streams text, tells the model where it is, and records the session with its cost', async () => {
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'Hello from the model.' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 1000, output_tokens: 200 },
      },
    });
    const { session, events } = agentSession(store, api, {
      prompt: {
        shares: [
          { hostPath: '/h/report', name: 'report', readOnly: false },
          { hostPath: '/h/ref', name: 'ref', readOnly: true },
        ],
        allowlist: ['pypi.org'],
        timeZone: 'Europe/Paris',
      },
    });
    const out = await session.run('Say hello');
    expect(out).toEqual({ stopReason: 'end_turn', finalText: 'Hello from the model.' });
    expect(
      events
        .filter((e) => e.type === 'text-delta')
        .map((e) => (e as { text: string }).text)
        .join(''),
    ).toBe('Hello from the model.');

    const req = api.requests[0]!;
    expect(req.headers.authorization).toBe('Bearer test-key');
    expect(req.body.stream).toBe(true);
    expect(req.body.model).toBe('claude-opus-5-5');
    expect(req.body.thinking).toEqual({ type: 'adaptive' });
    expect(req.body.output_config).toEqual({ effort: 'high' });
    // No sampling parameter or forced tool choice: the 5.5 models refuse them.
    for (const k of ['temperature', 'top_p', 'top_k', 'tool_choice'])
      expect(req.body).not.toHaveProperty(k);
    // The stable prefix is cached: a breakpoint after the system prompt, and the newest block.
    const blocks = req.body.system as { type: string; text: string; cache_control?: unknown }[];
    expect(blocks).toHaveLength(1);
    expect(blocks[0]!.cache_control).toEqual({ type: 'ephemeral' });
    expect(req.body.cache_control).toEqual({ type: 'ephemeral' });
    const system = blocks[0]!.text;
    expect(system).toMatch(/Linux VM/);
    expect(system).toMatch(/\/mnt\/report \(read-write\) — the working folder/);
    expect(system).toMatch(/\/mnt\/ref \(read-only\)/);
    expect(system).toMatch(/pypi\.org/);
    expect(system).toMatch(/Friday, 27 November 2026 at 11:00 \(Europe\/Paris\)/);
    expect((req.body.tools as { name: string }[]).map((t) => t.name)).toEqual([
      'bash',
      'read_file',
      'write_file',
      'edit_file',
      'list_files',
      'web_fetch',
      'create_artifact',
      'schedule_automation',
    ]);

    const row = store.sessions.get(session.id)!;
    expect(row).toMatchObject({ status: 'done', inputTokens: 1000, outputTokens: 200 });
    expect(row.costUsd).toBeCloseTo((1000 * 4 + 200 * 20) / 1e6, 8);
    expect(store.sessions.events(session.id).map((e) => e.type)).toEqual(['user', 'assistant']);
  });

  it('runs several tool calls of one message and answers them all in one user message, in order', async () => {
    api.enqueue(
      {
        reply: {
          content: [
            { type: 'text', text: 'Two things.' },
            {
              type: 'tool_use',
              id: 'toolu_a',
              name: 'create_artifact',
              input: { title: 'Plan', kind: 'markdown', content: '# Plan' },
            },
            {
              type: 'tool_use',
              id: 'toolu_b',
              name: 'schedule_automation',
              input: { name: 'n', prompt: 'p', schedule: 'every day' },
            },
            { type: 'tool_use', id: 'toolu_c', name: 'nonexistent_tool', input: {} },
            { type: 'tool_use', id: 'toolu_d', name: 'create_artifact', input: { title: 'Bad' } },
          ],
          stop_reason: 'tool_use',
        },
      },
      { reply: { content: [{ type: 'text', text: 'Done.' }], stop_reason: 'end_turn' } },
    );
    const { session } = agentSession(store, api);
    await session.run('make a plan');
    const second = api.requests[1]!.body.messages as {
      role: string;
      content: { type: string; tool_use_id: string; is_error?: boolean; content: string }[];
    }[];
    const last = second.at(-1)!;
    expect(last.role).toBe('user');
    expect(last.content.map((b) => [b.type, b.tool_use_id, b.is_error ?? false])).toEqual([
      ['tool_result', 'toolu_a', false],
      ['tool_result', 'toolu_b', true],
      ['tool_result', 'toolu_c', true],
      ['tool_result', 'toolu_d', true],
    ]);
    expect(last.content[1]!.content).toMatch(/not available/);
    expect(last.content[2]!.content).toMatch(/no tool named nonexistent_tool/);
    expect(last.content[3]!.content).toMatch(/Invalid input for create_artifact/);
    const artifactId = /as (art_\w+)/.exec(last.content[0]!.content)![1]!;
    expect(store.artifacts.latest(artifactId)).toMatchObject({
      title: 'Plan',
      kind: 'markdown',
      content: '# Plan',
    });
  });

  it('sends thinking blocks back unchanged, signatures included', async () => {
    api.enqueue(
      {
        reply: {
          content: [
            { type: 'thinking', thinking: 'I should save a note.', signature: 'sig-abc123==' },
            { type: 'redacted_thinking', data: 'opaque-redacted' },
            {
              type: 'tool_use',
              id: 'toolu_t',
              name: 'create_artifact',
              input: { title: 'N', kind: 'code', content: 'x' },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      { reply: { content: [{ type: 'text', text: 'Saved.' }], stop_reason: 'end_turn' } },
    );
    const { session, events } = agentSession(store, api);
    await session.run('think');
    const assistant = (
      api.requests[1]!.body.messages as { role: string; content: Record<string, unknown>[] }[]
    )[1]!;
    expect(assistant.role).toBe('assistant');
    expect(assistant.content[0]).toMatchObject({
      type: 'thinking',
      thinking: 'I should save a note.',
      signature: 'sig-abc123==',
    });
    expect(assistant.content[1]).toMatchObject({
      type: 'redacted_thinking',
      data: 'opaque-redacted',
    });
    expect(events.some((e) => e.type === 'thinking-delta')).toBe(true);
  });

  it('retries a 529 with backoff honouring retry-after, then succeeds', async () => {
    api.enqueue(
      { status: 529, errorType: 'overloaded_error', headers: { 'retry-after-ms': '30' } },
      { status: 429, errorType: 'rate_limit_error', headers: { 'retry-after': '0' } },
      { status: 500, errorType: 'api_error' },
      { reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } },
    );
    const { session, events } = agentSession(store, api);
    const t0 = Date.now();
    expect((await session.run('hi')).finalText).toBe('ok');
    const retries = events.filter((e) => e.type === 'retry') as {
      delayMs: number;
      reason: string;
    }[];
    expect(retries.map((r) => r.reason)).toEqual([
      'HTTP 529 overloaded_error',
      'HTTP 429 rate_limit_error',
      'HTTP 500 api_error',
    ]);
    expect(retries[0]!.delayMs).toBe(30);
    expect(retries[1]!.delayMs).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(30);
  });

  it('retries an error event in the middle of a stream, then succeeds', async () => {
    api.enqueue(
      { streamError: { afterEvents: 3, errorType: 'overloaded_error', message: 'Overloaded' } },
      { reply: { content: [{ type: 'text', text: 'second try' }], stop_reason: 'end_turn' } },
    );
    const { session, events } = agentSession(store, api);
    expect((await session.run('hi')).finalText).toBe('second try');
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(1);
  });

  it('gives up after the retry bound with a sentence', async () => {
    api.enqueue(
      ...Array.from({ length: 4 }, () => ({
        status: 529,
        errorType: 'overloaded_error',
        headers: { 'retry-after-ms': '1' },
      })),
    );
    const { session } = agentSession(store, api);
    await expect(session.run('hi')).rejects.toThrow(
      /model service failed \(529\).*Try again in a minute/,
    );
    expect(store.sessions.get(session.id)!.status).toBe('error');
  });

  it('ends the run on 401 with a sentence about the key, without retrying', async () => {
    const { session } = agentSession(store, api, {
      client: (await import('../../src/main/agent/model.js')).createAnthropic({
        apiKey: 'wrong-key',
        baseURL: api.url,
      }),
    });
    await expect(session.run('hi')).rejects.toThrow(/API key is missing or wrong/);
    expect(api.requests).toHaveLength(1);
    expect(store.sessions.events(session.id).at(-1)).toMatchObject({
      type: 'error',
      payload: { code: 'AUTH' },
    });
  });

  it('continues after max_tokens and pause_turn, and shows a refusal', async () => {
    api.enqueue(
      { reply: { content: [{ type: 'text', text: 'part one…' }], stop_reason: 'max_tokens' } },
      { reply: { content: [{ type: 'text', text: 'paused' }], stop_reason: 'pause_turn' } },
      {
        reply: {
          content: [{ type: 'text', text: 'I can’t help with that.' }],
          stop_reason: 'refusal',
        },
      },
    );
    const { session, events } = agentSession(store, api);
    const out = await session.run('go');
    expect(out.stopReason).toBe('refusal');
    const second = api.requests[1]!.body.messages as { role: string; content: unknown }[];
    expect(second.at(-1)).toMatchObject({ role: 'user' });
    expect(JSON.stringify(second.at(-1))).toMatch(/output limit/);
    const third = api.requests[2]!.body.messages as { role: string }[];
    expect(third.at(-1)!.role).toBe('assistant'); // pause_turn: the reply goes back as-is
    expect(events.at(-1)).toMatchObject({ type: 'done', stopReason: 'refusal' });
  });

  it('cancels a streaming reply at once and records it', async () => {
    api.enqueue({ hang: true, afterEvents: 3 });
    const { session, events } = agentSession(store, api);
    const running = session.run('long');
    await new Promise((r) => setTimeout(r, 300));
    session.cancel();
    expect((await running).stopReason).toBe('cancelled');
    expect(events.at(-1)).toMatchObject({ type: 'done', stopReason: 'cancelled' });
    expect(store.sessions.get(session.id)!.status).toBe('cancelled');
  });

  it('asks before each tool call in ask mode and tells the model when the person declines', async () => {
    api.enqueue(
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              id: 'toolu_x',
              name: 'create_artifact',
              input: { title: 'T', kind: 'code', content: 'c' },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      { reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } },
    );
    const { approver, asked } = scriptedApprover({ tool: 'deny' });
    const { session } = agentSession(store, api, { approvalMode: 'ask', approver });
    await session.run('go');
    expect(asked).toEqual(['tool:create_artifact']);
    expect(JSON.stringify(api.requests[1]!.body.messages)).toMatch(
      /The person declined this tool call/,
    );
    expect(store.sessions.events(session.id).map((e) => e.type)).toContain('approval');
  });

  it('resumes from the store after the process died mid-tool, answering the lost call as interrupted', async () => {
    const first = agentSession(store, api);
    // What a process killed while a tool ran leaves behind: the assistant turn, no result.
    store.sessions.appendEvent(first.session.id, 'user', { content: 'do it' });
    store.sessions.appendEvent(first.session.id, 'assistant', {
      content: [
        { type: 'thinking', thinking: 'plan', signature: 'sig-1' },
        { type: 'tool_use', id: 'toolu_lost', name: 'bash', input: { command: 'sleep 100' } },
      ],
      stop_reason: 'tool_use',
    });
    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Resumed.' }], stop_reason: 'end_turn' },
    });
    const resumed = agentSession(store, api, { sessionId: first.session.id });
    expect((await resumed.session.run()).finalText).toBe('Resumed.');
    const msgs = api.requests[0]!.body.messages as {
      role: string;
      content: { type: string; content?: string; signature?: string }[];
    }[];
    expect(msgs.map((m) => m.role)).toEqual(['user', 'assistant', 'user']);
    expect(msgs[1]!.content[0]).toMatchObject({ type: 'thinking', signature: 'sig-1' });
    expect(msgs[2]!.content[0]).toMatchObject({ type: 'tool_result', is_error: true });
    expect(msgs[2]!.content[0]!.content).toMatch(/app stopped while this tool was running/);
  });

  it('keeps a model without server-side compaction within its context by clearing old tool outputs', async () => {
    // A tool that prints 40,000 characters (10,000 tokens), so twelve calls overflow a 60,000-token window.
    const bigTool: Tool = {
      name: 'big_output',
      description: 'prints a lot',
      input: z.object({ i: z.number() }),
      run: async ({ i }) => ({ content: `${i}:` + 'y'.repeat(40_000), isError: false }),
    };
    const steps = [];
    for (let i = 0; i < 12; i++) {
      steps.push({
        reply: {
          content: [
            { type: 'tool_use' as const, id: `toolu_${i}`, name: 'big_output', input: { i } },
          ],
          stop_reason: 'tool_use' as const,
        },
      });
    }
    steps.push({
      reply: {
        content: [{ type: 'text' as const, text: 'all done' }],
        stop_reason: 'end_turn' as const,
      },
    });
    api.enqueue(...steps);
    const { session, events } = agentSession(store, api, {
      tools: [bigTool],
      settings: {
        model: 'claude-sonnet-4-5',
        maxTokens: 4096,
        effort: 'low',
        contextWindowTokens: 60_000,
      },
    });
    await session.run('write many');
    expect(api.problems).toEqual([]);
    for (const r of api.requests)
      expect(JSON.stringify(r.body.messages).length / 4).toBeLessThan(60_000 - 4096);
    const last = JSON.stringify(api.requests.at(-1)!.body.messages);
    expect(last).toMatch(/older tool output was cleared/);
    expect(last).toContain('11:' + 'y'.repeat(100)); // the newest output is intact
    // Counted by the API when near the mark, not guessed.
    expect(api.sideRequests.some((r) => r.path === '/v1/messages/count_tokens')).toBe(true);
    const cleared = events.filter((e) => e.type === 'context');
    expect(cleared.length).toBeGreaterThan(0);
    expect(cleared.every((e) => e.type === 'context' && e.action === 'cleared')).toBe(true);
    // Cleared well below the mark, so the cache prefix is rebuilt rarely, not every turn.
    expect(cleared.length).toBeLessThan(6);
    // The store still has every output in full, and a resume clears the same outputs again.
    const stored = store.sessions.events(session.id).filter((e) => e.type === 'tool_result');
    expect(stored).toHaveLength(12);
    expect(stored.every((e) => (e.payload as { content: string }).content.length > 40_000)).toBe(
      true,
    );
    const rebuilt = JSON.stringify(rebuildConversation(store.sessions.events(session.id)));
    expect(rebuilt.match(/older tool output was cleared/g)?.length).toBe(
      last.match(/older tool output was cleared/g)?.length,
    );
  });
});
