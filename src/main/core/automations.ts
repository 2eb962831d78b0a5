import type { AgentEvent } from '../../shared/agent-events.js';
import type { Automation, AutomationRun, InboxItem } from '../../shared/automations-contract.js';
import { PaddockError } from '../../shared/result.js';
import { createAnthropic } from '../agent/model.js';
import type { AutomationScheduler, ScheduleRequest } from '../agent/tools/types.js';
import { AgentRunExecutor, describeCreated } from '../automations/agent-executor.js';
import type { Clock } from '../automations/clock.js';
import { parseSchedulePhrase } from '../automations/phrase.js';
import { compileSchedule } from '../automations/schedule.js';
import {
  Scheduler,
  type RunExecutor,
  type RunJob,
  type RunResult,
  type SchedulerEvent,
} from '../automations/scheduler.js';
import { AutomationService } from '../automations/service.js';
import type { AutomationRow, InboxItemRow, RunRow } from '../store/automations-repo.js';
import type { Store } from '../store/store.js';
import type { VmBackend } from '../vm/backend.js';
import type { ApiKeys } from './api-keys.js';
import type { EventBus } from './events.js';
import { chooseBackend } from '../vm/choose-backend.js';

/** Scheduler knobs a host or a test may set (a fake clock, short leases). */
export interface AppSchedulerOptions {
  clock?: Clock;
  leaseMs?: number;
  graceMs?: number;
  maxSleepMs?: number;
  concurrency?: number;
  /** How often to look for another process's writes (the daemon, the CLI); default 2 s. */
  watchMs?: number;
}

/** What the app's automations need from the rest of the core. */
export interface AppAutomationsDeps {
  store: Store;
  events: EventBus;
  dataDir: string;
  apiKeys: ApiKeys;
  /** The VM backend for runs whose agent calls a tool (default QEMU). */
  backend?: () => VmBackend;
  scheduler?: AppSchedulerOptions;
  /** Live agent events of a run's session, so an open task view follows it. */
  onAgentEvent?: (sessionId: string, e: AgentEvent) => void;
  /** A run's session started or ended: the task list shows it. */
  onSessionChanged?: (sessionId: string) => void;
}

/**
 * Runs each automation as an agent session with the key the person entered (or the environment's),
 * read at run time: a key entered after the app started is used by the next run.
 */
class AppRunExecutor implements RunExecutor {
  constructor(private readonly d: AppAutomationsDeps) {}

  async execute(job: RunJob): Promise<RunResult> {
    const creds = this.d.apiKeys.resolve();
    if (!creds)
      return {
        status: 'failed',
        finalText: '',
        error: 'There is no Anthropic API key: enter it in Settings so automations can run.',
      };
    let sessionId: string | null = null;
    const inner = new AgentRunExecutor({
      store: this.d.store,
      dataDir: this.d.dataDir,
      client: createAnthropic(creds),
      backend: this.d.backend ?? (() => chooseBackend({ dataDir: this.d.dataDir }).backend),
      onAgentEvent: (_runId, e) => {
        if (sessionId) this.d.onAgentEvent?.(sessionId, e);
      },
    });
    const result = await inner.execute({
      ...job,
      setSession: (id) => {
        sessionId = id;
        job.setSession(id);
        this.d.onSessionChanged?.(id);
      },
    });
    if (sessionId) this.d.onSessionChanged?.(sessionId);
    return result;
  }
}

function folderOf(f: string): { hostPath: string; readOnly: boolean } {
  return f.endsWith(':ro')
    ? { hostPath: f.slice(0, -3), readOnly: true }
    : { hostPath: f, readOnly: false };
}

function runOut(r: RunRow): AutomationRun {
  return {
    id: r.id,
    automationId: r.automationId,
    slotAt: r.slotAt,
    status: r.status,
    trigger: r.trigger,
    late: r.late,
    attempt: r.attempt,
    sessionId: r.sessionId,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    error: r.error,
    summary: r.summary,
  };
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
  private seenVersion: number;
  private disposed = false;

  constructor(private readonly d: AppAutomationsDeps) {
    const clock = d.scheduler?.clock;
    this.service = new AutomationService(d.store.automations, {
      dataDir: d.dataDir,
      ...(clock ? { now: () => clock.now() } : {}),
      onChange: () => {
        this.scheduler.wake();
        this.inboxChanged();
      },
    });
    const o = d.scheduler ?? {};
    this.scheduler = new Scheduler({
      repo: d.store.automations,
      executor: new AppRunExecutor(d),
      ...(o.clock ? { clock: o.clock } : {}),
      ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}),
      ...(o.graceMs ? { graceMs: o.graceMs } : {}),
      ...(o.maxSleepMs ? { maxSleepMs: o.maxSleepMs } : {}),
      ...(o.concurrency ? { concurrency: o.concurrency } : {}),
      onEvent: (e) => this.onSchedulerEvent(e),
    });
    this.seenVersion = d.store.automations.dataVersion();
  }

  /** Starts the scheduler and the watch for other processes' writes. */
  start(): void {
    this.scheduler.start();
    this.watcher = setInterval(() => this.checkOtherWriters(), this.d.scheduler?.watchMs ?? 2000);
    this.watcher.unref();
  }

  private checkOtherWriters(): void {
    if (this.disposed) return;
    const v = this.d.store.automations.dataVersion();
    if (v === this.seenVersion) return;
    this.seenVersion = v;
    this.scheduler.wake();
    this.d.events.emit('automations:changed', { automationId: null });
    this.inboxChanged();
  }

  private onSchedulerEvent(e: SchedulerEvent): void {
    if (this.disposed) return;
    switch (e.type) {
      case 'run-started':
      case 'run-finished':
      case 'missed':
      case 'interrupted': {
        const run = this.d.store.automations.getRun(e.run.id) ?? e.run;
        this.d.events.emit('automations:run-changed', runOut(run));
        this.d.events.emit('automations:changed', { automationId: run.automationId });
        if (e.type !== 'run-started') this.inboxChanged();
        break;
      }
      case 'error':
        console.error(`[paddock] scheduler: ${e.message}`);
        break;
      case 'clock-jump':
        break;
    }
  }

  private inboxChanged(): void {
    if (!this.disposed)
      this.d.events.emit('inbox:changed', { unread: this.d.store.automations.unreadCount() });
  }

  private changed(id: string | null): void {
    this.d.events.emit('automations:changed', { automationId: id });
  }

  /** The folders of granted ids, as `PATH` or `PATH:ro` for the service. */
  private folderArgs(folders: { id: string; readOnly: boolean }[]): string[] {
    const grants = this.d.store.grants.list();
    return folders.map((f) => {
      const g = grants.find((x) => x.id === f.id);
      if (!g)
        throw new PaddockError(
          'GRANT_MISSING',
          'One of the folders is no longer granted; add it again.',
        );
      return `${g.hostPath}${f.readOnly ? ':ro' : ''}`;
    });
  }

  /** One automation as the page shows it. */
  view(a: AutomationRow): Automation {
    const [last] = this.d.store.automations.runs(a.id, 1);
    const active = this.scheduler.activeRuns.some((r) => r.automationId === a.id);
    return {
      id: a.id,
      name: a.name,
      prompt: a.prompt,
      scheduleText: a.scheduleText,
      rrule: a.rrule,
      tzid: a.tzid,
      folders: a.folders.map(folderOf),
      allowlist: a.allowlist,
      missedPolicy: a.missedPolicy,
      enabled: a.enabled,
      nextRunAt: a.enabled ? a.nextSlotAt : null,
      lastRun: last ? runOut(last) : null,
      running: active || last?.status === 'running',
      createdBySession: a.createdBySession,
      createdAt: a.createdAt,
    };
  }

  private item(i: InboxItemRow): InboxItem {
    const run = this.d.store.automations.getRun(i.runId);
    return {
      ...i,
      sessionId: run?.sessionId ?? null,
      slotAt: run?.slotAt ?? null,
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
    folders: { id: string; readOnly: boolean }[];
    allowlist?: string[] | undefined;
    missed?: 'skip' | 'once' | 'all' | undefined;
  }): Automation {
    const a = this.service.create({
      name: req.name,
      prompt: req.prompt,
      schedule: req.schedule,
      folders: this.folderArgs(req.folders),
      allowHosts: req.allowlist ?? [],
      ...(req.tz ? { tz: req.tz } : {}),
      ...(req.missed ? { missed: req.missed } : {}),
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
    folders?: { id: string; readOnly: boolean }[] | undefined;
    keepFolders?: { hostPath: string; readOnly: boolean }[] | undefined;
    allowlist?: string[] | undefined;
    missed?: 'skip' | 'once' | 'all' | undefined;
  }): Automation {
    const cur = this.service.require(req.id);
    let folders: string[] | undefined;
    if (req.folders !== undefined || req.keepFolders !== undefined) {
      const had = new Set(cur.folders.map((f) => folderOf(f).hostPath));
      // SECURITY: the page may keep a folder the automation had, never name a new path itself.
      const kept = (req.keepFolders ?? []).map((f) => {
        if (!had.has(f.hostPath))
          throw new PaddockError('GRANT_MISSING', 'That folder is not one of this automation’s.');
        return `${f.hostPath}${f.readOnly ? ':ro' : ''}`;
      });
      folders = [...kept, ...this.folderArgs(req.folders ?? [])];
    }
    const a = this.service.update(req.id, {
      ...(req.name !== undefined ? { name: req.name } : {}),
      ...(req.prompt !== undefined ? { prompt: req.prompt } : {}),
      ...(req.schedule !== undefined ? { schedule: req.schedule } : {}),
      ...(req.tz !== undefined ? { tz: req.tz } : {}),
      ...(folders !== undefined ? { folders } : {}),
      ...(req.allowlist !== undefined ? { allowHosts: req.allowlist } : {}),
      ...(req.missed !== undefined ? { missed: req.missed } : {}),
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
      const c = compileSchedule(s);
      const times: number[] = [];
      let t = now;
      let inclusive = true;
      while (times.length < 5) {
        const n = c.next(t, inclusive);
        if (n === null) break;
        times.push(n);
        t = n;
        inclusive = false;
      }
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
    return runOut(this.d.store.automations.getRun(run.id) ?? run);
  }

  runs(automationId?: string, limit = 200): AutomationRun[] {
    if (automationId) this.service.require(automationId);
    return this.d.store.automations.runs(automationId, limit).map(runOut);
  }

  inbox(includeArchived = false): { items: InboxItem[]; unread: number } {
    return {
      items: this.d.store.automations
        .inbox({ includeArchived, limit: 500 })
        .map((i) => this.item(i)),
      unread: this.d.store.automations.unreadCount(),
    };
  }

  private setState(id: string, state: 'unread' | 'read' | 'archived'): InboxItem {
    const repo = this.d.store.automations;
    if (!repo.inboxItem(id))
      throw new PaddockError('NOT_FOUND', 'That inbox item no longer exists.');
    repo.setInboxState(id, state);
    this.inboxChanged();
    return this.item(repo.inboxItem(id)!);
  }

  markRead(id: string, read = true): InboxItem {
    return this.setState(id, read ? 'read' : 'unread');
  }

  archive(id: string, archived = true): InboxItem {
    return this.setState(id, archived ? 'archived' : 'read');
  }

  unreadCount(): number {
    return this.d.store.automations.unreadCount();
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
        folders: task.folders.map((f) => `${f.hostPath}${f.readOnly ? ':ro' : ''}`),
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
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = null;
    await this.scheduler.stop();
    this.disposed = true;
  }

  /** Synchronous part of stopping, for Core.dispose(): no more timers. */
  dispose(): void {
    if (this.watcher) clearInterval(this.watcher);
    this.watcher = null;
    this.disposed = true;
    void this.scheduler.stop();
  }
}
