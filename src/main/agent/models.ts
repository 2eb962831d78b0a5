import fs from 'node:fs';
import path from 'node:path';
import type { ThinkingConfigParam } from '@anthropic-ai/sdk/resources/messages';
import type { ModelInfo } from '@anthropic-ai/sdk/resources/models';
import type { Effort } from '../../shared/api.js';

/** Effort levels, least to most. */
export const EFFORTS: readonly Effort[] = ['low', 'medium', 'high', 'xhigh', 'max'];

/**
 * What one model accepts, read from `GET /v1/models` (or the built-in table when that cannot be
 * reached). Every request is shaped from it: nothing the model refuses is ever sent.
 */
export interface ModelProfile {
  id: string;
  /** The context window: how many input tokens one request may hold. */
  maxInputTokens: number;
  /** The largest `max_tokens` the model accepts. */
  maxOutputTokens: number;
  /** Which `thinking.type` values the model accepts. */
  thinking: { adaptive: boolean; enabled: boolean; disabled: boolean };
  /** Effort levels the model accepts; empty: no `output_config.effort` at all. */
  effortLevels: Effort[];
  /** Server-side compaction (`compact_20260112`). */
  compaction: boolean;
  /** Where this came from: the Models API, or the built-in table. */
  source: 'api' | 'built-in';
}

const ADAPTIVE = { adaptive: true, enabled: false, disabled: false };
const BUDGETED = { adaptive: false, enabled: true, disabled: true };

/**
 * The models Paddock knows without asking, as Anthropic documents them (Nov 2026): the 5.5 models
 * think adaptively only and take every effort level and server-side compaction; the 4.5 models take
 * a thinking budget (or none) and no effort. Used when the Models API cannot be reached.
 */
export const BUILT_IN_MODELS: readonly ModelProfile[] = [
  profile('claude-opus-5-5', 200_000, 64_000, ADAPTIVE, [...EFFORTS], true),
  profile('claude-sonnet-5-5', 200_000, 64_000, ADAPTIVE, [...EFFORTS], true),
  profile('claude-haiku-5-5', 200_000, 32_000, ADAPTIVE, [...EFFORTS], true),
  profile('claude-sonnet-4-5', 200_000, 64_000, BUDGETED, [], false),
  profile('claude-haiku-4-5', 200_000, 64_000, BUDGETED, [], false),
];

function profile(
  id: string,
  maxInputTokens: number,
  maxOutputTokens: number,
  thinking: ModelProfile['thinking'],
  effortLevels: Effort[],
  compaction: boolean,
): ModelProfile {
  return {
    id,
    maxInputTokens,
    maxOutputTokens,
    thinking,
    effortLevels,
    compaction,
    source: 'built-in',
  };
}

/**
 * The built-in profile for `model` (a dated id such as `claude-opus-5-5-20261101` is its family);
 * an unknown model is taken to be like the default, the newest generation.
 */
export function builtInProfile(model: string): ModelProfile {
  const base = model.replace(/-\d{8}$/, '');
  const known = BUILT_IN_MODELS.find((m) => m.id === base) ?? BUILT_IN_MODELS[0]!;
  return { ...known, id: model };
}

/** A profile from the Models API's answer; null when it says nothing about capabilities. */
export function profileFromInfo(info: ModelInfo): ModelProfile | null {
  const c = info.capabilities;
  if (!c) return null;
  const types = c.thinking?.types;
  const effort = c.effort;
  return {
    id: info.id,
    maxInputTokens: positive(info.max_input_tokens) ?? builtInProfile(info.id).maxInputTokens,
    maxOutputTokens: positive(info.max_tokens) ?? builtInProfile(info.id).maxOutputTokens,
    thinking: {
      adaptive: Boolean(c.thinking?.supported && types?.adaptive?.supported),
      enabled: Boolean(c.thinking?.supported && types?.enabled?.supported),
      // A model without thinking accepts 'disabled' (the API documents it so); omitting is safer.
      disabled: Boolean(types?.disabled?.supported),
    },
    effortLevels: effort?.supported ? EFFORTS.filter((e) => effort[e]?.supported === true) : [],
    compaction: Boolean(
      c.context_management?.supported && c.context_management.compact_20260112?.supported,
    ),
    source: 'api',
  };
}

/** A bounded positive integer from the network, or undefined. */
function positive(n: unknown): number | undefined {
  return typeof n === 'number' && Number.isInteger(n) && n > 0 && n <= 100_000_000 ? n : undefined;
}

/** A thinking budget for models that take one, by effort (`low` thinks not at all). */
const BUDGET_FOR_EFFORT: Record<Effort, number> = {
  low: 0,
  medium: 4_096,
  high: 16_000,
  xhigh: 32_000,
  max: 64_000,
};

/** The parts of a request that depend on the model: output limit, thinking, effort. */
export interface ShapedParams {
  max_tokens: number;
  thinking?: ThinkingConfigParam;
  output_config?: { effort: Effort };
}

/**
 * Shapes a request for `p` at `effort`: adaptive thinking where the model has it, otherwise a
 * budget from the effort (or thinking off); the effort itself where the model takes it (the
 * nearest level it accepts); `max_tokens` within the model's limit. Never a sampling parameter,
 * a forced tool choice or a prefill: the loop sends none of those to any model.
 */
export function shapeRequest(p: ModelProfile, effort: Effort, maxTokens: number): ShapedParams {
  const max_tokens = Math.max(1, Math.min(maxTokens, p.maxOutputTokens));
  const out: ShapedParams = { max_tokens };
  if (p.thinking.adaptive) {
    out.thinking = { type: 'adaptive' };
  } else if (p.thinking.enabled) {
    const budget = Math.min(BUDGET_FOR_EFFORT[effort], max_tokens - 1);
    if (budget >= 1024) out.thinking = { type: 'enabled', budget_tokens: budget };
    else if (p.thinking.disabled) out.thinking = { type: 'disabled' };
  }
  const level = nearestEffort(p.effortLevels, effort);
  if (level) out.output_config = { effort: level };
  return out;
}

/** The accepted level nearest to `wanted`: the highest not above it, else the lowest above. */
export function nearestEffort(levels: readonly Effort[], wanted: Effort): Effort | undefined {
  const rank = (e: Effort) => EFFORTS.indexOf(e);
  const sorted = [...levels].sort((a, b) => rank(a) - rank(b));
  return sorted.filter((l) => rank(l) <= rank(wanted)).at(-1) ?? sorted[0];
}

/** Where the catalog gets the model list and keeps its copy. */
export interface CatalogOptions {
  /** The Models API's list (every page). */
  list: () => Promise<ModelInfo[]>;
  /** A JSON file that keeps the last list across restarts; none: memory only. */
  cacheFile?: string;
  /** How long a list is used before asking again (default a day). */
  ttlMs?: number;
  now?: () => number;
}

interface CatalogFile {
  fetchedAt: number;
  models: ModelProfile[];
}

/**
 * The models the API says exist and what each accepts: asked once a day (or when a model is not
 * in the list), kept on disk, and the built-in table when the API cannot be reached and nothing
 * was kept.
 */
export class ModelCatalog {
  private known: CatalogFile | undefined;
  private pending: Promise<CatalogFile | undefined> | undefined;

  constructor(private readonly o: CatalogOptions) {}

  /** What `model` accepts. */
  async profile(model: string): Promise<ModelProfile> {
    const now = (this.o.now ?? Date.now)();
    let list = this.known ?? this.readFile();
    const age = list ? now - list.fetchedAt : Infinity;
    const listed = list?.models.some((m) => m.id === model);
    // A model missing from the list may be new: ask again, but not more than once a minute.
    if (age >= (this.o.ttlMs ?? 24 * 3600_000) || (!listed && age >= 60_000))
      list = (await this.refresh()) ?? list;
    return list?.models.find((m) => m.id === model) ?? builtInProfile(model);
  }

  private refresh(): Promise<CatalogFile | undefined> {
    this.pending ??= this.o
      .list()
      .then((infos) => {
        const models = infos.slice(0, 1000).flatMap((i) => profileFromInfo(i) ?? []);
        const file: CatalogFile = { fetchedAt: (this.o.now ?? Date.now)(), models };
        this.known = file;
        this.writeFile(file);
        return file;
      })
      .catch(() => undefined)
      .finally(() => (this.pending = undefined));
    return this.pending;
  }

  private readFile(): CatalogFile | undefined {
    if (!this.o.cacheFile) return undefined;
    try {
      const f = JSON.parse(fs.readFileSync(this.o.cacheFile, 'utf8')) as CatalogFile;
      if (typeof f.fetchedAt !== 'number' || !Array.isArray(f.models)) return undefined;
      this.known = f;
      return f;
    } catch {
      return undefined;
    }
  }

  private writeFile(f: CatalogFile): void {
    if (!this.o.cacheFile) return;
    try {
      fs.mkdirSync(path.dirname(this.o.cacheFile), { recursive: true });
      const tmp = `${this.o.cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(f));
      fs.renameSync(tmp, this.o.cacheFile);
    } catch {
      // A read-only data folder only means asking again next time.
    }
  }
}
