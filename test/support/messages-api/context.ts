// What the model reads of a request once the API's context management has run: everything before
// the last compaction block dropped, then the request's clear_* edits applied; and whether this
// request compacts (compact_20260112 with the prompt at or over its trigger).
import type {
  BetaClearThinking20251015EditResponse,
  BetaClearToolUses20250919EditResponse,
  BetaCompactionBlock,
} from '@anthropic-ai/sdk/resources/beta/messages/messages';
import type { PromptParts } from './blocks.js';
import { contentBlocks, estimateInputTokens } from './blocks.js';

type Message = { role: string; content: unknown };
type Block = Record<string, unknown>;

/** What `context_management.applied_edits` lists. */
export type AppliedEdit =
  BetaClearToolUses20250919EditResponse | BetaClearThinking20251015EditResponse;

/** The request's compact_20260112 edit, defaults filled in. */
export interface CompactEdit {
  trigger: number;
  instructions: string | null;
  pause: boolean;
}

/** The trigger compact_20260112 uses when the request gives none, in input tokens. */
export const DEFAULT_COMPACT_TRIGGER = 150_000;
/** The smallest trigger the API accepts for compact_20260112. */
export const MIN_COMPACT_TRIGGER = 50_000;
/** The trigger clear_tool_uses_20250919 uses when the request gives none, in input tokens. */
export const DEFAULT_CLEAR_TRIGGER = 100_000;
/** What a cleared tool result says instead of its content. */
export const CLEARED_TOOL_RESULT = '[Tool result cleared to save context]';

function isObject(v: unknown): v is Block {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A compaction block with a summary (one with null content is a no-op, as the API treats it). */
function isCompaction(b: unknown): boolean {
  return isObject(b) && b.type === 'compaction' && typeof b.content === 'string';
}

/**
 * The messages from the last compaction block on: that block's message keeps the block and what
 * follows it, and every earlier message and block is dropped, as the API ignores them.
 */
export function afterLastCompaction(messages: readonly Message[]): Message[] {
  for (let i = messages.length - 1; i >= 0; i--) {
    const blocks = contentBlocks(messages[i]!.content);
    for (let j = blocks.length - 1; j >= 0; j--) {
      if (isCompaction(blocks[j])) {
        return [{ role: messages[i]!.role, content: blocks.slice(j) }, ...messages.slice(i + 1)];
      }
    }
  }
  return [...messages];
}

/** The request's `context_management.edits`, or [] without any. */
export function editsOf(body: Record<string, unknown>): Block[] {
  const cm = body.context_management;
  if (!isObject(cm) || !Array.isArray(cm.edits)) return [];
  return cm.edits.filter(isObject);
}

/** The request's compact_20260112 edit, or undefined. */
export function compactEditOf(body: Record<string, unknown>): CompactEdit | undefined {
  const edit = editsOf(body).find((e) => e.type === 'compact_20260112');
  if (!edit) return undefined;
  const trigger = isObject(edit.trigger) ? Number(edit.trigger.value) : DEFAULT_COMPACT_TRIGGER;
  return {
    trigger,
    instructions: typeof edit.instructions === 'string' ? edit.instructions : null,
    pause: edit.pause_after_compaction === true,
  };
}

/** A threshold of a clear_* edit: `{type, value}` with a default. */
function threshold(v: unknown, type: string, fallback: number): { type: string; value: number } {
  return isObject(v) && typeof v.value === 'number'
    ? { type: typeof v.type === 'string' ? v.type : type, value: v.value }
    : { type, value: fallback };
}

/** clear_tool_uses_20250919: the results of all but the newest `keep` tool uses are replaced. */
function clearToolUses(parts: PromptParts, edit: Block): AppliedEdit | undefined {
  const messages = parts.messages ?? [];
  const uses: Array<{ block: Block; results: Block[] }> = [];
  const byId = new Map<string, { block: Block; results: Block[] }>();
  for (const m of messages) {
    for (const b of contentBlocks(m.content)) {
      if (!isObject(b)) continue;
      if (m.role === 'assistant' && b.type === 'tool_use') {
        const use = { block: b, results: [] };
        uses.push(use);
        byId.set(String(b.id), use);
      }
      if (m.role === 'user' && b.type === 'tool_result')
        byId.get(String(b.tool_use_id))?.results.push(b);
    }
  }
  const trigger = threshold(edit.trigger, 'input_tokens', DEFAULT_CLEAR_TRIGGER);
  const size = trigger.type === 'tool_uses' ? uses.length : estimateInputTokens(parts);
  if (size <= trigger.value) return undefined;

  const keep = threshold(edit.keep, 'tool_uses', 3).value;
  const exclude = Array.isArray(edit.exclude_tools) ? edit.exclude_tools.map(String) : [];
  const inputs = edit.clear_tool_inputs;
  const before = estimateInputTokens(parts);
  let cleared = 0;
  for (const use of uses.slice(0, Math.max(0, uses.length - keep))) {
    const name = String(use.block.name);
    if (exclude.includes(name)) continue;
    let changed = false;
    for (const r of use.results) {
      if (r.content === CLEARED_TOOL_RESULT) continue;
      r.content = CLEARED_TOOL_RESULT;
      changed = true;
    }
    if (inputs === true || (Array.isArray(inputs) && inputs.includes(name))) {
      if (JSON.stringify(use.block.input) !== '{}') changed = true;
      use.block.input = {};
    }
    if (changed) cleared++;
  }
  const clearedTokens = before - estimateInputTokens(parts);
  const atLeast = isObject(edit.clear_at_least) ? Number(edit.clear_at_least.value) : 0;
  if (cleared === 0 || clearedTokens < atLeast) return undefined;
  return {
    type: 'clear_tool_uses_20250919',
    cleared_tool_uses: cleared,
    cleared_input_tokens: clearedTokens,
  };
}

/** clear_thinking_20251015: thinking is dropped from all but the newest `keep` assistant turns. */
function clearThinking(parts: PromptParts, edit: Block): AppliedEdit | undefined {
  const keep = edit.keep;
  if (keep === 'all' || (isObject(keep) && keep.type === 'all')) return undefined;
  const keepTurns = threshold(keep, 'thinking_turns', 1).value;
  const thinks = (b: unknown) =>
    isObject(b) && (b.type === 'thinking' || b.type === 'redacted_thinking');
  const turns = (parts.messages ?? []).filter(
    (m) => m.role === 'assistant' && Array.isArray(m.content) && m.content.some(thinks),
  );
  const before = estimateInputTokens(parts);
  const old = turns.slice(0, Math.max(0, turns.length - keepTurns));
  for (const m of old) m.content = (m.content as unknown[]).filter((b) => !thinks(b));
  if (old.length === 0) return undefined;
  return {
    type: 'clear_thinking_20251015',
    cleared_thinking_turns: old.length,
    cleared_input_tokens: before - estimateInputTokens(parts),
  };
}

/** The prompt the model reads, and what context management did to get it. */
export interface ContextPlan {
  /** Tools, system and the messages after the last compaction block, clear_* edits applied. */
  prompt: PromptParts;
  /** Input tokens of `prompt`. */
  tokens: number;
  /** Input tokens before the clear_* edits ran. */
  originalTokens: number;
  applied: AppliedEdit[];
  compact?: CompactEdit;
  /** True when compact_20260112 is on and `tokens` reached its trigger. */
  compacts: boolean;
}

/** Runs the request's context management on a copy of its prompt. */
export function planContext(body: Record<string, unknown>): ContextPlan {
  const sent = Array.isArray(body.messages) ? (body.messages as Message[]) : [];
  const prompt: PromptParts = {
    tools: Array.isArray(body.tools) ? body.tools : undefined,
    system: body.system,
    messages: structuredClone(afterLastCompaction(sent)),
  };
  const originalTokens = estimateInputTokens(prompt);
  const applied: AppliedEdit[] = [];
  for (const edit of editsOf(body)) {
    const done =
      edit.type === 'clear_tool_uses_20250919'
        ? clearToolUses(prompt, edit)
        : edit.type === 'clear_thinking_20251015'
          ? clearThinking(prompt, edit)
          : undefined;
    if (done) applied.push(done);
  }
  const tokens = estimateInputTokens(prompt);
  const compact = compactEditOf(body);
  return {
    prompt,
    tokens,
    originalTokens,
    applied,
    ...(compact ? { compact } : {}),
    compacts: compact !== undefined && tokens >= compact.trigger,
  };
}

/** The first text the user wrote in `messages`, or ''. */
function firstUserText(messages: readonly Message[]): string {
  for (const m of messages) {
    if (m.role !== 'user') continue;
    for (const b of contentBlocks(m.content)) {
      if (isObject(b) && b.type === 'text' && typeof b.text === 'string') return b.text;
    }
  }
  return '';
}

/**
 * The compaction block this request returns: a deterministic summary that says how many messages
 * it stands for and how the conversation began (and which instructions it followed).
 */
export function compactionBlock(plan: ContextPlan): BetaCompactionBlock {
  const messages = plan.prompt.messages ?? [];
  const n = messages.length;
  let content =
    `Summary of the ${n} earlier message${n === 1 ? '' : 's'} of this conversation. ` +
    `It began with the user writing: ${JSON.stringify(firstUserText(messages).slice(0, 200))}`;
  if (plan.compact?.instructions) {
    content += ` (summarised following: ${JSON.stringify(plan.compact.instructions.slice(0, 200))})`;
  }
  return { type: 'compaction', content, encrypted_content: null };
}
