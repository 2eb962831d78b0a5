import type { AgentEvent } from '../../../shared/agent-events.js';
import { formatTokens } from '../../lib/format.js';
import { appendOutput, newOutput, outputOf, type OutputBuffer } from '../../lib/output-buffer.js';

/** One result of a tool call, as the card shows it. */
export interface ToolResultView {
  content: string;
  isError: boolean;
  exitCode?: number;
  durationMs: number;
}

/** One thing in the conversation, in the order it happened. */
export type TaskItem =
  | { kind: 'user'; key: string; text: string }
  | { kind: 'assistant'; key: string; text: string; thinking: string; streaming: boolean }
  | {
      kind: 'tool';
      key: string;
      id: string;
      name: string;
      input: unknown;
      /** Live output as it streamed (empty when reopened from the store). */
      output: OutputBuffer;
      /** Bumped on every change of this card, so only it redraws. */
      version: number;
      result: ToolResultView | null;
      /** The person's answer when the tool needed approval. */
      approval: string | null;
      /** Set when the task ended before the tool did. */
      stopped: boolean;
    }
  | {
      kind: 'approval';
      key: string;
      approvalKind: 'tool' | 'network';
      subject: string;
      answer: string;
    }
  | { kind: 'notice'; key: string; text: string; tone: 'info' | 'error' }
  /** Where the conversation was made smaller to fit the model's context: a divider. */
  | {
      kind: 'context';
      key: string;
      action: 'cleared' | 'compacted';
      /** e.g. `Context compacted here · 182k → 14k tokens`. */
      text: string;
      /** What the agent said about it, as a tooltip. */
      detail: string;
    };

/** What the task view draws: the conversation and whether the agent is working. */
export interface TaskViewModel {
  items: TaskItem[];
  running: boolean;
  /** Files written through write_file/edit_file, seen live (guest paths). */
  filesTouched: string[];
  nextKey: number;
}

/** An empty view. */
export function emptyView(running = false): TaskViewModel {
  return { items: [], running, filesTouched: [], nextKey: 1 };
}

const WRITING_TOOLS = new Set(['write_file', 'edit_file']);

function key(v: TaskViewModel): string {
  return `i${v.nextKey++}`;
}

function lastStreaming(items: TaskItem[]): number {
  const i = items.length - 1;
  const it = items[i];
  return it && it.kind === 'assistant' && it.streaming ? i : -1;
}

function findTool(items: TaskItem[], id: string): number {
  for (let i = items.length - 1; i >= 0; i--) {
    const it = items[i]!;
    if (it.kind === 'tool' && it.id === id) return i;
  }
  return -1;
}

/**
 * Folds one AgentEvent into the view. Returns a new view object (and new objects for the items
 * that changed) so React redraws only what changed; a tool's output buffer is appended in place,
 * which is what keeps a 100,000-line output cheap.
 */
export function reduceTaskEvent(prev: TaskViewModel, e: AgentEvent): TaskViewModel {
  const v: TaskViewModel = { ...prev, items: prev.items };
  const items = (): TaskItem[] => (v.items === prev.items ? (v.items = [...prev.items]) : v.items);
  switch (e.type) {
    case 'session':
      v.running = true;
      break;
    case 'user':
      items().push({ kind: 'user', key: key(v), text: e.text });
      v.running = true;
      break;
    case 'text-delta':
    case 'thinking-delta': {
      const list = items();
      let i = lastStreaming(list);
      if (i < 0) {
        list.push({ kind: 'assistant', key: key(v), text: '', thinking: '', streaming: true });
        i = list.length - 1;
      }
      const it = list[i] as Extract<TaskItem, { kind: 'assistant' }>;
      list[i] =
        e.type === 'text-delta'
          ? { ...it, text: it.text + e.text }
          : { ...it, thinking: it.thinking + e.text };
      break;
    }
    case 'assistant': {
      const list = items();
      const i = lastStreaming(list);
      if (i >= 0) {
        const it = list[i] as Extract<TaskItem, { kind: 'assistant' }>;
        if (e.text) list[i] = { ...it, text: e.text, streaming: false };
        else list.splice(i, 1);
      } else if (e.text) {
        list.push({ kind: 'assistant', key: key(v), text: e.text, thinking: '', streaming: false });
      }
      break;
    }
    case 'tool-start': {
      items().push({
        kind: 'tool',
        key: key(v),
        id: e.id,
        name: e.name,
        input: e.input,
        output: newOutput(),
        version: 0,
        result: null,
        approval: null,
        stopped: false,
      });
      const p = (e.input as { path?: unknown } | null)?.path;
      if (WRITING_TOOLS.has(e.name) && typeof p === 'string' && !v.filesTouched.includes(p))
        v.filesTouched = [...v.filesTouched, p];
      break;
    }
    case 'tool-output': {
      const i = findTool(v.items, e.id);
      if (i < 0) break;
      const list = items();
      const it = list[i] as Extract<TaskItem, { kind: 'tool' }>;
      appendOutput(it.output, e.text);
      list[i] = { ...it, version: it.version + 1 };
      break;
    }
    case 'tool-result': {
      const i = findTool(v.items, e.id);
      if (i < 0) break;
      const list = items();
      const it = list[i] as Extract<TaskItem, { kind: 'tool' }>;
      list[i] = {
        ...it,
        version: it.version + 1,
        result: {
          content: e.content,
          isError: e.isError,
          ...(e.exitCode !== undefined ? { exitCode: e.exitCode } : {}),
          durationMs: e.durationMs,
        },
      };
      break;
    }
    case 'approval': {
      if (e.kind === 'tool') {
        // Attach to the latest tool card of that name still waiting for its result.
        for (let i = v.items.length - 1; i >= 0; i--) {
          const it = v.items[i]!;
          if (it.kind === 'tool' && it.name === e.subject && !it.result) {
            const list = items();
            list[i] = { ...it, approval: e.answer, version: it.version + 1 };
            return v;
          }
        }
      }
      items().push({
        kind: 'approval',
        key: key(v),
        approvalKind: e.kind,
        subject: e.subject,
        answer: e.answer,
      });
      break;
    }
    case 'retry': {
      const list = items();
      const i = lastStreaming(list);
      if (i >= 0) list.splice(i, 1); // partial output of a failed attempt is discarded
      list.push({
        kind: 'notice',
        key: key(v),
        tone: 'info',
        text: `The model service is busy (${e.reason}); trying again in ${Math.ceil(e.delayMs / 1000)} s.`,
      });
      break;
    }
    case 'notice':
      items().push({ kind: 'notice', key: key(v), tone: 'info', text: e.message });
      break;
    case 'context':
      items().push({
        kind: 'context',
        key: key(v),
        action: e.action,
        text: contextLabel(e),
        detail: e.message,
      });
      break;
    case 'error':
      items().push({ kind: 'notice', key: key(v), tone: 'error', text: e.message });
      v.running = false;
      break;
    case 'done': {
      v.running = false;
      const list = items();
      for (let i = 0; i < list.length; i++) {
        const it = list[i]!;
        if (it.kind === 'assistant' && it.streaming) list[i] = { ...it, streaming: false };
        if (it.kind === 'tool' && !it.result && !it.stopped)
          list[i] = { ...it, stopped: true, version: it.version + 1 };
      }
      if (e.stopReason === 'cancelled')
        list.push({ kind: 'notice', key: key(v), tone: 'info', text: 'Stopped.' });
      else if (e.stopReason === 'refusal')
        list.push({
          kind: 'notice',
          key: key(v),
          tone: 'error',
          text: 'The model declined this request.',
        });
      break;
    }
  }
  return v;
}

/**
 * The divider's words: `Context compacted here · 182k → 14k tokens`, or for cleared tool outputs
 * `Older tool outputs cleared · 182k → 120k tokens`.
 */
export function contextLabel(e: Extract<AgentEvent, { type: 'context' }>): string {
  const what = e.action === 'compacted' ? 'Context compacted here' : 'Older tool outputs cleared';
  return `${what} · ${formatTokens(e.tokensBefore)} → ${formatTokens(e.tokensAfter)} tokens`;
}

/** Folds a list of events (a task reopened from the store, or a batch of live ones). */
export function reduceAll(view: TaskViewModel, events: AgentEvent[]): TaskViewModel {
  let v = view;
  for (const e of events) v = reduceTaskEvent(v, e);
  return v;
}

/** What a tool card shows as output: the live output, or else its stored result. */
export function outputFor(item: Extract<TaskItem, { kind: 'tool' }>): OutputBuffer {
  if (item.output.bytes > 0 || !item.result) return item.output;
  return outputOf(item.result.content);
}
