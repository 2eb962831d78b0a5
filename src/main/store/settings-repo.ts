import type { Database } from 'better-sqlite3';
import { settingsSchema, type Settings } from '../../shared/api.js';

/** Claude Opus 5.5: Anthropic's recommended start for long-running agentic work (Nov 2026); settings change it. */
export const DEFAULT_MODEL = 'claude-opus-5-5';

/** What a fresh install starts with; stored values override these key by key. */
export const DEFAULT_SETTINGS: Settings = {
  model: DEFAULT_MODEL,
  maxTokens: 32_000,
  effort: 'high',
  approvalMode: 'auto',
  vmMemoryMb: 1024,
  vmCpus: 2,
  networkAllowlist: [],
  promptAllowlist: [],
  pinnedHosts: [],
  theme: 'system',
  onboarded: false,
  journalDays: 30,
};

/** Settings as one JSON value per key, validated against the contract on the way out. */
export class SettingsRepo {
  constructor(private readonly db: Database) {}

  /** The settings, with defaults for keys never stored. */
  get(): Settings {
    const rows = this.db.prepare('SELECT key, value FROM settings').all() as {
      key: string;
      value: string;
    }[];
    const stored: Record<string, unknown> = {};
    for (const r of rows) stored[r.key] = JSON.parse(r.value);
    const merged = settingsSchema.safeParse({ ...DEFAULT_SETTINGS, ...stored });
    // A value written by a broken build falls back to defaults rather than locking the person out.
    return merged.success ? merged.data : DEFAULT_SETTINGS;
  }

  /** Stores the given keys (validated against the contract) and returns the whole result. */
  update(patch: Partial<Settings>): Settings {
    const next = settingsSchema.parse({ ...this.get(), ...patch });
    const put = this.db.prepare(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    );
    this.db.transaction(() => {
      for (const [k, v] of Object.entries(patch)) {
        if (v !== undefined) put.run(k, JSON.stringify(v));
      }
    })();
    return next;
  }
}
