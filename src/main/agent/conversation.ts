import type {
  ContentBlock,
  ContentBlockParam,
  MessageParam,
  ToolResultBlockParam,
} from '@anthropic-ai/sdk/resources/messages';
import type { SessionEventRow } from '../store/sessions-repo.js';

/** What a stored `tool_result` event holds. */
export interface StoredToolResult {
  tool_use_id: string;
  name: string;
  content: string;
  is_error: boolean;
  exit_code?: number;
  duration_ms?: number;
}

/** Appends a tool result, merging into the trailing user message of tool results if there is one. */
export function pushToolResult(messages: MessageParam[], r: StoredToolResult): void {
  const block: ToolResultBlockParam = {
    type: 'tool_result',
    tool_use_id: r.tool_use_id,
    content: r.content,
    ...(r.is_error ? { is_error: true } : {}),
  };
  const last = messages.at(-1);
  if (
    last?.role === 'user' &&
    Array.isArray(last.content) &&
    last.content.every((b) => b.type === 'tool_result')
  ) {
    last.content.push(block);
  } else {
    messages.push({ role: 'user', content: [block] });
  }
}

/** Appends a user turn, merging with a trailing user message so roles keep alternating. */
export function pushUser(messages: MessageParam[], content: string | ContentBlockParam[]): void {
  const last = messages.at(-1);
  if (last?.role === 'user') {
    const prev: ContentBlockParam[] =
      typeof last.content === 'string' ? [{ type: 'text', text: last.content }] : last.content;
    const next: ContentBlockParam[] =
      typeof content === 'string' ? [{ type: 'text', text: content }] : content;
    last.content = [...prev, ...next];
  } else {
    messages.push({ role: 'user', content });
  }
}

/**
 * Rebuilds the conversation from the stored events, so a session survives the app dying: the
 * model sees exactly what it saw before, thinking blocks and their signatures included.
 */
export function rebuildConversation(events: SessionEventRow[]): MessageParam[] {
  const messages: MessageParam[] = [];
  for (const e of events) {
    if (e.type === 'user')
      pushUser(messages, (e.payload as { content: string | ContentBlockParam[] }).content);
    else if (e.type === 'assistant') {
      messages.push({
        role: 'assistant',
        content: (e.payload as { content: ContentBlock[] }).content as ContentBlockParam[],
      });
    } else if (e.type === 'tool_result') pushToolResult(messages, e.payload as StoredToolResult);
  }
  return messages;
}

/** Tool calls of the last assistant message that have no result yet (a crash or a cancel). */
export function unansweredToolUses(messages: MessageParam[]): { id: string; name: string }[] {
  let i = messages.length - 1;
  const answered = new Set<string>();
  if (messages[i]?.role === 'user') {
    const c = messages[i]!.content;
    if (Array.isArray(c))
      for (const b of c) if (b.type === 'tool_result') answered.add(b.tool_use_id);
    i--;
  }
  const a = messages[i];
  if (a?.role !== 'assistant' || !Array.isArray(a.content)) return [];
  return a.content
    .filter((b) => b.type === 'tool_use' && !answered.has(b.id))
    .map((b) => ({ id: (b as { id: string }).id, name: (b as { name: string }).name }));
}

const TRIMMED =
  '[This older tool output was removed to keep the conversation within the model’s context; run the tool again if you need it.]';

/** A rough token count (4 characters a token), enough to keep well under the limit. */
export function estimateTokens(messages: MessageParam[], system = ''): number {
  return Math.ceil((JSON.stringify(messages).length + system.length) / 4);
}

/**
 * Keeps the conversation under `budget` tokens by replacing the oldest long tool outputs with a
 * note; the last exchange is never touched. Returns how many outputs were trimmed.
 */
export function trimToBudget(messages: MessageParam[], budget: number, system = ''): number {
  let trimmed = 0;
  let estimate = estimateTokens(messages, system);
  for (let i = 0; i < messages.length - 2 && estimate > budget; i++) {
    const m = messages[i]!;
    if (m.role !== 'user' || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (
        b.type !== 'tool_result' ||
        typeof b.content !== 'string' ||
        b.content.length <= TRIMMED.length
      )
        continue;
      estimate -= Math.floor((b.content.length - TRIMMED.length) / 4);
      b.content = TRIMMED;
      trimmed++;
      if (estimate <= budget) break;
    }
  }
  return trimmed;
}
