import type { AutomationPlan } from '../../shared/app-contract.js';
import { SPEND_LIMIT_RULE, type ApplyChanges } from '../../shared/automations-contract.js';
import { PaddockError } from '../../shared/result.js';
import type {
  AutomationPatch,
  AutomationRow,
  FolderShare,
  MissedPolicy,
  NewAutomation,
} from '../store/automations-repo.js';
import type { RunRow } from '../store/runs-repo.js';
import type { AutomationTables } from '../store/store.js';
import { secretNameSchema } from '../../shared/secrets-contract.js';
import { checkedAllowlistEntry } from '../vm/egress/allowlist.js';
import { resolveGrants } from '../vm/grants.js';
import { parseSchedulePhrase } from './phrase.js';
import {
  compileSchedule,
  formatSchedule,
  formatSlot,
  parseScheduleText,
  upcomingSlots,
} from './schedule.js';

/** What a person (CLI, UI) or the agent's `schedule_automation` tool gives to create one. */
export interface AutomationInput {
  name: string;
  prompt: string;
  /** A phrase ("every weekday at 9:00") or iCalendar text (DTSTART;TZID=… RRULE:…). */
  schedule: string;
  /**
   * Folders as the person chose them (a path may still start with `~/`); resolved and checked
   * now, stored resolved, and judged again at each run. A read-write folder without `review` is
   * staged for review, or, when editing, keeps the mode it had.
   */
  folders?: FolderInput[];
  /** Hosts a person configured for it. */
  allowHosts?: string[];
  /** Hosts from answers to a prompt (never open internal addresses). */
  promptAllowHosts?: string[];
  missed?: MissedPolicy;
  /** The zone the schedule's times are in (default: this machine's). */
  tz?: string;
  timeoutMs?: number;
  maxAttempts?: number;
  /** Stop a run once it has cost this many dollars; null or unset: no limit. */
  spendLimitUsd?: number | null;
  /** What becomes of a run's staged changes (default: they wait for review). */
  applyChanges?: ApplyChanges;
  /** Secrets its runs may use, by name (checked against the store by the core). */
  secrets?: string[];
  createdBySession?: string | null;
}

/** A folder as asked for: its path, read-only or not, and for read-write its mode if chosen. */
export interface FolderInput {
  hostPath: string;
  readOnly: boolean;
  review?: boolean | undefined;
}

const APPLY: readonly ApplyChanges[] = ['review', 'auto'];

/** Secret names in the contract's form, each once. */
function checkedSecretNames(names: string[]): string[] {
  for (const n of names) {
    const r = secretNameSchema.safeParse(n);
    if (!r.success)
      throw new PaddockError('BAD_SECRET', r.error.issues[0]?.message ?? 'Bad secret name.');
  }
  return [...new Set(names)];
}

const POLICIES: readonly MissedPolicy[] = ['skip', 'once', 'all'];

/**
 * A spend limit as kept: a positive, finite number of dollars, or null for none; anything else is
 * BAD_SPEND_LIMIT with a sentence saying what to give.
 */
export function checkedSpendLimit(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    const shown = typeof value === 'string' ? `“${value}”` : String(value);
    throw new PaddockError('BAD_SPEND_LIMIT', `${SPEND_LIMIT_RULE} ${shown} is not one.`);
  }
  return value;
}

/**
 * Folders as path and mode only, as people and the page see them (a share's name is the VM's):
 * `review` says, for a read-write folder, whether its writes wait for review.
 */
export function plainFolders(
  folders: readonly FolderInput[],
): { hostPath: string; readOnly: boolean; review: boolean }[] {
  return folders.map(({ hostPath, readOnly, review }) => ({
    hostPath,
    readOnly,
    review: !readOnly && review === true,
  }));
}

/**
 * The folders to keep: resolved and judged by resolveGrants, stored as the shares it makes, each
 * read-write one with its mode said explicitly. A folder asked for without a mode keeps the one it
 * had in `had` (an edit), else is staged for review, the default for new grants.
 */
function grantFolders(
  folders: FolderInput[],
  dataDir: string,
  had: readonly FolderShare[] = [],
): FolderShare[] {
  // SECURITY: only the resolved path, name and mode are kept; the run judges them again.
  return resolveGrants(
    folders.map((f) => ({ path: f.hostPath, readOnly: f.readOnly })),
    { dataDir },
  ).map(({ hostPath, name, readOnly }, i) => {
    if (readOnly) return { hostPath, name, readOnly };
    const before = had.find((h) => h.hostPath === hostPath && !h.readOnly);
    const review = folders[i]!.review ?? (before ? before.review === true : true);
    return { hostPath, name, readOnly, review };
  });
}

/** The apply setting as kept, or BAD_OPTION with a sentence saying what to give. */
function checkedApply(value: string): ApplyChanges {
  if (!APPLY.includes(value as ApplyChanges))
    throw new PaddockError('BAD_OPTION', `--apply-changes must be review or auto, not ${value}.`);
  return value as ApplyChanges;
}

/**
 * Creating, pausing, resuming and removing automations with their rules checked in one place, so
 * the CLI, the app and the agent's tool agree. Each change moves the automation's cursor so that
 * the scheduler (in whichever process) sees it on its next look.
 */
export class AutomationService {
  constructor(
    private readonly store: AutomationTables,
    private readonly opts: { dataDir: string; now?: () => number; onChange?: () => void },
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Checks and creates an automation; its first slot is the schedule's first time from now. */
  create(input: AutomationInput): AutomationRow {
    const now = this.now();
    const row = this.store.automations.create(this.check(input, now), now);
    this.opts.onChange?.();
    return row;
  }

  /**
   * What {@link create} would make of `input`, without making it: the schedule, its first run,
   * the resolved folders and the hosts, for the person to agree to. Same checks, same errors.
   */
  plan(input: AutomationInput): AutomationPlan {
    const row = this.check(input, this.now());
    return {
      name: row.name,
      prompt: row.prompt,
      schedule: row.scheduleText,
      timeZone: row.tzid,
      firstRun:
        row.nextSlotAt === null || row.nextSlotAt === undefined
          ? null
          : new Date(row.nextSlotAt).toLocaleString('en-GB', {
              timeZone: row.tzid,
              dateStyle: 'medium',
              timeStyle: 'short',
            }),
      folders: plainFolders(row.folders),
      hosts: [...new Set([...row.allowlist, ...(row.promptAllowlist ?? [])])],
    };
  }

  private check(input: AutomationInput, now: number): NewAutomation {
    const name = input.name.trim();
    if (!name) throw new PaddockError('BAD_AUTOMATION', 'Give the automation a name.');
    if (!input.prompt.trim())
      throw new PaddockError('BAD_AUTOMATION', 'Say what the automation should do (its prompt).');
    const missed = input.missed ?? 'once';
    if (!POLICIES.includes(missed))
      throw new PaddockError('BAD_OPTION', `--missed must be skip, once or all, not ${missed}.`);
    const schedule = parseSchedulePhrase(input.schedule, {
      now,
      ...(input.tz ? { tz: input.tz } : {}),
    });
    const folders = grantFolders(input.folders ?? [], this.opts.dataDir);
    const allowlist = input.allowHosts ?? [];
    const promptAllowlist = (input.promptAllowHosts ?? []).filter((h) => !allowlist.includes(h));
    for (const h of allowlist) checkedAllowlistEntry(h, 'configured');
    for (const h of promptAllowlist) checkedAllowlistEntry(h, 'prompt');
    const timeoutMs = input.timeoutMs ?? 30 * 60_000;
    if (!(timeoutMs > 0))
      throw new PaddockError('BAD_OPTION', 'The run timeout must be more than zero.');
    const first = compileSchedule(schedule).next(now, true);
    if (first === null)
      throw new PaddockError(
        'BAD_SCHEDULE',
        `The schedule “${input.schedule}” has no time left after ${formatSlot(now, schedule.tzid)}.`,
      );
    return {
      name,
      prompt: input.prompt,
      folders,
      rrule: formatSchedule(schedule),
      tzid: schedule.tzid,
      scheduleText: input.schedule.trim(),
      missedPolicy: missed,
      allowlist,
      promptAllowlist,
      nextSlotAt: first,
      timeoutMs,
      maxAttempts: Math.max(1, input.maxAttempts ?? 2),
      spendLimitUsd: checkedSpendLimit(input.spendLimitUsd),
      applyChanges: checkedApply(input.applyChanges ?? 'review'),
      secrets: checkedSecretNames(input.secrets ?? []),
      createdBySession: input.createdBySession ?? null,
    };
  }

  /**
   * Edits an automation with the same checks as {@link create}. A changed schedule starts from
   * now: its slots before the edit are neither run nor recorded as missed.
   */
  update(id: string, patch: Partial<Omit<AutomationInput, 'createdBySession'>>): AutomationRow {
    const cur = this.require(id);
    const now = this.now();
    const change: AutomationPatch = {};
    if (patch.name !== undefined) {
      if (!patch.name.trim())
        throw new PaddockError('BAD_AUTOMATION', 'Give the automation a name.');
      change.name = patch.name.trim();
    }
    if (patch.prompt !== undefined) {
      if (!patch.prompt.trim())
        throw new PaddockError('BAD_AUTOMATION', 'Say what the automation should do (its prompt).');
      change.prompt = patch.prompt;
    }
    if (patch.missed !== undefined) {
      if (!POLICIES.includes(patch.missed))
        throw new PaddockError(
          'BAD_OPTION',
          `--missed must be skip, once or all, not ${patch.missed}.`,
        );
      change.missedPolicy = patch.missed;
    }
    if (patch.spendLimitUsd !== undefined)
      change.spendLimitUsd = checkedSpendLimit(patch.spendLimitUsd);
    if (patch.folders !== undefined)
      change.folders = grantFolders(patch.folders, this.opts.dataDir, cur.folders);
    if (patch.applyChanges !== undefined) change.applyChanges = checkedApply(patch.applyChanges);
    if (patch.secrets !== undefined) change.secrets = checkedSecretNames(patch.secrets);
    if (patch.allowHosts !== undefined) {
      for (const h of patch.allowHosts) checkedAllowlistEntry(h, 'configured');
      change.allowlist = patch.allowHosts;
    }
    const tzChanged = patch.tz !== undefined && patch.tz !== cur.tzid;
    if (
      (patch.schedule !== undefined && patch.schedule.trim() !== cur.scheduleText) ||
      (tzChanged && patch.schedule !== undefined)
    ) {
      const text = patch.schedule!;
      const schedule = parseSchedulePhrase(text, { now, tz: patch.tz ?? cur.tzid });
      const first = compileSchedule(schedule).next(now, true);
      if (first === null)
        throw new PaddockError(
          'BAD_SCHEDULE',
          `The schedule “${text}” has no time left after ${formatSlot(now, schedule.tzid)}.`,
        );
      change.rrule = formatSchedule(schedule);
      change.tzid = schedule.tzid;
      change.scheduleText = text.trim();
      change.nextSlotAt = cur.enabled ? first : cur.nextSlotAt;
    }
    this.store.immediate(() => this.store.automations.update(id, change, now));
    this.opts.onChange?.();
    return this.store.automations.get(id)!;
  }

  /** The automation, or a NOT_FOUND error that says how to find ids. */
  require(id: string): AutomationRow {
    const a = this.store.automations.get(id);
    if (!a || a.removedAt)
      throw new PaddockError(
        'NOT_FOUND',
        `There is no automation ${id}; \`paddock automations list\` shows their ids.`,
      );
    return a;
  }

  /** Stops scheduling; runs queued for it are recorded as skipped, with an inbox item each. */
  pause(id: string): AutomationRow {
    this.require(id);
    const now = this.now();
    this.store.immediate(() => {
      this.store.automations.setEnabled(id, false, null, now);
      this.skipQueued(id, 'Skipped: the automation was paused before this run started.', now);
    });
    this.opts.onChange?.();
    return this.store.automations.get(id)!;
  }

  /** Schedules again from now on; slots while paused were the person's choice, not "missed". */
  resume(id: string): AutomationRow {
    const a = this.require(id);
    const now = this.now();
    const next = compileSchedule(parseScheduleText(a.rrule, { validate: false })).next(now, true);
    this.store.immediate(() => {
      this.store.automations.setEnabled(id, true, null, now);
      this.store.automations.setNextSlot(id, next);
    });
    this.opts.onChange?.();
    return this.store.automations.get(id)!;
  }

  /** Removes from the schedule; its runs and inbox items stay. */
  remove(id: string): void {
    this.require(id);
    const now = this.now();
    this.store.immediate(() => {
      this.skipQueued(id, 'Skipped: the automation was removed before this run started.', now);
      this.store.automations.remove(id, now);
    });
    this.opts.onChange?.();
  }

  private skipQueued(id: string, reason: string, now: number): RunRow[] {
    const a = this.store.automations.get(id)!;
    const skipped = this.store.runs.skipQueued(id, reason, now);
    for (const r of skipped)
      this.store.inbox.add(
        { runId: r.id, automationId: id, kind: 'skipped', title: a.name, summary: reason },
        now,
      );
    return skipped;
  }

  /** The next `count` slots from `from` (default now), as epoch milliseconds. */
  nextSlots(id: string, count: number, from = this.now()): number[] {
    const a = this.require(id);
    return upcomingSlots(
      compileSchedule(parseScheduleText(a.rrule, { validate: false })),
      from,
      count,
    );
  }
}

/** The sentence the agent gets back after scheduling: what, when next, and how to undo. */
export function describeCreated(a: {
  id: string;
  name: string;
  scheduleText: string;
  nextSlotAt: number | null;
  tzid: string;
}): string {
  const next =
    a.nextSlotAt === null
      ? 'it has no run left'
      : `its first run is at ${new Date(a.nextSlotAt).toLocaleString('en-GB', { timeZone: a.tzid, dateStyle: 'medium', timeStyle: 'short' })} (${a.tzid})`;
  return `Scheduled “${a.name}” (${a.id}) ${a.scheduleText}; ${next}. The person can pause or remove it in Automations (paddock automations pause|remove ${a.id}).`;
}
