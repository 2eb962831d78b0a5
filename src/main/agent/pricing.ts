/**
 * US dollars per million tokens, from Anthropic's published price list (Nov 2026). Cache writes
 * cost 1.25× input and cache reads 0.1× input. An unknown model is costed as Opus 5.5.
 */
const PRICES: Record<string, { input: number; output: number }> = {
  'claude-fable-5-2': { input: 10, output: 50 },
  'claude-fable-5-1': { input: 10, output: 50 },
  'claude-fable-5': { input: 10, output: 50 },
  'claude-opus-5-5': { input: 4, output: 20 },
  'claude-opus-5': { input: 5, output: 25 },
  'claude-opus-4-8': { input: 5, output: 25 },
  'claude-opus-4-7': { input: 5, output: 25 },
  'claude-opus-4-6': { input: 5, output: 25 },
  'claude-opus-4-5': { input: 5, output: 25 },
  'claude-sonnet-5-5': { input: 2, output: 10 },
  'claude-sonnet-5': { input: 2, output: 10 },
  'claude-sonnet-4-6': { input: 3, output: 15 },
  'claude-sonnet-4-5': { input: 3, output: 15 },
  'claude-haiku-5-5': { input: 1, output: 5 },
  'claude-haiku-4-5': { input: 1, output: 5 },
};

export interface Usage {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens?: number | null;
  cache_read_input_tokens?: number | null;
}

/** What one model call cost, in dollars. */
export function costOf(model: string, usage: Usage): number {
  const base = model.replace(/-\d{8}$/, '');
  const p = PRICES[base] ?? PRICES['claude-opus-5-5']!;
  const input =
    usage.input_tokens +
    1.25 * (usage.cache_creation_input_tokens ?? 0) +
    0.1 * (usage.cache_read_input_tokens ?? 0);
  return (input * p.input + usage.output_tokens * p.output) / 1_000_000;
}

/** A usage with the iterations a server-side compaction reports. */
type UsageWithIterations = Usage & {
  iterations?: Array<Usage & { type?: string }> | null;
};

/**
 * What one reply bills: its top-level usage plus any compaction pass, which the API reports only
 * in `usage.iterations` (the top level is the sampling pass alone).
 */
export function billedUsage(usage: UsageWithIterations): {
  input_tokens: number;
  output_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
} {
  const out = {
    input_tokens: usage.input_tokens,
    output_tokens: usage.output_tokens,
    cache_creation_input_tokens: usage.cache_creation_input_tokens ?? 0,
    cache_read_input_tokens: usage.cache_read_input_tokens ?? 0,
  };
  for (const it of usage.iterations ?? []) {
    if (it.type !== 'compaction') continue;
    out.input_tokens += it.input_tokens ?? 0;
    out.output_tokens += it.output_tokens ?? 0;
    out.cache_creation_input_tokens += it.cache_creation_input_tokens ?? 0;
    out.cache_read_input_tokens += it.cache_read_input_tokens ?? 0;
  }
  return out;
}
