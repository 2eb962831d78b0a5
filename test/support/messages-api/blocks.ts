// A request's prompt as one sequence of blocks (tools, then system blocks, then each message's
// content blocks), with a token estimate per block. Token counting, the context-window check and
// the prompt-cache simulation all use this one sequence, so their numbers always agree: a
// request's input tokens are the sum over its blocks, and a prefix's tokens are well defined at
// every block boundary.
import { createHash } from 'node:crypto';

/** The parts of a request that make up the prompt. */
export interface PromptParts {
  tools?: unknown[] | undefined;
  system?: unknown;
  messages?: Array<{ role: string; content: unknown }> | undefined;
}

/** A breakpoint's lifetime in the prompt cache. */
export type CacheTtl = '5m' | '1h';

/** One block of the prompt, in order. */
export interface PromptBlock {
  section: 'tools' | 'system' | 'messages';
  /** The message's role (messages only). */
  role?: string;
  /** Index of the message in the request (messages only). */
  message?: number;
  /** True for the first block of a message: a message boundary is part of the prefix's identity. */
  starts?: boolean;
  /** The block's `type` ('text', 'tool_use', ...; '' for a tool definition without one). */
  type: string;
  /** The block as sent, without `cache_control` and null fields, keys sorted. */
  canonical: string;
  tokens: number;
  /** The cache breakpoint this block carries, if any. */
  breakpoint?: CacheTtl;
}

/** A rough token count (characters / 4, at least 1): the one estimate every count uses. */
export function estimateTokens(value: unknown): number {
  const text = typeof value === 'string' ? value : JSON.stringify(value ?? '');
  return Math.max(1, Math.ceil(text.length / 4));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `value` without `cache_control` fields or null/undefined values, object keys sorted. */
function canonicalValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonicalValue);
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = value[key];
    if (key === 'cache_control' || v === null || v === undefined) continue;
    out[key] = canonicalValue(v);
  }
  return out;
}

/** The TTL of the `cache_control` on `block` or on a block nested in it (tool_result content). */
function breakpointOf(block: unknown): CacheTtl | undefined {
  if (!isObject(block)) return undefined;
  const cc = block.cache_control;
  if (isObject(cc)) return cc.ttl === '1h' ? '1h' : '5m';
  if (Array.isArray(block.content)) {
    for (const inner of block.content) {
      const ttl = breakpointOf(inner);
      if (ttl) return ttl;
    }
  }
  return undefined;
}

/** A string given where blocks are expected (system, message content) is one text block. */
export function contentBlocks(content: unknown): unknown[] {
  if (typeof content === 'string') return [{ type: 'text', text: content }];
  return Array.isArray(content) ? content : [];
}

function block(
  raw: unknown,
  at: Pick<PromptBlock, 'section' | 'role' | 'message' | 'starts'>,
): PromptBlock {
  const canonical = JSON.stringify(canonicalValue(raw));
  const type = isObject(raw) && typeof raw.type === 'string' ? raw.type : '';
  const out: PromptBlock = { ...at, type, canonical, tokens: estimateTokens(canonical) };
  const ttl = breakpointOf(raw);
  if (ttl) out.breakpoint = ttl;
  return out;
}

/** Thinking blocks cannot carry `cache_control`, so automatic caching skips back over them. */
const UNCACHEABLE = new Set(['thinking', 'redacted_thinking']);

/**
 * The prompt as blocks: each tool definition, each system block, each message's content blocks
 * (a string counts as one text block). With `topLevelCache` (the request's own `cache_control`)
 * the last cacheable block gets a breakpoint too, unless it already has one.
 */
export function promptBlocks(parts: PromptParts, topLevelCache?: unknown): PromptBlock[] {
  const out: PromptBlock[] = [];
  const tools = Array.isArray(parts.tools) ? parts.tools : [];
  for (const tool of tools) out.push(block(tool, { section: 'tools' }));
  for (const b of contentBlocks(parts.system)) out.push(block(b, { section: 'system' }));
  (Array.isArray(parts.messages) ? parts.messages : []).forEach((m, message) => {
    contentBlocks(m.content).forEach((b, i) => {
      out.push(block(b, { section: 'messages', role: m.role, message, starts: i === 0 }));
    });
  });
  if (isObject(topLevelCache)) {
    const ttl: CacheTtl = topLevelCache.ttl === '1h' ? '1h' : '5m';
    for (let i = out.length - 1; i >= 0; i--) {
      if (UNCACHEABLE.has(out[i]!.type)) continue;
      out[i]!.breakpoint ??= ttl;
      break;
    }
  }
  return out;
}

/** A message content's identity: its blocks' canonical JSON (a string is one text block). */
export function contentKey(content: unknown): string {
  return contentBlocks(content)
    .map((b) => JSON.stringify(canonicalValue(b)))
    .join('\n');
}

/** The input tokens of a prompt: the sum over its blocks. */
export function sumTokens(blocks: readonly PromptBlock[]): number {
  return blocks.reduce((n, b) => n + b.tokens, 0);
}

/** The input tokens a request's prompt would cost, as count_tokens reports them. */
export function estimateInputTokens(parts: PromptParts): number {
  return sumTokens(promptBlocks(parts));
}

/**
 * The identity of every prefix: entry k hashes blocks [0, k). Each step folds in the block's
 * section, role and message boundary with its canonical JSON, so a change in tools, system or an
 * earlier message changes every later prefix, while moving a breakpoint changes none.
 */
export function prefixHashes(blocks: readonly PromptBlock[]): string[] {
  const out = [createHash('sha256').update('prompt').digest('hex')];
  for (const b of blocks) {
    const step = JSON.stringify([b.section, b.role ?? null, b.starts ?? false, b.canonical]);
    out.push(createHash('sha256').update(out.at(-1)!).update(step).digest('hex'));
  }
  return out;
}

/** How many blocks of the request as sent carry a breakpoint (the top-level one included). */
export function countBreakpoints(parts: PromptParts, topLevelCache?: unknown): number {
  return promptBlocks(parts, topLevelCache).filter((b) => b.breakpoint).length;
}
