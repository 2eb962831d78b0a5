import { z } from 'zod';

/**
 * Tokens and cost as billed, summed over any number of model calls: uncached input, output, cache
 * reads, cache writes, and dollars. One shape for a task, an automation run, an automation's runs
 * and a month, so every place that shows usage counts the same four kinds of tokens.
 */
export const usageTotalsSchema = z.object({
  /** Uncached input tokens. */
  inputTokens: z.number(),
  outputTokens: z.number(),
  cacheReadTokens: z.number(),
  cacheWriteTokens: z.number(),
  costUsd: z.number(),
});
export type UsageTotals = z.infer<typeof usageTotalsSchema>;

/** No tokens, no cost. */
export const NO_USAGE: UsageTotals = Object.freeze({
  inputTokens: 0,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  costUsd: 0,
});

/** `$0.0123`, `$1.24`: cost with enough digits to see small amounts. */
export function formatCost(usd: number): string {
  if (usd === 0) return '$0.00';
  if (usd < 0.01) return `$${usd.toFixed(4)}`;
  return `$${usd.toFixed(2)}`;
}

/**
 * One line for a terminal: `1,200 input · 30 output · 9,000 cache read · 0 cache write tokens ·
 * $0.0123`. Exact counts, as a log or a bill is compared with them.
 */
export function describeUsage(u: UsageTotals): string {
  const n = (x: number) => x.toLocaleString('en-US');
  return (
    `${n(u.inputTokens)} input · ${n(u.outputTokens)} output · ` +
    `${n(u.cacheReadTokens)} cache read · ${n(u.cacheWriteTokens)} cache write tokens · ` +
    formatCost(u.costUsd)
  );
}

/**
 * What a run stopped at its spend limit tells the person (the run's error, and so its inbox item):
 * what happened, and the two ways on.
 */
export function spendLimitSentence(limitUsd: number, spentUsd: number): string {
  return (
    `This run reached its spend limit of ${formatCost(limitUsd)} (spent ${formatCost(spentUsd)}) ` +
    'and was stopped. Raise the limit in the automation, or run it again.'
  );
}
