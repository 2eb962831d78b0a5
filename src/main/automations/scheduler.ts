import { newId } from '../../shared/ids.js';
import type { AutomationRow } from '../store/automations-repo.js';
import type { RunRow } from '../store/runs-repo.js';
import type { AutomationTables } from '../store/store.js';
import { systemClock, type Clock } from './clock.js';
import {
  compileSchedule,
  formatSlot,
  MAX_SLOTS_PER_EXPANSION,
  parseScheduleText,
  type CompiledSchedule,
} from './schedule.js';
import { summarise } from './summary.js';

/** What an executor gets for one run. */
export interface RunJob {
  automation: AutomationRow;
  run: RunRow;
  /** Aborted on timeout, on a lost lease, and when the scheduler stops. */
  signal: AbortSignal;
  /** Records the agent session that does the work, as soon as it exists. */
  setSession(sessionId: string): void;
}

/** How a run ended, from the executor's side. */
export interface RunResult {
  status: 'succeeded' | 'failed';
  /** The session's final answer (summarised for the inbox). */
  finalText: string;
  error?: string;
  /**
   * What became of the run's changes to its review folders ("3 files changed in notes: review."),
   * said first in the inbox item: it is what the person may have to act on.
   */
  changes?: string;
}

/** Does the work of one run (the real one starts an agent session; see core/automation-runs.ts). */
export interface RunExecutor {
  execute(job: RunJob): Promise<RunResult>;
}

/** What the scheduler reports as it goes, for logs and desktop notifications. */
export type SchedulerEvent =
  | { type: 'run-started'; automation: AutomationRow; run: RunRow }
  | {
      type: 'run-finished';
      automation: AutomationRow;
      run: RunRow;
      inboxId: string | null;
      summary: string;
    }
  | { type: 'missed'; automation: AutomationRow; run: RunRow; inboxId: string }
  | { type: 'interrupted'; run: RunRow; inboxId: string; willRetry: boolean }
  | { type: 'clock-jump'; deltaMs: number }
  | { type: 'error'; message: string };

/** Knobs of the scheduler; every one has a default fit for the app and the daemon. */
export interface SchedulerOptions {
  /** The store's automations, runs and inbox (the Store itself). */
  store: AutomationTables;
  executor: RunExecutor;
  clock?: Clock;
  /** This process's name on leases (default: a fresh id). */
  owner?: string;
  /** Runs at once across every process on the database (default 1; the rest queue). */
  concurrency?: number;
  /** How long a claim lasts without renewal (default 60 s); renewed every quarter of it. */
  leaseMs?: number;
  /** A slot noticed at most this late still runs as on time (default 60 s); later is "missed". */
  graceMs?: number;
  /** The longest sleep, so a clock jump or another process's change is noticed (default 30 s). */
  maxSleepMs?: number;
  /** Wall clock and monotonic clock disagreeing by more than this is a clock jump (default 5 s). */
  jumpThresholdMs?: number;
  onEvent?: (e: SchedulerEvent) => void;
}

interface ActiveRun {
  run: RunRow;
  controller: AbortController;
  done: Promise<RunRow>;
}

const MISSED_WHY: Record<AutomationRow['missedPolicy'], string> = {
  skip: 'its missed-run policy is “skip”',
  once: 'its missed-run policy is “once”, which runs only the latest missed slot',
  all: '',
};

/**
 * The scheduler: sleeps until the next due slot (a timer, never polling; at most `maxSleepMs`),
 * records each slot as a run in a `BEGIN IMMEDIATE` transaction (so two processes on one database
 * record it once), applies the missed-run policy to slots that passed unseen, claims runs with a
 * lease it renews while they run, declares runs whose lease expired interrupted (retrying them
 * while attempts remain), and keeps at most `concurrency` runs going across processes.
 */
export class Scheduler {
  readonly owner: string;
  private readonly clock: Clock;
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly graceMs: number;
  private readonly maxSleepMs: number;
  private readonly jumpThresholdMs: number;
  private readonly active = new Map<string, ActiveRun>();
  private readonly compiled = new Map<string, CompiledSchedule>();
  private timer: unknown = null;
  private started = false;
  private stopped = false;
  private last: { wall: number; mono: number } | null = null;

  constructor(private readonly o: SchedulerOptions) {
    this.clock = o.clock ?? systemClock;
    this.owner = o.owner ?? newId('sched');
    this.concurrency = Math.max(1, o.concurrency ?? 1);
    this.leaseMs = o.leaseMs ?? 60_000;
    this.graceMs = o.graceMs ?? 60_000;
    this.maxSleepMs = o.maxSleepMs ?? 30_000;
    this.jumpThresholdMs = o.jumpThresholdMs ?? 5_000;
  }

  /** Starts scheduling: catches up on slots that passed while nothing ran, then sleeps. */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.tick();
  }

  /**
   * Looks again now: after a wake from sleep (Electron's powerMonitor `resume`), a change to the
   * automations, or another process's write to the database.
   */
  wake(): void {
    if (!this.started || this.stopped) return;
    this.tick();
  }

  /** Runs currently held by this process. */
  get activeRuns(): RunRow[] {
    return [...this.active.values()].map((a) => a.run);
  }

  private emit(e: SchedulerEvent): void {
    try {
      this.o.onEvent?.(e);
    } catch {
      // a listener's failure must not stop the schedule
    }
  }

  private tick(): void {
    if (this.stopped) return;
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    const now = this.clock.now();
    const mono = this.clock.monotonic();
    if (this.last) {
      const delta = now - this.last.wall - (mono - this.last.mono);
      if (Math.abs(delta) > this.jumpThresholdMs) this.emit({ type: 'clock-jump', deltaMs: delta });
    }
    this.last = { wall: now, mono };
    try {
      this.catchUp(now);
      this.fill();
    } catch (e) {
      this.emit({ type: 'error', message: (e as Error).message });
    }
    this.plan();
  }

  private schedule(a: AutomationRow): CompiledSchedule {
    const key = `${a.id}\n${a.rrule}`;
    let c = this.compiled.get(key);
    if (!c) {
      c = compileSchedule(parseScheduleText(a.rrule, { validate: false }));
      // Only automations that came due are compiled; keep the cache small all the same.
      if (this.compiled.size > 1000) this.compiled.clear();
      this.compiled.set(key, c);
    }
    return c;
  }

  /** Expires dead leases and records every slot that has come due, in one write transaction. */
  private catchUp(now: number): void {
    const events: SchedulerEvent[] = [];
    const store = this.o.store;
    store.immediate(() => {
      for (const run of store.runs.expireLeases(now)) {
        const a = store.automations.get(run.automationId);
        const willRetry = a !== undefined && run.attempt < a.maxAttempts && !a.removedAt;
        const inboxId = store.inbox.add(
          {
            runId: run.id,
            automationId: run.automationId,
            kind: 'interrupted',
            title: a?.name ?? run.automationId,
            summary:
              `The run for ${formatSlot(run.slotAt, a?.tzid ?? 'UTC')} was interrupted: the process running it stopped. ` +
              (willRetry
                ? `It will be tried again (attempt ${run.attempt + 1} of ${a.maxAttempts}).`
                : 'It will not be retried.'),
          },
          now,
        );
        events.push({ type: 'interrupted', run, inboxId, willRetry });
      }
      for (const a of store.automations.due(now)) this.recordSlots(a, now, events);
    });
    for (const e of events) this.emit(e);
  }

  private recordSlots(a: AutomationRow, now: number, events: SchedulerEvent[]): void {
    const store = this.o.store;
    let c: CompiledSchedule;
    try {
      c = this.schedule(a);
    } catch (e) {
      // A rule that no longer compiles (a zone removed from the system): stop, and say so.
      store.automations.setNextSlot(a.id, null);
      this.emit({
        type: 'error',
        message: `Automation ${a.name} (${a.id}) has a schedule that cannot be read: ${(e as Error).message}`,
      });
      return;
    }
    const slots = c.between(a.nextSlotAt!, now, MAX_SLOTS_PER_EXPANSION);
    const late = slots.filter((s) => now - s > this.graceMs);
    const onTime = slots.filter((s) => now - s <= this.graceMs);
    const runLate = new Set<number>(
      a.missedPolicy === 'all'
        ? late
        : a.missedPolicy === 'once' && onTime.length === 0 && late.length > 0
          ? [late.at(-1)!]
          : [],
    );
    for (const s of late) {
      if (runLate.has(s)) {
        store.runs.insert({ automationId: a.id, slotAt: s, status: 'scheduled', late: true }, now);
        continue;
      }
      const why =
        a.missedPolicy === 'once'
          ? onTime.length > 0
            ? 'a newer slot is due now'
            : 'a later missed slot runs instead'
          : MISSED_WHY[a.missedPolicy];
      const error = `Missed: Paddock was not running at ${formatSlot(s, a.tzid)} (asleep, off, or the clock jumped), and ${why}.`;
      const run = store.runs.insert(
        { automationId: a.id, slotAt: s, status: 'missed', late: true, error },
        now,
      );
      if (!run) continue;
      const inboxId = store.inbox.add(
        { runId: run.id, automationId: a.id, kind: 'missed', title: a.name, summary: error },
        now,
      );
      events.push({ type: 'missed', automation: a, run, inboxId });
    }
    for (const s of onTime)
      store.runs.insert({ automationId: a.id, slotAt: s, status: 'scheduled' }, now);
    const next =
      slots.length >= MAX_SLOTS_PER_EXPANSION ? c.next(slots.at(-1)!) : c.next(now, false);
    store.automations.setNextSlot(a.id, next);
  }

  /** Claims runs while this process and the database-wide limit allow. */
  private fill(): void {
    while (!this.stopped && this.active.size < this.concurrency) {
      const now = this.clock.now();
      const run = this.o.store.immediate(() =>
        this.o.store.runs.runningCount() < this.concurrency
          ? this.o.store.runs.claim(this.owner, now, this.leaseMs)
          : undefined,
      );
      if (!run) return;
      this.startRun(run);
    }
  }

  private plan(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    const store = this.o.store;
    const wakeAts = [store.automations.earliestNextSlot(), store.runs.earliestLeaseEnd()]
      .filter((x): x is number => x !== null)
      .map((x) => x + 1);
    const wakeAt = wakeAts.length ? Math.min(...wakeAts) : Infinity;
    const delay = Math.max(5, Math.min(wakeAt - now, this.maxSleepMs));
    this.timer = this.clock.setTimer(() => {
      this.timer = null;
      this.tick();
    }, delay);
  }

  private startRun(run: RunRow): ActiveRun {
    const store = this.o.store;
    const automation = store.automations.get(run.automationId)!;
    const controller = new AbortController();
    const renewEvery = Math.max(10, Math.floor(this.leaseMs / 4));
    let renewTimer: unknown = null;
    const renew = () => {
      renewTimer = this.clock.setTimer(() => {
        let held = false;
        try {
          held = store.runs.renewLease(run.id, this.owner, this.clock.now() + this.leaseMs);
        } catch (e) {
          // SQLITE_BUSY for longer than busy_timeout: keep the run, try again next time.
          this.emit({ type: 'error', message: `Lease renewal failed: ${(e as Error).message}` });
          held = true;
        }
        if (!held) controller.abort('lease-lost');
        else renew();
      }, renewEvery);
    };
    renew();
    const timeoutTimer = this.clock.setTimer(
      () => controller.abort('timeout'),
      automation.timeoutMs,
    );
    this.emit({ type: 'run-started', automation, run });

    const done = (async (): Promise<RunRow> => {
      let result: RunResult;
      try {
        result = await this.o.executor.execute({
          automation,
          run,
          signal: controller.signal,
          setSession: (id) => store.runs.setSession(run.id, id),
        });
      } catch (e) {
        result = { status: 'failed', finalText: '', error: (e as Error).message };
      }
      this.clock.clearTimer(renewTimer);
      this.clock.clearTimer(timeoutTimer);
      return this.finish(automation, run, controller.signal, result);
    })();
    const entry = { run, controller, done };
    this.active.set(run.id, entry);
    void done.finally(() => {
      this.active.delete(run.id);
      if (this.started && !this.stopped) this.tick();
    });
    return entry;
  }

  private finish(
    automation: AutomationRow,
    run: RunRow,
    signal: AbortSignal,
    result: RunResult,
  ): RunRow {
    const store = this.o.store;
    const reason = signal.aborted ? String(signal.reason) : null;
    const now = this.clock.now();
    const minutes = Math.round(automation.timeoutMs / 60_000);
    let status: 'succeeded' | 'failed' | 'interrupted' = result.status;
    let error = result.error ?? null;
    if (reason === 'timeout') {
      status = 'failed';
      error = `Stopped after the run timeout of ${minutes >= 1 ? `${minutes} min` : `${automation.timeoutMs} ms`}.`;
    } else if (reason === 'shutdown') {
      status = 'interrupted';
      error = `Attempt ${run.attempt} was interrupted: Paddock was stopping.`;
    }
    const answer = summarise(result.finalText);
    const outcome =
      status === 'succeeded'
        ? answer || 'Finished without a written answer.'
        : `${status === 'interrupted' ? 'Interrupted' : 'Failed'}: ${error ?? 'unknown error'}${answer ? ` — ${answer}` : ''}`;
    const summary = result.changes ? `${result.changes} ${outcome}` : outcome;
    let inboxId: string | null = null;
    if (reason !== 'lease-lost') {
      store.immediate(() => {
        if (store.runs.finish(run.id, this.owner, { status, error, summary: answer || null }, now))
          inboxId = store.inbox.add(
            {
              runId: run.id,
              automationId: automation.id,
              kind: status,
              title: automation.name,
              summary,
            },
            now,
          );
      });
    }
    const final = store.runs.get(run.id) ?? run;
    this.emit({ type: 'run-finished', automation, run: final, inboxId, summary });
    return final;
  }

  /**
   * Runs an automation now, in this process, whatever the schedule and the concurrency limit
   * (the person asked for it); resolves with the finished run.
   */
  async runNow(automationId: string): Promise<RunRow> {
    const store = this.o.store;
    let now = this.clock.now();
    const run = store.immediate(() => {
      let r: RunRow | undefined;
      while (
        !(r = store.runs.insert(
          { automationId, slotAt: now, status: 'scheduled', trigger: 'manual' },
          now,
        ))
      )
        now++;
      return store.runs.claim(this.owner, this.clock.now(), this.leaseMs, r.id);
    });
    if (!run) throw new Error(`Could not claim the run for ${automationId}.`);
    return this.startRun(run).done;
  }

  /**
   * Stops: no new runs; runs in progress are cancelled and recorded as interrupted (retried on the
   * next start while attempts remain). Resolves when every run has been recorded.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer !== null) this.clock.clearTimer(this.timer);
    this.timer = null;
    const pending = [...this.active.values()];
    for (const a of pending) a.controller.abort('shutdown');
    await Promise.allSettled(pending.map((a) => a.done));
  }
}
