// The checks the real API makes against the model a request names, as the message of its 400
// invalid_request_error, or null. They read the model's row of the table (models.ts), so a rule
// follows the capabilities GET /v1/models reports rather than a list of ids.
import type { PromptParts } from './blocks.js';
import { contentBlocks, countBreakpoints } from './blocks.js';
import { MIN_COMPACT_TRIGGER, editsOf } from './context.js';
import type { ModelSpec } from './models.js';

/** The anthropic-beta value each context-management edit needs. */
export const EDIT_BETAS: Readonly<Record<string, string>> = {
  compact_20260112: 'compact-2026-01-12',
  clear_tool_uses_20250919: 'context-management-2025-06-27',
  clear_thinking_20251015: 'context-management-2025-06-27',
};

/** The most cache breakpoints one request may carry. */
export const MAX_CACHE_BREAKPOINTS = 4;
/** The smallest thinking budget the API accepts. */
export const MIN_THINKING_BUDGET = 1024;

const THINKING_TYPES = ['adaptive', 'between_tools', 'disabled', 'enabled'] as const;
const EFFORTS = ['low', 'medium', 'high', 'xhigh', 'max'] as const;
const SAMPLING = ['temperature', 'top_p', 'top_k'] as const;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The `anthropic-beta` header's values. */
export function betasOf(headers: Record<string, string>): Set<string> {
  return new Set(
    (headers['anthropic-beta'] ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
  );
}

/** Only adaptive thinking: the 5.5 models, which also refuse sampling parameters and prefill. */
function adaptiveOnly(spec: ModelSpec): boolean {
  const t = spec.capabilities.thinking.types;
  return t.adaptive.supported && !t.enabled.supported;
}

function thinkingProblem(body: Record<string, unknown>, spec: ModelSpec): string | null {
  const thinking = body.thinking;
  if (thinking === undefined || thinking === null) return null;
  if (!isObject(thinking) || typeof thinking.type !== 'string')
    return 'thinking.type: Field required';
  const type = thinking.type;
  if (!(THINKING_TYPES as readonly string[]).includes(type)) {
    return (
      `thinking: Input tag '${type}' found using 'type' does not match any of the expected ` +
      `tags: ${THINKING_TYPES.map((t) => `'${t}'`).join(', ')}`
    );
  }
  const types = spec.capabilities.thinking.types;
  if (!types[type as (typeof THINKING_TYPES)[number]].supported) {
    const hint = types.adaptive.supported
      ? ' Use "thinking.type.adaptive" and "output_config.effort" to control thinking behavior.'
      : types.enabled.supported
        ? ' Use "thinking.type.enabled" with "thinking.budget_tokens" instead.'
        : '';
    return `"thinking.type.${type}" is not supported for this model.${hint}`;
  }
  if (type === 'enabled') {
    const budget = thinking.budget_tokens;
    if (typeof budget !== 'number') return 'thinking.enabled.budget_tokens: Field required';
    if (budget < MIN_THINKING_BUDGET) {
      return `thinking.enabled.budget_tokens: Input should be greater than or equal to ${MIN_THINKING_BUDGET}`;
    }
    if (typeof body.max_tokens === 'number' && budget >= body.max_tokens) {
      return (
        '`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our ' +
        'documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size'
      );
    }
  }
  return null;
}

function samplingProblem(body: Record<string, unknown>, spec: ModelSpec): string | null {
  const sent = SAMPLING.filter((p) => body[p] !== undefined && body[p] !== null);
  if (sent.length === 0) return null;
  if (adaptiveOnly(spec)) return `\`${sent[0]}\` is not supported for this model.`;
  if (sent.includes('temperature') && sent.includes('top_p')) {
    return '`temperature` and `top_p` cannot both be specified for this model. Please use only one.';
  }
  const thinking = isObject(body.thinking) && body.thinking.type === 'enabled';
  if (thinking && body.temperature !== undefined && body.temperature !== 1) {
    return '`temperature` may only be set to 1 when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility';
  }
  if (thinking && body.top_k !== undefined) {
    return '`top_k` must be unset when thinking is enabled. Please consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking#feature-compatibility';
  }
  return null;
}

function toolChoiceProblem(body: Record<string, unknown>, spec: ModelSpec): string | null {
  const choice = body.tool_choice;
  if (!isObject(choice) || (choice.type !== 'any' && choice.type !== 'tool')) return null;
  const thinking = isObject(body.thinking) && body.thinking.type === 'enabled';
  if (adaptiveOnly(spec) || thinking) {
    return 'Thinking may not be enabled when tool_choice forces tool use.';
  }
  return null;
}

function prefillProblem(
  body: Record<string, unknown>,
  spec: ModelSpec,
  isPausedTurn: (content: unknown) => boolean,
): string | null {
  if (!adaptiveOnly(spec) || !Array.isArray(body.messages)) return null;
  const last = body.messages.at(-1) as { role?: string; content?: unknown } | undefined;
  // A pause_turn reply sent back as it came is how the API is asked to continue, not a prefill.
  if (last?.role !== 'assistant' || isPausedTurn(last.content)) return null;
  const lastBlock = contentBlocks(last.content).at(-1);
  if (isObject(lastBlock) && lastBlock.type === 'text') {
    return 'Prefilling assistant messages is not supported for this model. The conversation must end with a user message.';
  }
  return null;
}

function effortProblem(body: Record<string, unknown>, spec: ModelSpec): string | null {
  const config = body.output_config;
  if (!isObject(config) || config.effort === undefined || config.effort === null) return null;
  const effort = config.effort;
  if (typeof effort !== 'string' || !(EFFORTS as readonly string[]).includes(effort)) {
    return `output_config.effort: Input should be ${EFFORTS.map((e) => `'${e}'`).join(', ')}`;
  }
  const caps = spec.capabilities.effort;
  if (!caps.supported)
    return 'output_config.effort: This model does not support the effort parameter.';
  if (!caps[effort as (typeof EFFORTS)[number]]?.supported) {
    return `output_config.effort: '${effort}' is not supported for this model.`;
  }
  return null;
}

function contextManagementProblem(
  body: Record<string, unknown>,
  spec: ModelSpec,
  betas: ReadonlySet<string>,
): string | null {
  const cm = spec.capabilities.context_management;
  const edits = editsOf(body);
  const betaValues = new Set(Object.values(EDIT_BETAS));
  if (body.context_management != null && ![...betas].some((b) => betaValues.has(b))) {
    // Without a context-management beta the field does not exist on the endpoint.
    return 'context_management: Extra inputs are not permitted';
  }
  for (const [i, edit] of edits.entries()) {
    const type = String(edit.type);
    const beta = EDIT_BETAS[type];
    if (!beta) {
      const tags = Object.keys(EDIT_BETAS).sort();
      return (
        `context_management.edits.${i}: Input tag '${type}' found using 'type' does not match ` +
        `any of the expected tags: ${tags.map((t) => `'${t}'`).join(', ')}`
      );
    }
    if (!betas.has(beta)) {
      return `context_management.edits.${i}: '${type}' requires the beta header 'anthropic-beta: ${beta}'.`;
    }
    const support =
      cm[type as 'compact_20260112' | 'clear_tool_uses_20250919' | 'clear_thinking_20251015'];
    if (!cm.supported || !support?.supported) {
      return `context_management.edits.${i}: '${type}' is not supported for model '${spec.id}'.`;
    }
    if (type === 'compact_20260112' && isObject(edit.trigger)) {
      if (edit.trigger.type !== 'input_tokens') {
        return `context_management.edits.${i}.trigger.type: Input should be 'input_tokens'`;
      }
      const value = edit.trigger.value;
      if (typeof value !== 'number' || value < MIN_COMPACT_TRIGGER) {
        return `context_management.edits.${i}.trigger.value: Input should be greater than or equal to ${MIN_COMPACT_TRIGGER}`;
      }
    }
  }
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const [i, m] of messages.entries()) {
    const blocks = contentBlocks((m as { content?: unknown }).content);
    for (const [j, b] of blocks.entries()) {
      if (isObject(b) && b.type === 'compaction' && !betas.has(EDIT_BETAS.compact_20260112!)) {
        return `messages.${i}.content.${j}: 'compaction' blocks require the beta header 'anthropic-beta: ${EDIT_BETAS.compact_20260112}'.`;
      }
    }
  }
  return null;
}

/**
 * What the real API would refuse in `body` for the model `spec` describes: thinking types, the
 * thinking budget, forced tool choice, sampling parameters, prefill (a final assistant message
 * that `isPausedTurn` recognises as a pause_turn reply sent back is a continuation instead),
 * effort, `max_tokens`, cache breakpoints and context management (with its beta headers). The context window is checked
 * separately, once context management has run (see {@link promptTooLong}).
 */
export function modelProblem(
  body: Record<string, unknown>,
  spec: ModelSpec,
  betas: ReadonlySet<string>,
  isPausedTurn: (content: unknown) => boolean = () => false,
): string | null {
  const maxTokens = body.max_tokens;
  if (typeof maxTokens === 'number' && maxTokens < 1) {
    return 'max_tokens: Input should be greater than or equal to 1';
  }
  if (typeof maxTokens === 'number' && maxTokens > spec.max_tokens) {
    return `max_tokens: ${maxTokens} > ${spec.max_tokens}, which is the maximum allowed number of output tokens for ${spec.id}`;
  }
  const breakpoints = countBreakpoints(body as PromptParts, body.cache_control);
  if (breakpoints > MAX_CACHE_BREAKPOINTS) {
    return `A maximum of ${MAX_CACHE_BREAKPOINTS} blocks with cache_control may be provided. Found ${breakpoints}.`;
  }
  return (
    thinkingProblem(body, spec) ??
    toolChoiceProblem(body, spec) ??
    samplingProblem(body, spec) ??
    prefillProblem(body, spec, isPausedTurn) ??
    effortProblem(body, spec) ??
    contextManagementProblem(body, spec, betas)
  );
}

/** The API's 400 for a prompt over the model's context window, or null when it fits. */
export function promptTooLong(tokens: number, spec: ModelSpec): string | null {
  return tokens > spec.max_input_tokens
    ? `prompt is too long: ${tokens} tokens > ${spec.max_input_tokens} maximum`
    : null;
}
