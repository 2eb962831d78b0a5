import type { AgentEvent } from '../../shared/agent-events.js';
import type { ApprovalAnswer, TaskFolder, TaskSummary } from '../../shared/app-contract.js';
import { PaddockError } from '../../shared/result.js';
import { ApprovalDesk, deskApprover } from '../agent/approvals.js';
import type { SessionRow } from '../store/sessions-repo.js';
import type { Store } from '../store/store.js';
import { resolveGrants } from '../vm/grants.js';
import { findImage } from '../vm/image.js';
import { boundaryNote } from '../vm/protected-paths.js';
import type { Vm } from '../vm/backend.js';
import type { WarmPool } from '../vm/warm-pool.js';
import type { EventBus } from './events.js';
import type { LiveSession, SessionFactory } from './sessions.js';
import { displayEvents, filesChanged } from './task-history.js';

/** What a task needs from the rest of the core. */
export interface TaskManagerDeps {
  store: Store;
  events: EventBus;
  dataDir: string;
  /** Makes and opens every sandboxed session. */
  sessions: SessionFactory;
  /** Stop a finished task's VM after this long without a follow-up (default 10 minutes). */
  idleStopMs?: number;
  /** VMs booted ahead for the folders on the new-task page; a new task takes one if it fits. */
  pool?: WarmPool;
  /** A run of the task ended (done, stopped or failed): its review grants' changes are staged. */
  onRunEnded?: (id: string) => void;
}

/** The request of `tasks:create`, after the contract parsed it. */
export interface CreateTaskRequest {
  prompt: string;
  folders: { id: string; readOnly: boolean; review?: boolean | undefined }[];
  approvalMode?: 'auto' | 'ask' | undefined;
  allowlist?: string[] | undefined;
  secrets?: string[] | undefined;
}

interface LiveTask {
  id: string;
  live: LiveSession;
  running: Promise<void> | null;
  /** Hosts the person allowed while the task ran, shown with its allowlist. */
  extraHosts: string[];
  idleTimer: NodeJS.Timeout | null;
}

/**
 * Tasks as the app shows them: an agent session in its own sandbox VM, created from granted
 * folders and a prompt, followed up, stopped, listed and reopened. Live AgentEvents go out as
 * `task:event`; questions for the person wait at the approval desk until `approvals:answer`.
 * Every step is in the store, so a task outlives the process and is resumed by the next
 * follow-up.
 */
export class TaskManager {
  private readonly live = new Map<string, LiveTask>();
  private readonly opening = new Map<string, Promise<LiveTask>>();
  /** Questions the running agents wait on, answered from any window. */
  readonly desk: ApprovalDesk;
  private disposed = false;

  constructor(private readonly d: TaskManagerDeps) {
    this.desk = new ApprovalDesk({
      requested: (approval) => {
        d.events.emit('approval:requested', approval);
        this.changed(approval.taskId);
      },
      resolved: (r) => {
        d.events.emit('approval:resolved', r);
        this.changed(r.taskId);
      },
    });
  }

  /** The VM shares for granted folders (by grant id), judged again now. */
  private sharesFor(folders: { id: string; readOnly: boolean; review?: boolean }[]): TaskFolder[] {
    // Same order as asked.
    const wanted = this.d.store.grants.folders(folders).map((f, i) => ({
      path: f.hostPath,
      readOnly: f.readOnly,
      // Review is the default for a read-write folder: nothing lands before the person says so.
      review: !f.readOnly && (folders[i]!.review ?? true),
    }));
    // SECURITY: judged again at use, so a folder swapped for a symlink since is caught.
    return resolveGrants(wanted, { dataDir: this.d.dataDir });
  }

  /**
   * Boots a VM ahead for these folders while the person is still typing the prompt, so the task
   * starts without a cold boot. False when there is no pool or no image.
   */
  async prewarm(
    folders: { id: string; readOnly: boolean; review?: boolean | undefined }[],
  ): Promise<boolean> {
    if (!this.d.pool || this.disposed) return false;
    const shares = this.sharesFor(folders);
    const image = await findImage(this.d.dataDir).catch(() => null);
    if (!image) return false;
    const settings = this.d.store.settings.get();
    this.d.pool.prewarm({
      imageDir: image.dir,
      shares,
      cpus: settings.vmCpus,
      memoryMb: settings.vmMemoryMb,
      accel: 'auto',
    });
    return true;
  }

  /** Creates a task on granted folders and starts it; returns at once with the task running. */
  async create(req: CreateTaskRequest): Promise<TaskSummary> {
    // Before anything is stored: without a key the task could not start.
    this.d.sessions.credentials();
    const row = this.d.sessions.create({
      title: req.prompt,
      approvalMode: req.approvalMode,
      folders: this.sharesFor(req.folders),
      // Typed in the new-task form: configured, like Settings' list.
      allowHosts: req.allowlist,
      secrets: req.secrets,
    });
    await this.start(row.id, req.prompt);
    return this.summary(row.id);
  }

  /** A follow-up message: resumes the task (from the store if the app restarted since). */
  async send(id: string, prompt: string): Promise<TaskSummary> {
    this.d.sessions.row(id);
    await this.start(id, prompt);
    return this.summary(id);
  }

  /**
   * The stop button: cancels the model stream, kills the running command, and answers any open
   * question with a refusal. Safe at any moment, including when nothing runs.
   */
  cancel(id: string): TaskSummary {
    this.d.sessions.row(id);
    this.desk.refuseAll(id);
    this.live.get(id)?.live.session.cancel();
    return this.summary(id);
  }

  /** Tasks, newest first, optionally those whose title or status contains `query`. */
  list(query?: string): TaskSummary[] {
    const q = query?.trim().toLowerCase();
    return this.d.store.sessions
      .list()
      .filter((r) => !q || r.title.toLowerCase().includes(q) || r.status.includes(q))
      .slice(0, 500)
      .map((r) => this.toSummary(r));
  }

  /** One task with its conversation rebuilt for display, changed files, questions and network log. */
  get(id: string) {
    const row = this.d.sessions.row(id);
    const rows = this.d.store.sessions.events(id);
    return {
      task: this.toSummary(row),
      events: displayEvents(rows),
      filesChanged: filesChanged(rows, row.folders as TaskFolder[], row.createdAt),
      approvals: this.desk.waiting(id),
      network: this.d.store.egressLog
        .list({ sessionId: id, limit: 200 })
        .reverse()
        .map(({ sessionId: _sessionId, ...n }) => n),
      running: this.live.get(id)?.live.session.isRunning ?? false,
    };
  }

  /** The person's answer to a waiting question; false when it was already answered. */
  answer(approvalId: string, answer: ApprovalAnswer): boolean {
    return this.desk.answer(approvalId, answer);
  }

  /** Stops every running task and VM; the stored tasks stay and resume on the next follow-up. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.desk.close();
    const tasks = [...this.live.values()];
    this.live.clear();
    for (const t of tasks) t.live.session.cancel();
    await Promise.allSettled(
      tasks.map(async (t) => {
        if (t.idleTimer) clearTimeout(t.idleTimer);
        await Promise.race([t.running, new Promise((r) => setTimeout(r, 5000))]);
        await t.live.stop();
      }),
    );
  }

  /** The running VM of a task's live session (to read what it staged), or null when none. */
  vmOf(id: string): Promise<Vm> | null {
    return this.live.get(id)?.live.vm?.() ?? null;
  }

  private summary(id: string): TaskSummary {
    return this.toSummary(this.d.sessions.row(id));
  }

  private toSummary(r: SessionRow): TaskSummary {
    const live = this.live.get(r.id);
    return {
      id: r.id,
      title: r.title,
      status: r.status,
      model: r.model,
      approvalMode: r.approvalMode === 'ask' ? 'ask' : 'auto',
      folders: r.folders as TaskFolder[],
      allowlist: [...new Set([...r.allowlist, ...r.promptAllowlist, ...(live?.extraHosts ?? [])])],
      inputTokens: r.inputTokens,
      outputTokens: r.outputTokens,
      cacheReadTokens: r.cacheReadTokens,
      cacheWriteTokens: r.cacheWriteTokens,
      costUsd: r.costUsd,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
      pendingApprovals: this.desk.waiting(r.id).length,
    };
  }

  /**
   * Says a task changed that this manager does not run itself (an automation's session), so the
   * sidebar and an open task view follow it.
   */
  touched(id: string): void {
    this.changed(id);
  }

  private changed(id: string): void {
    if (this.disposed) return;
    const row = this.d.store.sessions.get(id);
    if (row) this.d.events.emit('task:changed', this.toSummary(row));
  }

  private async start(id: string, prompt: string): Promise<void> {
    if (this.disposed) throw new PaddockError('CLOSING', 'Paddock is shutting down.');
    const t = await this.open(id);
    if (t.live.session.isRunning)
      throw new PaddockError(
        'BUSY',
        'This task is still working: wait for it to finish, or press Stop first.',
      );
    if (t.idleTimer) clearTimeout(t.idleTimer);
    t.idleTimer = null;
    const run = t.live.session.run(prompt);
    this.changed(id);
    t.running = run.then(
      () => undefined,
      () => undefined, // the session recorded and reported the error itself
    );
    void t.running.then(() => {
      t.running = null;
      this.changed(id);
      if (!this.disposed) this.d.onRunEnded?.(id);
      this.scheduleIdleStop(t);
    });
  }

  /** The task's live session, made on first use (or after its VM was idle-stopped). */
  private open(id: string): Promise<LiveTask> {
    const have = this.live.get(id);
    if (have) return Promise.resolve(have);
    let p = this.opening.get(id);
    if (!p) {
      p = Promise.resolve()
        .then(() => this.make(id))
        .finally(() => this.opening.delete(id));
      this.opening.set(id, p);
    }
    return p;
  }

  private make(id: string): LiveTask {
    const extraHosts: string[] = [];
    const live = this.d.sessions.open(id, {
      approver: deskApprover(this.desk, id, this.d.store.settings, {
        hostAllowed: (entry) => {
          if (extraHosts.includes(entry)) return;
          extraHosts.push(entry);
          this.changed(id);
        },
        settingsChanged: (next) => this.d.events.emit('settings:changed', next),
      }),
      canSchedule: true,
      useWarmPool: true,
      onEvent: (event: AgentEvent) => {
        this.d.events.emit('task:event', { taskId: id, event });
        if (event.type === 'assistant' || event.type === 'done') this.changed(id);
      },
      // What the boundary refused or undid in the grants reaches the person as a notice.
      onBoundary: (f) =>
        this.d.events.emit('task:event', {
          taskId: id,
          event: { type: 'notice', message: boundaryNote(f) },
        }),
    });
    const t: LiveTask = { id, live, running: null, extraHosts, idleTimer: null };
    this.live.set(id, t);
    return t;
  }

  private scheduleIdleStop(t: LiveTask): void {
    if (this.disposed) return;
    t.idleTimer = setTimeout(
      () => {
        if (t.live.session.isRunning || this.live.get(t.id) !== t) return;
        this.live.delete(t.id);
        void t.live.stop();
      },
      this.d.idleStopMs ?? 10 * 60_000,
    );
    t.idleTimer.unref();
  }
}
