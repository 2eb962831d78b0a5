// The models the mock Messages API stands for, with what the real API says each one accepts.
// GET /v1/models answers from this table, and POST /v1/messages enforces it (see rules.ts), so a
// test that picks a model gets the same 400s the real API would give for it.
import type { ModelCapabilities, ModelInfo, ModelLine } from '@anthropic-ai/sdk/resources/models';

/** One model of the table: its limits, its capabilities in the Models API's shape, and caching. */
export interface ModelSpec {
  id: string;
  display_name: string;
  line: ModelLine;
  created_at: string;
  /** The context window: the most input tokens one request may hold. */
  max_input_tokens: number;
  /** The largest `max_tokens` the model accepts. */
  max_tokens: number;
  /** The shortest prefix (in tokens) the prompt cache stores; shorter breakpoints write nothing. */
  min_cacheable_tokens: number;
  capabilities: ModelCapabilities;
  lifecycle: ModelInfo['lifecycle'];
  deprecated_at: string | null;
  retires_at: string | null;
}

const yes = { supported: true };
const no = { supported: false };

/** What the models of one generation share; per-model limits are set in {@link MODEL_TABLE}. */
function capabilities(generation: '5.5' | '4.5', contextManagement: boolean): ModelCapabilities {
  const newest = generation === '5.5';
  return {
    batch: yes,
    citations: yes,
    code_execution: newest ? yes : no,
    context_management: {
      clear_thinking_20251015: contextManagement ? yes : no,
      clear_tool_uses_20250919: contextManagement ? yes : no,
      compact_20260112: newest ? yes : no,
      supported: contextManagement,
    },
    effort: newest
      ? { low: yes, medium: yes, high: yes, max: yes, xhigh: yes, supported: true }
      : { low: no, medium: no, high: no, max: no, xhigh: null, supported: false },
    image_input: yes,
    pdf_input: yes,
    server_tools: { code_execution: yes, web_search: yes, supported: true },
    structured_outputs: yes,
    thinking: {
      supported: true,
      types: newest
        ? { adaptive: yes, between_tools: yes, disabled: no, enabled: no }
        : { adaptive: no, between_tools: no, disabled: yes, enabled: yes },
    },
  };
}

function spec(
  id: string,
  line: ModelLine,
  created_at: string,
  limits: { max_tokens: number; min_cacheable_tokens: number },
  caps: ModelCapabilities,
): ModelSpec {
  return {
    id,
    display_name: displayName(id),
    line,
    created_at,
    max_input_tokens: 200_000,
    ...limits,
    capabilities: caps,
    lifecycle: 'active',
    deprecated_at: null,
    retires_at: null,
  };
}

/**
 * The real API's models as the mock serves them, newest first (the order GET /v1/models lists
 * them in). The 5.5 models think adaptively only and take every effort level and all three
 * context-management strategies; the 4.5 models take a thinking budget (or none), no effort, and
 * no server-side compaction (Haiku 4.5 no context management at all).
 */
export const MODEL_TABLE: Readonly<Record<string, ModelSpec>> = {
  'claude-opus-5-5': spec(
    'claude-opus-5-5',
    'opus',
    '2026-11-01T00:00:00Z',
    { max_tokens: 64_000, min_cacheable_tokens: 4096 },
    capabilities('5.5', true),
  ),
  'claude-sonnet-5-5': spec(
    'claude-sonnet-5-5',
    'sonnet',
    '2026-11-01T00:00:00Z',
    { max_tokens: 64_000, min_cacheable_tokens: 2048 },
    capabilities('5.5', true),
  ),
  'claude-haiku-5-5': spec(
    'claude-haiku-5-5',
    'haiku',
    '2026-11-01T00:00:00Z',
    { max_tokens: 32_000, min_cacheable_tokens: 4096 },
    capabilities('5.5', true),
  ),
  'claude-sonnet-4-5': {
    ...spec(
      'claude-sonnet-4-5',
      'sonnet',
      '2025-09-29T00:00:00Z',
      { max_tokens: 64_000, min_cacheable_tokens: 1024 },
      capabilities('4.5', true),
    ),
    // The SDK warns that this model reaches end-of-life on November 30th, 2026.
    lifecycle: 'deprecated',
    deprecated_at: '2026-09-01T00:00:00Z',
    retires_at: '2026-11-30T00:00:00Z',
  },
  'claude-haiku-4-5': spec(
    'claude-haiku-4-5',
    'haiku',
    '2025-10-01T00:00:00Z',
    { max_tokens: 64_000, min_cacheable_tokens: 4096 },
    capabilities('4.5', false),
  ),
};

/** The model whose rules stand in for an id the table does not know. */
export const FALLBACK_MODEL_ID = 'claude-opus-5-5';

/** Every id of {@link MODEL_TABLE}, newest first: what GET /v1/models lists by default. */
export const DEFAULT_MODEL_IDS: readonly string[] = Object.keys(MODEL_TABLE);

/** `claude-sonnet-5-5` → `Claude Sonnet 5.5`. */
function displayName(id: string): string {
  return id
    .replace(/^claude-/, 'Claude ')
    .replace(/-(\d+)-(\d+)$/, ' $1.$2')
    .replace(/\b[a-z]/g, (c) => c.toUpperCase());
}

/**
 * The spec for `id` when the server lists it: the table's entry, or for a listed id the table
 * lacks, {@link FALLBACK_MODEL_ID}'s limits and capabilities under that id. A dated id
 * (`claude-opus-5-5-20261101`) is its family's. Undefined: the API would answer 404.
 */
export function modelSpec(id: string, listed: readonly string[]): ModelSpec | undefined {
  const family = id.replace(/-\d{8}$/, '');
  const base = listed.includes(id) ? id : listed.includes(family) ? family : undefined;
  if (base === undefined) return undefined;
  const known = MODEL_TABLE[base];
  if (known) return base === id ? known : { ...known, id };
  return { ...MODEL_TABLE[FALLBACK_MODEL_ID]!, id, display_name: displayName(id), line: 'opus' };
}

/** The Models API's answer for one model. */
export function modelInfo(spec: ModelSpec): ModelInfo {
  return {
    type: 'model',
    id: spec.id,
    display_name: spec.display_name,
    created_at: spec.created_at,
    capabilities: spec.capabilities,
    deprecated_at: spec.deprecated_at,
    lifecycle: spec.lifecycle,
    line: spec.line,
    max_input_tokens: spec.max_input_tokens,
    max_tokens: spec.max_tokens,
    retires_at: spec.retires_at,
  };
}
