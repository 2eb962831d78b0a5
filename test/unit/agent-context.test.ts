import type { MessageParam } from '@anthropic-ai/sdk/resources/messages';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  clearToolResults,
  rebuildConversation,
  requestMessages,
  toolResultsToClear,
} from '../../src/main/agent/conversation.js';
import type { Tool } from '../../src/main/agent/tools/types.js';
import type { SessionEventRow } from '../../src/main/store/sessions-repo.js';
import { agentFixture, agentSession } from '../helpers/agent.js';

const result = (id: string, content: string) => ({
  type: 'tool_result' as const,
  tool_use_id: id,
  content,
});
const use = (id: string) => ({ type: 'tool_use' as const, id, name: 'bash', input: {} });

/** A conversation of `n` tool calls, each output `chars` long. */
function conversation(n: number, chars: number): MessageParam[] {
  const m: MessageParam[] = [{ role: 'user', content: 'go' }];
  for (let i = 0; i < n; i++) {
    m.push({ role: 'assistant', content: [use(`t${i}`)] });
    m.push({ role: 'user', content: [result(`t${i}`, `${i}:` + 'x'.repeat(chars))] });
  }
  return m;
}

describe('the conversation kept within the context', () => {
  it('clears the oldest outputs down to the target, never the newest three', () => {
    const m = conversation(10, 4_000); // about 1,000 tokens each
    // However low the target, the newest three stay.
    expect(toolResultsToClear(m, 0, 3)).toEqual(['t0', 't1', 't2', 't3', 't4', 't5', 't6']);
    // About 10,400 tokens, each output about 960: three go to reach 8,000.
    expect(toolResultsToClear(m, 8_000, 3)).toEqual(['t0', 't1', 't2']);
    expect(toolResultsToClear(conversation(3, 40_000), 10, 3)).toEqual([]);
    clearToolResults(m, ['t0']);
    expect(JSON.stringify(m[2])).toMatch(/older tool output was cleared/);
    // Already cleared outputs are not picked again.
    expect(toolResultsToClear(m, 8_000, 3)).toEqual(['t1', 't2']);
  });

  it('sends nothing from before the newest compaction block, and the block as received', () => {
    const compaction = { type: 'compaction', content: 'summary', encrypted_content: null };
    const m: MessageParam[] = [
      ...conversation(2, 10),
      { role: 'assistant', content: [compaction, use('t9')] as never },
      { role: 'user', content: [result('t9', 'nine')] },
    ];
    const sent = requestMessages(m);
    expect(sent.map((x) => x.role)).toEqual(['user', 'assistant', 'user']);
    expect(JSON.stringify(sent)).not.toContain('0:');
    expect((sent[1]!.content as unknown[])[0]).toEqual(compaction);
    // A model without compaction gets the summary as text.
    const asText = requestMessages(m, false);
    expect((asText[1]!.content as unknown[])[0]).toEqual({
      type: 'text',
      text: '[Summary of the earlier conversation]\nsummary',
    });
    // No compaction: everything, unchanged.
    const plain = conversation(2, 10);
    expect(requestMessages(plain)).toBe(plain);
  });

  it('replays clearing and a client-side summary when a session is rebuilt', () => {
    let seq = 0;
    const ev = (type: string, payload: unknown): SessionEventRow => ({
      sessionId: 's',
      seq: ++seq,
      type,
      payload,
      createdAt: 0,
    });
    const events = [
      ev('user', { content: 'go' }),
      ev('assistant', { content: [use('t0')] }),
      ev('tool_result', {
        tool_use_id: 't0',
        name: 'bash',
        content: 'long output',
        is_error: false,
      }),
      ev('context', {
        action: 'cleared',
        tokensBefore: 9,
        tokensAfter: 1,
        message: 'm',
        toolUseIds: ['t0'],
      }),
    ];
    expect(JSON.stringify(rebuildConversation(events))).toMatch(/older tool output was cleared/);
    events.push(
      ev('context', {
        action: 'compacted',
        tokensBefore: 9,
        tokensAfter: 1,
        message: 'm',
        summary: 'S1',
      }),
      ev('assistant', { content: [{ type: 'text', text: 'next' }] }),
    );
    const rebuilt = rebuildConversation(events);
    expect(rebuilt).toHaveLength(2);
    expect(String(rebuilt[0]!.content)).toMatch(/compacted into this summary[\s\S]*S1/);
  });
});

describe('client-side compaction for a model without server-side compaction', () => {
  const fx = agentFixture();

  it('summarises when clearing cannot make room, and goes on from the summary', async () => {
    const big: Tool = {
      name: 'big',
      description: 'prints a lot',
      input: z.object({ i: z.number() }),
      run: async ({ i }) => ({ content: `${i}:` + 'y'.repeat(40_000), isError: false }),
    };
    const call = (i: number) => ({
      reply: {
        content: [{ type: 'tool_use' as const, id: `toolu_${i}`, name: 'big', input: { i } }],
        stop_reason: 'tool_use' as const,
      },
    });
    fx.api.enqueue(call(1), call(2), {
      handler: (body) => {
        // The summary request: no tools may be called, and it asks for a summary.
        expect(body.tool_choice).toEqual({ type: 'none' });
        expect(JSON.stringify(body.messages)).toMatch(/Write a summary that will replace/);
        return {
          reply: {
            content: [{ type: 'text', text: 'SUMMARY: two outputs printed.' }],
            stop_reason: 'end_turn',
          },
        };
      },
    });
    fx.api.enqueue({
      handler: (body) => {
        expect(body.messages).toHaveLength(1);
        expect(JSON.stringify(body.messages)).toMatch(/SUMMARY: two outputs printed/);
        return { reply: { content: [{ type: 'text', text: 'Done.' }], stop_reason: 'end_turn' } };
      },
    });
    const { session, events } = agentSession(fx.store, fx.api, {
      tools: [big],
      settings: {
        model: 'claude-sonnet-4-5',
        maxTokens: 4096,
        effort: 'medium',
        contextWindowTokens: 30_000,
      },
    });
    expect((await session.run('print twice')).finalText).toBe('Done.');
    const context = events.filter((e) => e.type === 'context');
    expect(context).toHaveLength(1);
    expect(context[0]).toMatchObject({ action: 'compacted' });
    // A resume starts from the summary.
    const rebuilt = rebuildConversation(fx.store.sessions.events(session.id));
    expect(JSON.stringify(rebuilt[0])).toMatch(/SUMMARY: two outputs printed/);
    expect(JSON.stringify(rebuilt)).not.toContain('1:yyyy');
  });
});
