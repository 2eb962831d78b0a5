import fs from 'node:fs';
import type { AgentEvent } from '../../shared/agent-events.js';
import type {
  ApplyChanges,
  Automation,
  AutomationRun,
  InboxItem,
} from '../../shared/automations-contract.js';
import { PaddockError } from '../../shared/result.js';
import type { AutomationScheduler, ScheduleRequest } from '../agent/tools/types.js';
import type { Clock } from '../automations/clock.js';
import { parseSchedulePhrase } from '../automations/phrase.js';
import { compileSchedule, upcomingSlots } from '../automations/schedule.js';
import { Scheduler, type SchedulerEvent } from '../automations/scheduler.js';
import {
  AutomationService,
  describeCreated,
  plainFolders,
  type FolderInput,
} from '../automations/service.js';
import type { AutomationRow } from '../store/automations-repo.js';
import type { InboxItemRow } from '../store/inbox-repo.js';
import { DB_FILE } from '../store/open.js';
import type { RunRow } from '../store/runs-repo.js';
import type { UsageTotals } from '../store/sessions-repo.js';
import type { Store } from '../store/store.js';
import { SessionRunExecutor, type SessionRunDeps } from './automation-runs.js';
import type { ChangeService } from './changes/service.js';
import type { EventBus } from './events.js';
import type { SessionFactory } from './sessions.js';

/** Scheduler knobs a host or a test may set (a fake clock, short leases). */
export interface AppSchedulerOptions {
  clock?: Clock;
  leaseMs?: number;
  graceMs?: number;
  maxSleepMs?: number;
  concurrency?: number;
  /** How often to look for another process's writes (the daemon, the CLI); default 2 s. */
  watchMs?: number;
  /** Every scheduler event as it happens (`paddock daemon` logs them). */
  onEvent?: (e: SchedulerEvent) => void;
}

/** What the app's automations need from the rest of the core. */
export interface AppAutomationsDeps {
  store: Store;
  events: EventBus;
  dataDir: string;
  /** Every run is a session made by the one session factory. */
  sessions: SessionFactory;
  scheduler?: AppSchedulerOptions;
  /** Live agent events of a run's session, so an open task view follows it. */
  onAgentEvent?: (sessionId: string, e: AgentEvent) => void;
  /** A run's session started or ended: the task list shows it. */
  onSessionChanged?: (sessionId: string) => void;
  /** Where a run's review folders are staged as it ends. */
  changes: ChangeService;
  /** Where a run's staged changes are read from (default: its VM). */
  stagedSource?: SessionRunDeps['stagedSource'];
}

/**
 * A run as the contract gives it: the row without its lease (the scheduler's affair), with its
 * session's tokens and cost.
 */
function runOut(
  { leaseOwner: _owner, leaseUntil: _until, createdAt: _at, ...run }: RunRow,
  usage: UsageTotals | undefined,
): AutomationRun {
  return { ...run, usage: usage ?? null };
}

/**
 * The app's automations: one scheduler per app process (leases keep it and `paddock daemon` from
 * running a slot twice), the service that checks every change, the contract's view of both, and
 * the events that keep every open page current — including after another process wrote the
 * database (noticed through SQLite's data_version).
 */
export class AppAutomations {
  readonly scheduler: Scheduler;
  readonly service: AutomationService;
  private watcher: ReturnType<typeof setInterval> | null = null;
  private fileWatch: fs.FSWatcher | null = null;
  private pendingCheck: ReturnType<typeof setTimeout> | null = null;
  private seenVersion: number;
  private disposed = false;

  constructor(private readonly d: AppAutomationsDeps) {
    const clock = d.scheduler?.clock;
    this.service = new AutomationService(d.store, {
      dataDir: d.dataDir,
      ...(clock ? { now: () => clock.now() } : {}),
      onChange: () => {
        this.scheduler.wake();
        this.inboxChanged();
      },
    });
    const o = d.scheduler ?? {};
    this.scheduler = new Scheduler({
      store: d.store,
      executor: new SessionRunExecutor(d),
      ...(o.clock ? { clock: o.clock } : {}),
      ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}),
      ...(o.graceMs ? { graceMs: o.graceMs } : {}),
      ...(o.maxSleepMs ? { maxSleepMs: o.maxSleepMs } : {}),
      ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      onEvent: (e) => this.onSchedulerEvent(e),
    });
    this.seenVersion = d.store.dataVersion();
  }

  /** Starts the scheduler and the watch for other processes' writes. */
  start(): void {
    this.scheduler.start();
    this.watcher = setInterval(() => this.checkOtherWriters(), this.d.scheduler?.watchMs ?? 2000);
    this.watcher.unref();
    // Another process writing the database (the app, `paddock automations add`) wakes the
    // scheduler at once; the interval above stays as the fallback where watching is not possible.
    try {
      this.fileWatch = fs.watch(this.d.dataDir, (_ev, file) => {
        if (!file || !String(file).startsWith(DB_FILE) || this.pendingCheck) return;
        this.pendingCheck = setTimeout(() => {
          this.pendingCheck = null;
          this.checkOtherWriters();
        }, 50);
      });
      this.fileWatch.unref();
    } catch {
      this.fileWatch = null;
    }
  }

  private stopWatching(): void {
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = null;
    this.fileWatch?.close();
    this.fileWatch = null;
    if (this.pendingCheck) clearTimeout(this.pendingCheck);
    this.pendingCheck = null;
  }

  private checkOtherWriters(): void {
    if (this.disposed) return;
    const v = this.d.store.dataVersion();
    if (v === this.seenVersion) return;
    this.seenVersion = v;
    this.scheduler.wake();
    this.d.events.emit('automations:changed', { automationId: null });
    this.inboxChanged();
  }

  private onSchedulerEvent(e: SchedulerEvent): void {
    this.d.scheduler?.onEvent?.(e);
    if (this.disposed) return;
    switch (e.type) {
      case 'run-started':
      case 'run-finished':
      case 'missed':
      case 'interrupted': {
        const run = this.d.store.runs.get(e.run.id) ?? e.run;
        this.d.events.emit('automations:run-changed', this.runView(run));
        this.d.events.emit('automations:changed', { automationId: run.automationId });
        if (e.type !== 'run-started') this.inboxChanged();
        break;
      }
      case 'error':
        if (!this.d.scheduler?.onEvent) console.error(`[paddock] scheduler: ${e.message}`);
        break;
      case 'clock-jump':
        break;
    }
  }

  private inboxChanged(): void {
    if (!this.disposed)
      this.d.events.emit('inbox:changed', { unread: this.d.store.inbox.unreadCount() });
  }

  private changed(id: string | null): void {
    this.d.events.emit('automations:changed', { automationId: id });
  }

  /** Runs as the contract gives them, each with its session's usage (one query for all). */
  private runViews(runs: RunRow[]): AutomationRun[] {
    const usage = this.d.store.runs.usageOf(runs.filter((r) => r.sessionId).map((r) => r.id));
    return runs.map((r) => runOut(r, usage.get(r.id)));
  }

  private runView(run: RunRow): AutomationRun {
    return this.runViews([run])[0]!;
  }

  /** One automation as the page shows it. */
  view(a: AutomationRow): Automation {
    const [last] = this.d.store.runs.list(a.id, 1);
    const active = this.scheduler.activeRuns.some((r) => r.automationId === a.id);
    return {
      id: a.id,
      name: a.name,
      prompt: a.prompt,
      scheduleText: a.scheduleText,
      rrule: a.rrule,
      tzid: a.tzid,
      folders: plainFolders(a.folders),
      allowlist: a.allowlist,
      missedPolicy: a.missedPolicy,
      spendLimitUsd: a.spendLimitUsd,
      applyChanges: a.applyChanges,
      secrets: a.secrets,
      usage: this.d.store.runs.automationUsage(a.id),
      enabled: a.enabled,
      nextRunAt: a.enabled ? a.nextSlotAt : null,
      lastRun: last ? this.runView(last) : null,
      running: active || last?.status === 'running',
      createdBySession: a.createdBySession,
      createdAt: a.createdAt,
    };
  }

  private item(i: InboxItemRow): InboxItem {
    const run = this.d.store.runs.get(i.runId);
    return {
      ...i,
      sessionId: run?.sessionId ?? null,
      slotAt: run?.slotAt ?? null,
      reviewWaiting: run?.sessionId ? this.d.store.changes.waitingFiles(run.sessionId) : 0,
    };
  }

  list(): Automation[] {
    return this.d.store.automations.list().map((a) => this.view(a));
  }

  create(req: {
    name: string;
    prompt: string;
    schedule: string;
    tz?: string | undefined;
    folders: { id: string; readOnly: boolean; review?: boolean | undefined }[];
    allowlist?: string[] | undefined;
    missed?: 'skip' | 'once' | 'all' | undefined;
    spendLimitUsd?: number | null | undefined;
    applyChanges?: ApplyChanges | undefined;
    secrets?: string[] | undefined;
  }): Automation {
    if (req.secrets?.length) this.d.sessions.checkSecrets(req.secrets);
    const a = this.service.create({
      name: req.name,
      prompt: req.prompt,
      schedule: req.schedule,
      folders: this.d.store.grants.folders(req.folders),
      allowHosts: req.allowlist ?? [],
      ...(req.tz ? { tz: req.tz } : {}),
      ...(req.missed ? { missed: req.missed } : {}),
      ...(req.spendLimitUsd !== undefined ? { spendLimitUsd: req.spendLimitUsd } : {}),
      ...(req.applyChanges !== undefined ? { applyChanges: req.applyChanges } : {}),
      ...(req.secrets !== undefined ? { secrets: req.secrets } : {}),
    });
    this.changed(a.id);
    return this.view(a);
  }

  update(req: {
    id: string;
    name?: string | undefined;
    prompt?: string | undefined;
    schedule?: string | undefined;
    tz?: string | undefined;
    folders?: { id: string; readOnly: boolean; review?: boolean | undefined }[] | undefined;
    keepFolders?:
      { hostPath: string; readOnly: boolean; review?: boolean | undefined }[] | undefined;
    allowlist?: string[] | undefined;
    missed?: 'skip' | 'once' | 'all' | undefined;
    spendLimitUsd?: number | null | undefined;
    applyChanges?: ApplyChanges | undefined;
    secrets?: string[] | undefined;
  }): Automation {
    const cur = this.service.require(req.id);
    if (req.secrets?.length) this.d.sessions.checkSecrets(req.secrets);
    let folders: FolderInput[] | undefined;
    if (req.folders !== undefined || req.keepFolders !== undefined) {
      const had = new Set(cur.folders.map((f) => f.hostPath));
      // SECURITY: the page may keep a folder the automation had, never name a new path itself.
      const kept = req.keepFolders ?? [];
      if (kept.some((f) => !had.has(f.hostPath)))
        throw new PaddockError('GRANT_MISSING', 'That folder is not one of this automation’s.');
      folders = [...kept, ...this.d.store.grants.folders(req.folders ?? [])];
    }
    const a = this.service.update(req.id, {
      ...(req.name !== undefined ? { name: req.name } : {}),
      ...(req.prompt !== undefined ? { prompt: req.prompt } : {}),
      ...(req.schedule !== undefined ? { schedule: req.schedule } : {}),
      ...(req.tz !== undefined ? { tz: req.tz } : {}),
      ...(folders !== undefined ? { folders } : {}),
      ...(req.allowlist !== undefined ? { allowHosts: req.allowlist } : {}),
      ...(req.missed !== undefined ? { missed: req.missed } : {}),
      ...(req.spendLimitUsd !== undefined ? { spendLimitUsd: req.spendLimitUsd } : {}),
      ...(req.applyChanges !== undefined ? { applyChanges: req.applyChanges } : {}),
      ...(req.secrets !== undefined ? { secrets: req.secrets } : {}),
    });
    this.changed(a.id);
    return this.view(a);
  }

  /** The next 5 slots of a schedule being typed, or what is wrong with it in one sentence. */
  preview(
    schedule: string,
    tz?: string,
  ): { problem: string | null; tzid: string | null; times: number[] } {
    if (!schedule.trim())
      return {
        problem: 'Say when it should run, e.g. “every weekday at 9:00”.',
        tzid: null,
        times: [],
      };
    const now = this.d.scheduler?.clock?.now() ?? Date.now();
    try {
      const s = parseSchedulePhrase(schedule, { now, ...(tz ? { tz } : {}) });
      const times = upcomingSlots(compileSchedule(s), now, 5);
      return {
        problem: times.length ? null : 'This schedule has no time left in the future.',
        tzid: s.tzid,
        times,
      };
    } catch (e) {
      return { problem: (e as Error).message, tzid: null, times: [] };
    }
  }

  pause(id: string): Automation {
    const a = this.service.pause(id);
    this.changed(id);
    return this.view(a);
  }

  resume(id: string): Automation {
    const a = this.service.resume(id);
    this.changed(id);
    return this.view(a);
  }

  remove(id: string): { removed: boolean } {
    this.service.remove(id);
    this.changed(id);
    return { removed: true };
  }

  /** Starts a run now, in this process; returns the run as it starts (its end comes as events). */
  runNow(id: string): AutomationRun {
    this.service.require(id);
    const done = this.scheduler.runNow(id);
    done.catch((e: Error) => console.error(`[paddock] run now of ${id} failed:`, e.message));
    const run = this.scheduler.activeRuns
      .filter((r) => r.automationId === id && r.trigger === 'manual')
      .sort((a, b) => b.slotAt - a.slotAt)[0];
    if (!run) throw new PaddockError('NOT_STARTED', 'The run could not start; try again.');
    return this.runView(this.d.store.runs.get(run.id) ?? run);
  }

  runs(automationId?: string, limit = 200): AutomationRun[] {
    if (automationId) this.service.require(automationId);
    return this.runViews(this.d.store.runs.list(automationId, limit));
  }

  inbox(includeArchived = false): { items: InboxItem[]; unread: number } {
    return {
      items: this.d.store.inbox.list({ includeArchived, limit: 500 }).map((i) => this.item(i)),
      unread: this.d.store.inbox.unreadCount(),
    };
  }

  private setState(id: string, state: 'unread' | 'read' | 'archived'): InboxItem {
    const inbox = this.d.store.inbox;
    if (!inbox.get(id)) throw new PaddockError('NOT_FOUND', 'That inbox item no longer exists.');
    inbox.setState(id, state);
    this.inboxChanged();
    return this.item(inbox.get(id)!);
  }

  markRead(id: string, read = true): InboxItem {
    return this.setState(id, read ? 'read' : 'unread');
  }

  archive(id: string, archived = true): InboxItem {
    return this.setState(id, archived ? 'archived' : 'read');
  }

  unreadCount(): number {
    return this.d.store.inbox.unreadCount();
  }

  /**
   * The agent's `schedule_automation` tool for a task: the new automation gets the task's folders
   * and its own hosts, each keeping where it came from (the settings' allowlists apply to every run
   * anyway). The plan names every host a run may reach, Settings' included, for the person's yes.
   */
  scheduleFor(task: {
    folders: { hostPath: string; readOnly: boolean }[];
    allowlist: string[];
    promptAllowlist: string[];
  }): AutomationScheduler {
    const input = (req: ScheduleRequest) => {
      const s = this.d.store.settings.get();
      return {
        name: req.name,
        prompt: req.prompt,
        schedule: req.schedule,
        folders: task.folders,
        allowHosts: task.allowlist.filter((h) => !s.networkAllowlist.includes(h)),
        promptAllowHosts: task.promptAllowlist.filter((h) => !s.promptAllowlist.includes(h)),
        ...(req.timeZone ? { tz: req.timeZone } : {}),
        ...(req.missed ? { missed: req.missed } : {}),
      };
    };
    return {
      plan: (req) => {
        const s = this.d.store.settings.get();
        const p = this.service.plan(input(req));
        return {
          ...p,
          hosts: [...new Set([...s.networkAllowlist, ...p.hosts, ...s.promptAllowlist])],
        };
      },
      create: async (req, sid) => {
        const a = this.service.create({ ...input(req), createdBySession: sid });
        this.changed(a.id);
        return describeCreated(a);
      },
    };
  }

  /** Stops the scheduler: runs in progress are recorded as interrupted. */
  async stop(): Promise<void> {
    this.stopWatching();
    await this.scheduler.stop();
    this.disposed = true;
  }

  /** Synchronous part of stopping, for Core.dispose(): no more timers. */
  dispose(): void {
    this.stopWatching();
    this.disposed = true;
    void this.scheduler.stop();
  }
}
