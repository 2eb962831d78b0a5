import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/shared/agent-events.js';
import {
  contextLabel,
  emptyView,
  reduceAll,
} from '../../src/renderer/features/tasks/task-model.js';

describe('where the conversation was made smaller, in the task view', () => {
  const events: AgentEvent[] = [
    { type: 'user', text: 'Go through every log' },
    {
      type: 'context',
      action: 'cleared',
      tokensBefore: 182_400,
      tokensAfter: 120_000,
      message: 'Cleared 12 older tool outputs.',
    },
    {
      type: 'context',
      action: 'compacted',
      tokensBefore: 182_000,
      tokensAfter: 14_200,
      message: 'Summarised the conversation so far.',
    },
    { type: 'text-delta', text: 'Carrying on.' },
  ];

  it('is a divider in the order it happened, with the tokens before and after', () => {
    const v = reduceAll(emptyView(), events);
    expect(v.items.map((i) => i.kind)).toEqual(['user', 'context', 'context', 'assistant']);
    expect(v.items[1]).toMatchObject({
      kind: 'context',
      action: 'cleared',
      text: 'Older tool outputs cleared · 182k → 120k tokens',
      detail: 'Cleared 12 older tool outputs.',
    });
    expect(v.items[2]).toMatchObject({
      kind: 'context',
      action: 'compacted',
      text: 'Context compacted here · 182k → 14k tokens',
    });
    // The reply streaming after it is a new message, not glued onto one before the divider.
    expect(v.items[3]).toMatchObject({ kind: 'assistant', text: 'Carrying on.', streaming: true });
  });

  it('writes small counts as they are', () => {
    expect(
      contextLabel({
        type: 'context',
        action: 'compacted',
        tokensBefore: 9500,
        tokensAfter: 800,
        message: '',
      }),
    ).toBe('Context compacted here · 9.5k → 800 tokens');
  });
});
