import type { Database } from 'better-sqlite3';
import type { ApplyChanges } from '../../shared/automations-contract.js';
import { newId } from '../../shared/ids.js';
import { RowCodec } from './rows.js';

/** What happens to slots that passed while nothing was running (asleep, off, clock jumped). */
export type MissedPolicy = 'skip' | 'once' | 'all';

/**
 * A granted folder as stored: the same `{hostPath, name, readOnly, review}` a session keeps (the
 * VM's ShareSpec), resolved when the automation was made or edited. `name` is its `/mnt/<name>`.
 */
export interface FolderShare {
  hostPath: string;
  name: string;
  readOnly: boolean;
  /**
   * A read-write folder's mode: its writes staged for review (true) or written directly (false).
   * Always set on read-write folders (migration 0008 marked older ones false); unset on read-only.
   */
  review?: boolean;
}

/** One automation as the rest of the app sees it. */
export interface AutomationRow {
  id: string;
  name: string;
  prompt: string;
  /** Granted folders; each run judges them again before sharing them. */
  folders: FolderShare[];
  /** iCalendar text: `DTSTART;TZID=...:...` and `RRULE:...` lines. */
  rrule: string;
  tzid: string;
  /** What the person wrote, e.g. "every weekday at 9:00". */
  scheduleText: string;
  missedPolicy: MissedPolicy;
  /** Hosts a person configured for it (its form, `--allow-host`, or the task that made it). */
  allowlist: string[];
  /** Hosts from answers to a prompt; they never open internal addresses. */
  promptAllowlist: string[];
  enabled: boolean;
  /** The earliest slot not yet recorded as a run; null when the schedule has no slot left. */
  nextSlotAt: number | null;
  timeoutMs: number;
  /** Attempts a slot gets when a run is interrupted (1 = no retry). */
  maxAttempts: number;
  /** A run is stopped once its model calls cost this many dollars; null: no limit. */
  spendLimitUsd: number | null;
  /** What becomes of what a run staged in its review folders. */
  applyChanges: ApplyChanges;
  /** Names of the secrets its runs may use. */
  secrets: string[];
  createdBySession: string | null;
  removedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

/** What creating an automation needs. */
export type NewAutomation = Pick<
  AutomationRow,
  'name' | 'prompt' | 'folders' | 'rrule' | 'tzid' | 'scheduleText' | 'missedPolicy' | 'allowlist'
> &
  Partial<
    Pick<
      AutomationRow,
      | 'enabled'
      | 'nextSlotAt'
      | 'timeoutMs'
      | 'maxAttempts'
      | 'createdBySession'
      | 'promptAllowlist'
      | 'spendLimitUsd'
      | 'applyChanges'
      | 'secrets'
    >
  >;

/** What editing an automation's definition may change. */
export type AutomationPatch = Partial<
  Pick<
    AutomationRow,
    | 'name'
    | 'prompt'
    | 'folders'
    | 'rrule'
    | 'tzid'
    | 'scheduleText'
    | 'missedPolicy'
    | 'allowlist'
    | 'nextSlotAt'
    | 'spendLimitUsd'
    | 'applyChanges'
    | 'secrets'
  >
>;

const automationRows = new RowCodec<AutomationRow>('automations', {
  json: ['folders', 'allowlist', 'promptAllowlist', 'secrets'],
  bool: ['enabled'],
});

/**
 * The automations themselves: their definitions and each one's cursor (its next slot not yet
 * recorded as a run). Removal is soft, so runs and inbox items outlive the automation.
 */
export class AutomationsRepo {
  constructor(private readonly db: Database) {}

  create(input: NewAutomation, now = Date.now()): AutomationRow {
    const id = newId('auto');
    // Unset fields take the schema's defaults (a 30-minute timeout, 2 attempts, no cursor).
    automationRows.insert(this.db, {
      ...input,
      id,
      enabled: input.enabled ?? true,
      createdAt: now,
      updatedAt: now,
    });
    return this.get(id)!;
  }

  get(id: string): AutomationRow | undefined {
    return automationRows.byId(this.db, id);
  }

  /** Automations not removed (or all of them), oldest first. */
  list(opts: { includeRemoved?: boolean } = {}): AutomationRow[] {
    const where = opts.includeRemoved ? '' : 'WHERE removed_at IS NULL';
    return this.db
      .prepare(`SELECT * FROM automations ${where} ORDER BY created_at, id`)
      .all()
      .map(automationRows.read);
  }

  /** Edits an automation's definition; a new schedule comes with its new cursor. */
  update(id: string, patch: AutomationPatch, now = Date.now()): boolean {
    const set = automationRows.write({ ...patch, updatedAt: now });
    const assignments = Object.keys(set).map((c) => `${c} = @${c}`);
    return (
      this.db
        .prepare(
          `UPDATE automations SET ${assignments.join(', ')} WHERE id = @id AND removed_at IS NULL`,
        )
        .run({ ...set, id }).changes > 0
    );
  }

  /** Pauses or resumes; resuming sets the cursor, so slots during the pause are not "missed". */
  setEnabled(id: string, enabled: boolean, nextSlotAt?: number | null, now = Date.now()): boolean {
    return (
      this.db
        .prepare(
          `UPDATE automations SET enabled = ?, next_slot_at = COALESCE(?, next_slot_at), updated_at = ?
           WHERE id = ? AND removed_at IS NULL`,
        )
        .run(enabled ? 1 : 0, nextSlotAt ?? null, now, id).changes > 0
    );
  }

  /** Removes an automation from the schedule; its runs and inbox items stay as history. */
  remove(id: string, now = Date.now()): boolean {
    return (
      this.db
        .prepare(
          `UPDATE automations SET enabled = 0, removed_at = ?, next_slot_at = NULL, updated_at = ?
           WHERE id = ? AND removed_at IS NULL`,
        )
        .run(now, now, id).changes > 0
    );
  }

  /** Moves the cursor: every slot before `nextSlotAt` has been recorded as a run. */
  setNextSlot(id: string, nextSlotAt: number | null): void {
    this.db.prepare('UPDATE automations SET next_slot_at = ? WHERE id = ?').run(nextSlotAt, id);
  }

  /** Enabled automations whose next slot is at or before `now` (uses the partial index). */
  due(now: number): AutomationRow[] {
    return this.db
      .prepare(
        `SELECT * FROM automations WHERE enabled = 1 AND removed_at IS NULL
         AND next_slot_at IS NOT NULL AND next_slot_at <= ? ORDER BY next_slot_at`,
      )
      .all(now)
      .map(automationRows.read);
  }

  /** The earliest slot of any enabled automation: when the scheduler must wake next. */
  earliestNextSlot(): number | null {
    const r = this.db
      .prepare(
        `SELECT MIN(next_slot_at) AS at FROM automations
         WHERE enabled = 1 AND removed_at IS NULL AND next_slot_at IS NOT NULL`,
      )
      .get() as { at: number | null };
    return r.at;
  }
}
