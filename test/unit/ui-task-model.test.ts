import { describe, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/shared/agent-events.js';
import { lineCount } from '../../src/renderer/lib/output-buffer.js';
import {
  emptyView,
  outputFor,
  reduceAll,
  reduceTaskEvent,
  type TaskItem,
} from '../../src/renderer/features/tasks/task-model.js';

type Tool = Extract<TaskItem, { kind: 'tool' }>;

const liveRun: AgentEvent[] = [
  { type: 'session', sessionId: 'ses_1', model: 'm' },
  { type: 'user', text: 'Sort my notes' },
  { type: 'text-delta', text: 'I will ' },
  { type: 'text-delta', text: 'sort them.' },
  {
    type: 'assistant',
    text: 'I will sort them.',
    stopReason: 'tool_use',
    inputTokens: 10,
    outputTokens: 5,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
  },
  { type: 'tool-start', id: 't1', name: 'bash', input: { command: 'sort notes.txt' } },
  { type: 'tool-output', id: 't1', stream: 'stdout', text: 'apples\npe' },
  { type: 'tool-output', id: 't1', stream: 'stdout', text: 'ars\n' },
  {
    type: 'tool-result',
    id: 't1',
    name: 'bash',
    content: 'apples\npears\n[exit code 0]',
    isError: false,
    exitCode: 0,
    durationMs: 120,
  },
  { type: 'tool-start', id: 't2', name: 'write_file', input: { path: 'sorted.txt' } },
  {
    type: 'tool-result',
    id: 't2',
    name: 'write_file',
    content: 'Wrote 13 bytes.',
    isError: false,
    durationMs: 8,
  },
  { type: 'text-delta', text: 'Done.' },
  {
    type: 'assistant',
    text: 'Done.',
    stopReason: 'end_turn',
    inputTokens: 1,
    outputTokens: 1,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
  },
  { type: 'done', stopReason: 'end_turn', costUsd: 0.01 },
];

describe('the task view model (AgentEvents folded for display)', () => {
  it('streams text into one message and turns each tool call into a card', () => {
    const v = reduceAll(emptyView(), liveRun);
    expect(v.running).toBe(false);
    expect(v.items.map((i) => i.kind)).toEqual(['user', 'assistant', 'tool', 'tool', 'assistant']);
    const a = v.items[1] as Extract<TaskItem, { kind: 'assistant' }>;
    expect(a).toMatchObject({ text: 'I will sort them.', streaming: false });
    const bash = v.items[2] as Tool;
    expect(bash.output.lines).toEqual(['apples', 'pears']);
    expect(bash.result).toMatchObject({ exitCode: 0, durationMs: 120, isError: false });
    expect(v.filesTouched).toEqual(['sorted.txt']);
  });

  it('shows a half-streamed message as streaming, and only changes the items that changed', () => {
    const v1 = reduceAll(emptyView(), liveRun.slice(0, 3));
    const last = v1.items.at(-1) as Extract<TaskItem, { kind: 'assistant' }>;
    expect(last).toMatchObject({ text: 'I will ', streaming: true });
    expect(v1.running).toBe(true);
    const v2 = reduceTaskEvent(v1, { type: 'text-delta', text: 'x' });
    expect(v2.items[0]).toBe(v1.items[0]); // the user message object is reused
    expect(v2.items.at(-1)).not.toBe(v1.items.at(-1));
  });

  it('drops the partial text of an attempt that is retried', () => {
    const v = reduceAll(emptyView(), [
      { type: 'user', text: 'hi' },
      { type: 'text-delta', text: 'Half an ans' },
      { type: 'retry', attempt: 1, delayMs: 1500, reason: 'HTTP 529 overloaded_error' },
      { type: 'text-delta', text: 'A whole answer.' },
      {
        type: 'assistant',
        text: 'A whole answer.',
        stopReason: 'end_turn',
        inputTokens: 1,
        outputTokens: 1,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
      },
    ]);
    const texts = v.items.filter((i) => i.kind === 'assistant').map((i) => i.text);
    expect(texts).toEqual(['A whole answer.']);
    expect(v.items.some((i) => i.kind === 'notice' && /trying again in 2 s/.test(i.text))).toBe(
      true,
    );
  });

  it('marks a running tool as stopped when the task is cancelled, and says so', () => {
    const v = reduceAll(emptyView(), [
      { type: 'user', text: 'wait' },
      { type: 'tool-start', id: 't', name: 'bash', input: { command: 'sleep 300' } },
      { type: 'tool-output', id: 't', stream: 'stdout', text: 'go\n' },
      { type: 'done', stopReason: 'cancelled', costUsd: 0 },
    ]);
    expect((v.items[1] as Tool).stopped).toBe(true);
    expect(v.items.at(-1)).toMatchObject({ kind: 'notice', text: 'Stopped.' });
    expect(v.running).toBe(false);
  });

  it('attaches a tool approval to its card and lists a network answer on its own', () => {
    const v = reduceAll(emptyView(), [
      { type: 'tool-start', id: 't', name: 'bash', input: { command: 'curl x' } },
      { type: 'approval', kind: 'tool', subject: 'bash', answer: 'allow' },
      { type: 'approval', kind: 'network', subject: 'evil.example:80', answer: 'deny' },
    ]);
    expect((v.items[0] as Tool).approval).toBe('allow');
    expect(v.items[1]).toMatchObject({
      kind: 'approval',
      subject: 'evil.example:80',
      answer: 'deny',
    });
  });

  it('shows the stored result as output when the live output was not seen (a reopened task)', () => {
    const v = reduceAll(emptyView(), [
      { type: 'tool-start', id: 't', name: 'bash', input: { command: 'ls' } },
      {
        type: 'tool-result',
        id: 't',
        name: 'bash',
        content: 'a\nb\n[exit code 0]',
        isError: false,
        exitCode: 0,
        durationMs: 3,
      },
    ]);
    expect(lineCount(outputFor(v.items[0] as Tool))).toBe(3);
  });

  it('folds a 100,000-line output streamed in 1,000 chunks in well under a second', () => {
    let v = reduceAll(emptyView(), [
      { type: 'tool-start', id: 't', name: 'bash', input: { command: 'seq 100000' } },
    ]);
    const t0 = performance.now();
    for (let c = 0; c < 1000; c++) {
      let text = '';
      for (let i = 0; i < 100; i++) text += `${c * 100 + i + 1}\n`;
      v = reduceTaskEvent(v, { type: 'tool-output', id: 't', stream: 'stdout', text });
    }
    expect(performance.now() - t0).toBeLessThan(1000);
    const tool = v.items[0] as Tool;
    expect(lineCount(tool.output)).toBe(100_000);
    expect(tool.output.lines[99_999]).toBe('100000');
    expect(tool.version).toBe(1000);
  });
});
