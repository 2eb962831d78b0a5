// The prompt cache, simulated per server and model, so `usage` reports cache reads and writes the
// way the real API does for the breakpoints a request sends: a read is the longest stored prefix
// found within 20 blocks before a breakpoint, a write is everything from there to the last
// breakpoint (when that prefix is long enough to cache), and entries live 5 minutes (or an hour)
// from their last use.
import type { CacheTtl, PromptBlock } from './blocks.js';
import { prefixHashes, sumTokens } from './blocks.js';

/** The input side of `usage` for one pass over a prompt. */
export interface InputUsage {
  input_tokens: number;
  cache_read_input_tokens: number;
  cache_creation_input_tokens: number;
  cache_creation: { ephemeral_5m_input_tokens: number; ephemeral_1h_input_tokens: number };
}

/** How far before a breakpoint the cache looks for an earlier entry, in blocks. */
export const CACHE_LOOKBACK_BLOCKS = 20;

const TTL_MS: Record<CacheTtl, number> = { '5m': 5 * 60_000, '1h': 60 * 60_000 };

interface Entry {
  expiresAt: number;
  ttlMs: number;
}

/** One server's prompt cache: prefix hashes per model, each with its expiry. */
export class PromptCache {
  private readonly byModel = new Map<string, Map<string, Entry>>();

  constructor(private readonly now: () => number) {}

  /**
   * Reads and writes `blocks` (a whole prompt, breakpoints marked) against the cache of `model`
   * and returns the usage it costs. Prefixes shorter than `minTokens` are neither written nor
   * stored.
   */
  use(model: string, blocks: readonly PromptBlock[], minTokens: number): InputUsage {
    const total = sumTokens(blocks);
    const breakpoints = blocks.flatMap((b, i) =>
      b.breakpoint ? [{ len: i + 1, ttl: b.breakpoint }] : [],
    );
    if (breakpoints.length === 0) return uncached(total);

    const now = this.now();
    let entries = this.byModel.get(model);
    if (!entries) this.byModel.set(model, (entries = new Map()));
    const hashes = prefixHashes(blocks);
    const tokensBefore = [0];
    for (const b of blocks) tokensBefore.push(tokensBefore.at(-1)! + b.tokens);
    const live = (len: number) => {
      const e = entries.get(hashes[len]!);
      return e !== undefined && e.expiresAt > now ? e : undefined;
    };

    // Read: the longest live prefix within the lookback window of any breakpoint.
    let hit = 0;
    for (const bp of breakpoints) {
      for (let len = bp.len; len >= Math.max(1, bp.len - CACHE_LOOKBACK_BLOCKS); len--) {
        if (live(len)) {
          hit = Math.max(hit, len);
          break;
        }
      }
    }
    const hitEntry = hit > 0 ? live(hit) : undefined;
    if (hitEntry) hitEntry.expiresAt = now + hitEntry.ttlMs;

    // Write: from the hit to the last breakpoint, each stretch at the TTL of the breakpoint ending it.
    const written = { '5m': 0, '1h': 0 };
    const last = breakpoints.at(-1)!.len;
    if (last > hit && tokensBefore[last]! >= minTokens) {
      let from = hit;
      for (const bp of breakpoints) {
        if (bp.len <= from) continue;
        written[bp.ttl] += tokensBefore[bp.len]! - tokensBefore[from]!;
        from = bp.len;
      }
    }
    for (const bp of breakpoints) {
      if (tokensBefore[bp.len]! < minTokens) continue;
      const key = hashes[bp.len]!;
      const ttlMs = Math.max(TTL_MS[bp.ttl], entries.get(key)?.ttlMs ?? 0);
      entries.set(key, { expiresAt: now + ttlMs, ttlMs });
    }

    const read = tokensBefore[hit]!;
    const write = written['5m'] + written['1h'];
    return {
      input_tokens: total - read - write,
      cache_read_input_tokens: read,
      cache_creation_input_tokens: write,
      cache_creation: {
        ephemeral_5m_input_tokens: written['5m'],
        ephemeral_1h_input_tokens: written['1h'],
      },
    };
  }
}

/** Usage of a prompt read without the cache. */
export function uncached(total: number): InputUsage {
  return {
    input_tokens: total,
    cache_read_input_tokens: 0,
    cache_creation_input_tokens: 0,
    cache_creation: { ephemeral_5m_input_tokens: 0, ephemeral_1h_input_tokens: 0 },
  };
}
