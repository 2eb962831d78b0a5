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
    else if (e.type === 'context') {
      const c = e.payload as StoredContextEvent;
      if (c.action === 'cleared' && Array.isArray(c.toolUseIds))
        clearToolResults(messages, c.toolUseIds);
      if (c.action === 'compacted' && typeof c.summary === 'string')
        messages.splice(0, messages.length, summaryMessage(c.summary));
    }
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

const CLEARED =
  '[This older tool output was cleared to keep the conversation within the model’s context; run the tool again if you need it.]';

/** What a stored `context` event holds: the UI's part, and what the conversation needs to replay it. */
export interface StoredContextEvent {
  action: 'cleared' | 'compacted';
  tokensBefore: number;
  tokensAfter: number;
  message: string;
  /** `cleared`: the tool results whose output was replaced by a note. */
  toolUseIds?: string[];
  /** `compacted` on the client: the summary that replaces everything before it. */
  summary?: string;
}

/** The user message that stands for the conversation a client-side summary replaced. */
export function summaryMessage(summary: string): MessageParam {
  return {
    role: 'user',
    content: `[The conversation so far was compacted into this summary to stay within the model’s context.]\n\n${summary}\n\n[Continue the task from here.]`,
  };
}

/** A rough token count (4 characters a token), used until the API has counted. */
export function estimateTokens(messages: MessageParam[], system = ''): number {
  return Math.ceil((JSON.stringify(messages).length + system.length) / 4);
}

/**
 * Picks the oldest long tool outputs to clear so that the (estimated) conversation falls to
 * `targetTokens`, never touching the last `keep` tool results. Returns their tool_use ids.
 */
export function toolResultsToClear(
  messages: MessageParam[],
  targetTokens: number,
  keep: number,
  system = '',
): string[] {
  const results: { id: string; chars: number }[] = [];
  for (const m of messages) {
    if (m.role !== 'user' || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (b.type === 'tool_result' && typeof b.content === 'string' && b.content !== CLEARED)
        results.push({ id: b.tool_use_id, chars: b.content.length });
    }
  }
  let estimate = estimateTokens(messages, system);
  const ids: string[] = [];
  for (const r of results.slice(0, Math.max(0, results.length - keep))) {
    if (estimate <= targetTokens) break;
    if (r.chars <= CLEARED.length) continue;
    ids.push(r.id);
    estimate -= Math.floor((r.chars - CLEARED.length) / 4);
  }
  return ids;
}

/** Replaces the output of the given tool results with a note (the call itself stays). */
export function clearToolResults(messages: MessageParam[], ids: Iterable<string>): void {
  const clear = new Set(ids);
  for (const m of messages) {
    if (m.role !== 'user' || !Array.isArray(m.content)) continue;
    for (const b of m.content) {
      if (b.type === 'tool_result' && clear.has(b.tool_use_id)) b.content = CLEARED;
    }
  }
}

/** Whether a message holds a server-side compaction block. */
function hasCompaction(m: MessageParam): boolean {
  return Array.isArray(m.content) && m.content.some((b) => (b.type as string) === 'compaction');
}

const COMPACTED_BEFORE = '[Earlier conversation: compacted; see the summary that follows.]';

/**
 * The messages to send: after a server-side compaction the API reads nothing before the newest
 * compaction block, so what came before it is not sent again (one short user message keeps the
 * roles alternating). Thinking blocks and the compaction block go back exactly as received; to a
 * model without compaction (a resume with another model) the summary goes as text.
 */
export function requestMessages(messages: MessageParam[], compaction = true): MessageParam[] {
  let i = messages.length - 1;
  while (i > 0 && !hasCompaction(messages[i]!)) i--;
  const kept =
    i <= 0
      ? messages
      : [{ role: 'user' as const, content: COMPACTED_BEFORE }, ...messages.slice(i)];
  if (compaction || i < 0 || !hasCompaction(messages[Math.max(i, 0)]!)) return kept;
  return kept.map((m) =>
    hasCompaction(m) && Array.isArray(m.content)
      ? ({
          ...m,
          content: m.content.map((b) =>
            (b.type as string) === 'compaction'
              ? {
                  type: 'text' as const,
                  text: `[Summary of the earlier conversation]\n${String((b as { content?: unknown }).content ?? '')}`,
                }
              : b,
          ),
        } as MessageParam)
      : m,
  );
}
