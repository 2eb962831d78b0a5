import type { Database } from 'better-sqlite3';
import { newId } from '../../shared/ids.js';

/** What happens to slots that passed while nothing was running (asleep, off, clock jumped). */
export type MissedPolicy = 'skip' | 'once' | 'all';
/** A run's state; a run is one scheduled slot (or one manual "run now"). */
export type RunStatus =
  'scheduled' | 'running' | 'succeeded' | 'failed' | 'missed' | 'skipped' | 'interrupted';
/** Why a run exists: its slot came due, or the person asked for it now. */
export type RunTrigger = 'schedule' | 'manual';
/** Inbox states: new, opened, put away. */
export type InboxState = 'unread' | 'read' | 'archived';

/** One automation as the rest of the app sees it. */
export interface AutomationRow {
  id: string;
  name: string;
  prompt: string;
  /** Granted folders as `ABSOLUTE_PATH` or `ABSOLUTE_PATH:ro`. */
  folders: string[];
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
    >
  >;

/** One run: one slot of one automation. */
export interface RunRow {
  id: string;
  automationId: string;
  slotAt: number;
  status: RunStatus;
  trigger: RunTrigger;
  /** Started after its slot had passed, under the missed-run policy `once` or `all`. */
  late: boolean;
  attempt: number;
  sessionId: string | null;
  leaseOwner: string | null;
  leaseUntil: number | null;
  startedAt: number | null;
  finishedAt: number | null;
  error: string | null;
  summary: string | null;
  createdAt: number;
}

/** One inbox item: what became of one run. */
export interface InboxItemRow {
  id: string;
  runId: string;
  automationId: string | null;
  /** The run status this item reports (succeeded, failed, missed, interrupted, skipped). */
  kind: string;
  title: string;
  state: InboxState;
  summary: string;
  createdAt: number;
  readAt: number | null;
}

interface RawAutomation {
  id: string;
  name: string;
  prompt: string;
  folders: string;
  rrule: string;
  tzid: string;
  schedule_text: string;
  missed_policy: MissedPolicy;
  allowlist: string;
  prompt_allowlist: string;
  enabled: number;
  next_slot_at: number | null;
  timeout_ms: number;
  max_attempts: number;
  created_by_session: string | null;
  removed_at: number | null;
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
    tzid: r.tzid,
    scheduleText: r.schedule_text,
    missedPolicy: r.missed_policy,
    allowlist: JSON.parse(r.allowlist) as string[],
    promptAllowlist: JSON.parse(r.prompt_allowlist) as string[],
    enabled: r.enabled === 1,
    nextSlotAt: r.next_slot_at,
    timeoutMs: r.timeout_ms,
    maxAttempts: r.max_attempts,
    createdBySession: r.created_by_session,
    removedAt: r.removed_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

interface RawRun {
  id: string;
  automation_id: string;
  slot_at: number;
  status: RunStatus;
  trigger: RunTrigger;
  late: number;
  attempt: number;
  session_id: string | null;
  lease_owner: string | null;
  lease_until: number | null;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  summary: string | null;
  created_at: number;
}

function toRun(r: RawRun): RunRow {
  return {
    id: r.id,
    automationId: r.automation_id,
    slotAt: r.slot_at,
    status: r.status,
    trigger: r.trigger,
    late: r.late === 1,
    attempt: r.attempt,
    sessionId: r.session_id,
    leaseOwner: r.lease_owner,
    leaseUntil: r.lease_until,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    error: r.error,
    summary: r.summary,
    createdAt: r.created_at,
  };
}

interface RawInbox {
  id: string;
  run_id: string;
  automation_id: string | null;
  kind: string;
  title: string;
  state: InboxState;
  summary: string;
  created_at: number;
  read_at: number | null;
}

function toInbox(r: RawInbox): InboxItemRow {
  return {
    id: r.id,
    runId: r.run_id,
    automationId: r.automation_id,
    kind: r.kind,
    title: r.title,
    state: r.state,
    summary: r.summary,
    createdAt: r.created_at,
    readAt: r.read_at,
  };
}

/**
 * Automations, their runs (one per slot) and the inbox items that runs leave behind. Runs are
 * claimed with a lease inside `BEGIN IMMEDIATE` transactions, so two processes on one database
 * (the app and `paddock daemon`) never run the same slot.
 */
export class AutomationsRepo {
  constructor(private readonly db: Database) {}

  /**
   * Runs `fn` in a `BEGIN IMMEDIATE` transaction: the write lock is taken up front, so a
   * read-then-write (find due slots, record them) cannot interleave with another process.
   */
  immediate<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  /**
   * SQLite's `PRAGMA data_version`: changes only when another connection commits, so a watcher
   * can tell another process's write (a new automation) from this process's own.
   */
  dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  create(input: NewAutomation, now = Date.now()): AutomationRow {
    const id = newId('auto');
    this.db
      .prepare(
        `INSERT INTO automations (id, name, prompt, folders, rrule, tzid, schedule_text, missed_policy,
           allowlist, prompt_allowlist, enabled, next_slot_at, timeout_ms, max_attempts, created_by_session, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        id,
        input.name,
        input.prompt,
        JSON.stringify(input.folders),
        input.rrule,
        input.tzid,
        input.scheduleText,
        input.missedPolicy,
        JSON.stringify(input.allowlist),
        JSON.stringify(input.promptAllowlist ?? []),
        input.enabled === false ? 0 : 1,
        input.nextSlotAt ?? null,
        input.timeoutMs ?? 30 * 60_000,
        input.maxAttempts ?? 2,
        input.createdBySession ?? null,
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

  /** Automations not removed (or all of them), oldest first. */
  list(opts: { includeRemoved?: boolean } = {}): AutomationRow[] {
    const where = opts.includeRemoved ? '' : 'WHERE removed_at IS NULL';
    return (
      this.db
        .prepare(`SELECT * FROM automations ${where} ORDER BY created_at, id`)
        .all() as RawAutomation[]
    ).map(toAutomation);
  }

  /** Edits an automation's definition; a new schedule comes with its new cursor. */
  update(
    id: string,
    patch: Partial<
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
      >
    >,
    now = Date.now(),
  ): boolean {
    const cur = this.get(id);
    if (!cur || cur.removedAt) return false;
    const next = { ...cur, ...patch };
    return (
      this.db
        .prepare(
          `UPDATE automations SET name = ?, prompt = ?, folders = ?, rrule = ?, tzid = ?, schedule_text = ?,
             missed_policy = ?, allowlist = ?, next_slot_at = ?, updated_at = ?
           WHERE id = ? AND removed_at IS NULL`,
        )
        .run(
          next.name,
          next.prompt,
          JSON.stringify(next.folders),
          next.rrule,
          next.tzid,
          next.scheduleText,
          next.missedPolicy,
          JSON.stringify(next.allowlist),
          next.nextSlotAt,
          now,
          id,
        ).changes > 0
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
  dueAutomations(now: number): AutomationRow[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM automations WHERE enabled = 1 AND removed_at IS NULL
           AND next_slot_at IS NOT NULL AND next_slot_at <= ? ORDER BY next_slot_at`,
        )
        .all(now) as RawAutomation[]
    ).map(toAutomation);
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

  /** The earliest lease among running runs: when one may have to be declared interrupted. */
  earliestLeaseEnd(): number | null {
    const r = this.db
      .prepare(`SELECT MIN(lease_until) AS at FROM runs WHERE status = 'running'`)
      .get() as { at: number | null };
    return r.at;
  }

  /** Records a slot as a run; returns undefined when that slot was already recorded. */
  insertRun(
    input: {
      automationId: string;
      slotAt: number;
      status: RunStatus;
      trigger?: RunTrigger;
      late?: boolean;
      error?: string | null;
    },
    now = Date.now(),
  ): RunRow | undefined {
    const id = newId('run');
    const done = input.status === 'missed' || input.status === 'skipped';
    const changes = this.db
      .prepare(
        `INSERT INTO runs (id, automation_id, slot_at, status, trigger, late, error, finished_at, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(automation_id, slot_at) DO NOTHING`,
      )
      .run(
        id,
        input.automationId,
        input.slotAt,
        input.status,
        input.trigger ?? 'schedule',
        input.late ? 1 : 0,
        input.error ?? null,
        done ? now : null,
        now,
      ).changes;
    return changes > 0 ? this.getRun(id) : undefined;
  }

  getRun(id: string): RunRow | undefined {
    const r = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RawRun | undefined;
    return r && toRun(r);
  }

  runForSlot(automationId: string, slotAt: number): RunRow | undefined {
    const r = this.db
      .prepare('SELECT * FROM runs WHERE automation_id = ? AND slot_at = ?')
      .get(automationId, slotAt) as RawRun | undefined;
    return r && toRun(r);
  }

  /** Runs, newest slot first; of one automation when `automationId` is given. */
  runs(automationId?: string, limit = 1000): RunRow[] {
    const rows = (
      automationId
        ? this.db
            .prepare('SELECT * FROM runs WHERE automation_id = ? ORDER BY slot_at DESC LIMIT ?')
            .all(automationId, limit)
        : this.db.prepare('SELECT * FROM runs ORDER BY slot_at DESC LIMIT ?').all(limit)
    ) as RawRun[];
    return rows.map(toRun);
  }

  /**
   * Declares runs whose lease ran out as interrupted (the process running them died or hung).
   * Call inside {@link immediate}. Returns them, so the caller can record inbox items.
   */
  expireLeases(now: number): RunRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM runs WHERE status = 'running' AND lease_until IS NOT NULL AND lease_until < ?`,
      )
      .all(now) as RawRun[];
    const mark = this.db.prepare(
      `UPDATE runs SET status = 'interrupted', finished_at = ?, lease_owner = NULL, lease_until = NULL,
         error = ? WHERE id = ? AND status = 'running'`,
    );
    return rows.map((r) => {
      const error = `Attempt ${r.attempt} was interrupted: the process running it (${r.lease_owner}) stopped renewing its lease.`;
      mark.run(now, error, r.id);
      return { ...toRun(r), status: 'interrupted' as const, finishedAt: now, error };
    });
  }

  /** Runs holding a live lease, across every process on this database. */
  runningCount(): number {
    return (
      this.db.prepare(`SELECT COUNT(*) AS n FROM runs WHERE status = 'running'`).get() as {
        n: number;
      }
    ).n;
  }

  /**
   * Claims the oldest run that may start: a scheduled one, or an interrupted one with attempts
   * left, of an automation still enabled (a manual run goes even when paused). Call inside
   * {@link immediate}. With `runId`, claims that run only.
   */
  claim(owner: string, now: number, leaseMs: number, runId?: string): RunRow | undefined {
    const r = this.db
      .prepare(
        `SELECT r.* FROM runs r JOIN automations a ON a.id = r.automation_id
         WHERE (r.status = 'scheduled' OR (r.status = 'interrupted' AND r.attempt < a.max_attempts))
           AND ((a.enabled = 1 AND a.removed_at IS NULL) OR r.trigger = 'manual')
           AND (? IS NULL OR r.id = ?)
         ORDER BY r.slot_at, r.id LIMIT 1`,
      )
      .get(runId ?? null, runId ?? null) as RawRun | undefined;
    if (!r) return undefined;
    this.db
      .prepare(
        `UPDATE runs SET status = 'running', attempt = attempt + 1, lease_owner = ?, lease_until = ?,
           started_at = ?, finished_at = NULL WHERE id = ?`,
      )
      .run(owner, now + leaseMs, now, r.id);
    return this.getRun(r.id);
  }

  /** Extends a lease; false when the lease was lost (the run was declared interrupted). */
  renewLease(runId: string, owner: string, until: number): boolean {
    return (
      this.db
        .prepare(
          `UPDATE runs SET lease_until = ? WHERE id = ? AND lease_owner = ? AND status = 'running'`,
        )
        .run(until, runId, owner).changes > 0
    );
  }

  setRunSession(runId: string, sessionId: string): void {
    this.db.prepare('UPDATE runs SET session_id = ? WHERE id = ?').run(sessionId, runId);
  }

  /** Ends a run this owner holds; false when its lease was lost meanwhile. */
  finishRun(
    runId: string,
    owner: string,
    outcome: {
      status: 'succeeded' | 'failed' | 'interrupted';
      error?: string | null;
      summary?: string | null;
    },
    now = Date.now(),
  ): boolean {
    return (
      this.db
        .prepare(
          `UPDATE runs SET status = ?, error = ?, summary = ?, finished_at = ?, lease_owner = NULL,
             lease_until = NULL WHERE id = ? AND lease_owner = ? AND status = 'running'`,
        )
        .run(outcome.status, outcome.error ?? null, outcome.summary ?? null, now, runId, owner)
        .changes > 0
    );
  }

  /** Marks runs still waiting for a worker as skipped (the automation was paused or removed). */
  skipQueued(automationId: string, reason: string, now = Date.now()): RunRow[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM runs WHERE automation_id = ? AND trigger = 'schedule'
         AND status = 'scheduled'`,
      )
      .all(automationId) as RawRun[];
    const mark = this.db.prepare(
      `UPDATE runs SET status = 'skipped', error = ?, finished_at = ? WHERE id = ?`,
    );
    for (const r of rows) mark.run(reason, now, r.id);
    return rows.map((r) => ({ ...toRun(r), status: 'skipped' as const, error: reason }));
  }

  addInboxItem(
    input: { runId: string; automationId: string; kind: string; title: string; summary: string },
    now = Date.now(),
  ): string {
    const id = newId('inbox');
    this.db
      .prepare(
        `INSERT INTO inbox_items (id, run_id, automation_id, kind, title, state, summary, created_at)
         VALUES (?, ?, ?, ?, ?, 'unread', ?, ?)`,
      )
      .run(id, input.runId, input.automationId, input.kind, input.title, input.summary, now);
    return id;
  }

  /** Inbox items, newest first; archived ones only when asked. */
  inbox(
    opts: { state?: InboxState; includeArchived?: boolean; limit?: number } = {},
  ): InboxItemRow[] {
    const rows = (
      opts.state
        ? this.db
            .prepare(
              'SELECT * FROM inbox_items WHERE state = ? ORDER BY created_at DESC, rowid DESC LIMIT ?',
            )
            .all(opts.state, opts.limit ?? 1000)
        : this.db
            .prepare(
              `SELECT * FROM inbox_items ${opts.includeArchived ? '' : "WHERE state != 'archived'"}
               ORDER BY created_at DESC, rowid DESC LIMIT ?`,
            )
            .all(opts.limit ?? 1000)
    ) as RawInbox[];
    return rows.map(toInbox);
  }

  inboxItem(id: string): InboxItemRow | undefined {
    const r = this.db.prepare('SELECT * FROM inbox_items WHERE id = ?').get(id) as
      RawInbox | undefined;
    return r && toInbox(r);
  }

  /** Items not opened yet: the number on the sidebar's badge. */
  unreadCount(): number {
    return (
      this.db.prepare(`SELECT COUNT(*) AS n FROM inbox_items WHERE state = 'unread'`).get() as {
        n: number;
      }
    ).n;
  }

  setInboxState(id: string, state: InboxState, now = Date.now()): boolean {
    return (
      this.db
        .prepare(
          `UPDATE inbox_items SET state = ?, read_at = CASE WHEN ? = 'unread' THEN NULL ELSE COALESCE(read_at, ?) END
           WHERE id = ?`,
        )
        .run(state, state, now, id).changes > 0
    );
  }
}
