import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';

export type MissedPolicy = 'skip' | 'once' | 'all';
export type RunStatus =
  'scheduled' | 'running' | 'succeeded' | 'failed' | 'missed' | 'skipped' | 'interrupted';

export interface AutomationRow {
  id: string;
  name: string;
  prompt: string;
  folders: string[];
  rrule: string;
  missedPolicy: MissedPolicy;
  allowlist: string[];
  enabled: boolean;
  createdAt: number;
  updatedAt: number;
}

export interface RunRow {
  id: string;
  automationId: string;
  slotAt: number;
  status: RunStatus;
  attempt: number;
  sessionId: string | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
}

interface RawAutomation {
  id: string;
  name: string;
  prompt: string;
  folders: string;
  rrule: string;
  missed_policy: MissedPolicy;
  allowlist: string;
  enabled: number;
  created_at: number;
  updated_at: number;
}

function toAutomation(r: RawAutomation): AutomationRow {
  return {
    id: r.id,
    name: r.name,
    prompt: r.prompt,
    folders: JSON.parse(r.folders) as string[],
    rrule: r.rrule,
    missedPolicy: r.missed_policy,
    allowlist: JSON.parse(r.allowlist) as string[],
    enabled: r.enabled === 1,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Automations, their runs (one per slot) and the inbox items that runs leave behind. */
export class AutomationsRepo {
  constructor(private readonly db: Database) {}

  create(input: Omit<AutomationRow, 'id' | 'createdAt' | 'updatedAt'>): AutomationRow {
    const id = newId('auto');
    const now = Date.now();
    this.db
      .prepare(
        `INSERT INTO automations (id, name, prompt, folders, rrule, missed_policy, allowlist, enabled, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        input.name,
        input.prompt,
        JSON.stringify(input.folders),
        input.rrule,
        input.missedPolicy,
        JSON.stringify(input.allowlist),
        input.enabled ? 1 : 0,
        now,
        now,
      );
    return this.get(id)!;
  }

  get(id: string): AutomationRow | undefined {
    const r = this.db.prepare('SELECT * FROM automations WHERE id = ?').get(id) as
      RawAutomation | undefined;
    return r && toAutomation(r);
  }

  list(): AutomationRow[] {
    return (
      this.db.prepare('SELECT * FROM automations ORDER BY created_at').all() as RawAutomation[]
    ).map(toAutomation);
  }

  setEnabled(id: string, enabled: boolean): boolean {
    return (
      this.db
        .prepare('UPDATE automations SET enabled = ?, updated_at = ? WHERE id = ?')
        .run(enabled ? 1 : 0, Date.now(), id).changes > 0
    );
  }

  remove(id: string): boolean {
    return this.db.prepare('DELETE FROM automations WHERE id = ?').run(id).changes > 0;
  }

  /** Records a slot; the UNIQUE(automation_id, slot_at) constraint makes a slot exist only once. */
  ensureRun(automationId: string, slotAt: number, status: RunStatus = 'scheduled'): RunRow {
    this.db
      .prepare(
        `INSERT INTO runs (id, automation_id, slot_at, status) VALUES (?, ?, ?, ?)
         ON CONFLICT(automation_id, slot_at) DO NOTHING`,
      )
      .run(newId('run'), automationId, slotAt, status);
    return this.runForSlot(automationId, slotAt)!;
  }

  runForSlot(automationId: string, slotAt: number): RunRow | undefined {
    const r = this.db
      .prepare('SELECT * FROM runs WHERE automation_id = ? AND slot_at = ?')
      .get(automationId, slotAt) as Record<string, unknown> | undefined;
    return r && toRun(r);
  }

  runs(automationId?: string): RunRow[] {
    const rows = (
      automationId
        ? this.db
            .prepare('SELECT * FROM runs WHERE automation_id = ? ORDER BY slot_at')
            .all(automationId)
        : this.db.prepare('SELECT * FROM runs ORDER BY slot_at').all()
    ) as Record<string, unknown>[];
    return rows.map(toRun);
  }

  addInboxItem(runId: string, summary: string): string {
    const id = newId('inbox');
    this.db
      .prepare(
        `INSERT INTO inbox_items (id, run_id, state, summary, created_at) VALUES (?, ?, 'unread', ?, ?)`,
      )
      .run(id, runId, summary, Date.now());
    return id;
  }

  inbox(): { id: string; runId: string; state: string; summary: string; createdAt: number }[] {
    return (
      this.db.prepare('SELECT * FROM inbox_items ORDER BY created_at DESC').all() as {
        id: string;
        run_id: string;
        state: string;
        summary: string;
        created_at: number;
      }[]
    ).map((r) => ({
      id: r.id,
      runId: r.run_id,
      state: r.state,
      summary: r.summary,
      createdAt: r.created_at,
    }));
  }
}

function toRun(r: Record<string, unknown>): RunRow {
  return {
    id: r.id as string,
    automationId: r.automation_id as string,
    slotAt: r.slot_at as number,
    status: r.status as RunStatus,
    attempt: r.attempt as number,
    sessionId: (r.session_id as string | null) ?? null,
    startedAt: (r.started_at as number | null) ?? null,
    finishedAt: (r.finished_at as number | null) ?? null,
    error: (r.error as string | null) ?? null,
  };
}
