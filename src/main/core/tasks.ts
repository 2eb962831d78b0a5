import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentEvent } from '../../shared/agent-events.js';
import type {
  Approval,
  ApprovalAnswer,
  AutomationPlan,
  TaskFolder,
  TaskSummary,
} from '../../shared/app-contract.js';
import { newId } from '../../shared/ids.js';
import { PaddockError } from '../../shared/result.js';
import { createAnthropic } from '../agent/model.js';
import { AgentSession, thinkingFromBudget, type Approver } from '../agent/session.js';
import { describeAutomationPlan } from '../agent/tools/artifacts.js';
import { ToolError, type AutomationScheduler } from '../agent/tools/types.js';
import type { SessionRow } from '../store/sessions-repo.js';
import type { Store } from '../store/store.js';
import { Allowlist, InvalidAllowlistEntryError } from '../vm/egress/allowlist.js';
import type { PersonAnswer } from '../vm/egress/proxy.js';
import { resolveGrants } from '../vm/grants.js';
import { findImage, IMAGE_MISSING_HINT } from '../vm/image.js';
import { boundaryNote } from '../vm/protected-paths.js';
import { Sandbox } from '../vm/sandbox.js';
import type { WarmPool } from '../vm/warm-pool.js';
import type { ApiKeys } from './api-keys.js';
import type { EventBus } from './events.js';
import { filesModifiedSince } from './folders.js';
import { displayEvents, filesFromToolCalls } from './task-history.js';
import { chooseBackend } from '../vm/choose-backend.js';

/** What a task needs from the rest of the core. */
export interface TaskManagerDeps {
  store: Store;
  events: EventBus;
  dataDir: string;
  apiKeys: ApiKeys;
  /** Stop a finished task's VM after this long without a follow-up (default 10 minutes). */
  idleStopMs?: number;
  /** VMs booted ahead for the folders on the new-task page; a new task takes one if it fits. */
  pool?: WarmPool;
  /**
   * The agent's `schedule_automation` tool for one task (its folders and allowlists); without it
   * the tool is not offered. The person is asked about every plan it makes.
   */
  scheduleAutomation?: (task: {
    folders: TaskFolder[];
    allowlist: string[];
    promptAllowlist: string[];
  }) => AutomationScheduler;
}

/** The request of `tasks:create`, after the contract parsed it. */
export interface CreateTaskRequest {
  prompt: string;
  folders: { id: string; readOnly: boolean }[];
  approvalMode?: 'auto' | 'ask' | undefined;
  allowlist?: string[] | undefined;
}

interface LiveTask {
  id: string;
  session: AgentSession;
  sandbox: Sandbox | null;
  runDir: string;
  running: Promise<void> | null;
  /** Tools the person allowed for the rest of this task (ask mode). */
  allowedTools: Set<string>;
  /** Hosts the person allowed while the task ran, shown with its allowlist. */
  extraHosts: string[];
  idleTimer: NodeJS.Timeout | null;
}

interface PendingApproval {
  approval: Approval;
  resolve(answer: ApprovalAnswer): void;
}

/** The stop a person presses: what a cancelled session's answers say. */
const STOPPED_ANSWER: ApprovalAnswer = 'deny';

function summariseInput(name: string, input: unknown): string {
  const i = (input ?? {}) as Record<string, unknown>;
  const s =
    typeof i.command === 'string'
      ? i.command
      : typeof i.path === 'string'
        ? i.path
        : typeof i.url === 'string'
          ? i.url
          : JSON.stringify(input);
  return `${name}: ${s.length > 400 ? s.slice(0, 397) + '…' : s}`;
}

/**
 * Tasks as the app shows them: an agent session in its own sandbox VM, created from granted
 * folders and a prompt, followed up, stopped, listed and reopened. Live AgentEvents go out as
 * `task:event`; questions for the person (tool calls in ask mode, hosts outside the allowlist)
 * wait as approvals until `approvals:answer`. Every step is in the store, so a task outlives the
 * process and is resumed by the next follow-up.
 */
export class TaskManager {
  private readonly live = new Map<string, LiveTask>();
  private readonly opening = new Map<string, Promise<LiveTask>>();
  private readonly pending = new Map<string, PendingApproval>();
  private disposed = false;

  constructor(private readonly d: TaskManagerDeps) {}

  /** The VM shares for granted folders (by grant id), judged again now. */
  private sharesFor(folders: { id: string; readOnly: boolean }[]): TaskFolder[] {
    const grants = this.d.store.grants.list();
    const wanted = folders.map((f) => {
      const g = grants.find((x) => x.id === f.id);
      if (!g)
        throw new PaddockError(
          'GRANT_MISSING',
          'One of the folders is no longer granted; add it again.',
        );
      return { path: g.hostPath, readOnly: f.readOnly };
    });
    // SECURITY: judged again at use, so a folder swapped for a symlink since is caught.
    return resolveGrants(wanted, { dataDir: this.d.dataDir });
  }

  /**
   * Boots a VM ahead for these folders while the person is still typing the prompt, so the task
   * starts without a cold boot. False when there is no pool or no image.
   */
  async prewarm(folders: { id: string; readOnly: boolean }[]): Promise<boolean> {
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
    const creds = this.d.apiKeys.resolve();
    if (!creds)
      throw new PaddockError(
        'NO_API_KEY',
        'There is no Anthropic API key yet: enter it in Settings, then start the task again.',
      );
    const shares = this.sharesFor(req.folders);
    const settings = this.d.store.settings.get();
    // Typed in Settings or in the new-task form: configured.
    const allowlist = [...new Set([...settings.networkAllowlist, ...(req.allowlist ?? [])])];
    // SECURITY: "always" answers to prompts stay prompt entries in the task (never internal).
    const promptAllowlist = settings.promptAllowlist.filter((h) => !allowlist.includes(h));
    try {
      new Allowlist(allowlist, promptAllowlist);
    } catch (e) {
      if (e instanceof InvalidAllowlistEntryError)
        throw new PaddockError('BAD_ALLOW_HOST', e.message);
      throw e;
    }
    const firstLine = req.prompt.trim().split('\n')[0] ?? '';
    const row = this.d.store.sessions.create({
      title: firstLine.length > 80 ? firstLine.slice(0, 79) + '…' : firstLine,
      model: settings.model,
      approvalMode: req.approvalMode ?? settings.approvalMode,
      folders: shares,
      allowlist,
      promptAllowlist,
    });
    await this.start(row.id, req.prompt);
    return this.summary(row.id);
  }

  /** A follow-up message: resumes the task (from the store if the app restarted since). */
  async send(id: string, prompt: string): Promise<TaskSummary> {
    this.row(id);
    await this.start(id, prompt);
    return this.summary(id);
  }

  /**
   * The stop button: cancels the model stream, kills the running command, and answers any open
   * question with a refusal. Safe at any moment, including when nothing runs.
   */
  cancel(id: string): TaskSummary {
    this.row(id);
    for (const p of [...this.pending.values()]) {
      if (p.approval.taskId === id) this.resolveApproval(p.approval.id, STOPPED_ANSWER);
    }
    this.live.get(id)?.session.cancel();
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
    const row = this.row(id);
    const rows = this.d.store.sessions.events(id);
    const folders = row.folders as TaskFolder[];
    const files = new Set(filesFromToolCalls(rows, folders));
    for (const f of folders) {
      if (f.readOnly) continue;
      for (const rel of filesModifiedSince(f.hostPath, row.createdAt))
        files.add(`${f.name}/${rel}`);
    }
    return {
      task: this.toSummary(row),
      events: displayEvents(rows),
      filesChanged: [...files].sort().slice(0, 500),
      approvals: [...this.pending.values()]
        .filter((p) => p.approval.taskId === id)
        .map((p) => p.approval),
      network: this.d.store.egressLog
        .list({ sessionId: id, limit: 200 })
        .reverse()
        .map((n) => ({
          at: n.at,
          host: n.host,
          port: n.port,
          allowed: n.allowed,
          reason: n.reason,
        })),
      running: this.live.get(id)?.session.isRunning ?? false,
    };
  }

  /** The person's answer to a waiting question; false when it was already answered. */
  answer(approvalId: string, answer: ApprovalAnswer): boolean {
    return this.resolveApproval(approvalId, answer);
  }

  /** Stops every running task and VM; the stored tasks stay and resume on the next follow-up. */
  async dispose(): Promise<void> {
    this.disposed = true;
    for (const p of [...this.pending.values()]) this.resolveApproval(p.approval.id, STOPPED_ANSWER);
    const tasks = [...this.live.values()];
    this.live.clear();
    for (const t of tasks) t.session.cancel();
    await Promise.allSettled(
      tasks.map(async (t) => {
        if (t.idleTimer) clearTimeout(t.idleTimer);
        await Promise.race([t.running, new Promise((r) => setTimeout(r, 5000))]);
        await this.stopVm(t);
      }),
    );
  }

  private row(id: string): SessionRow {
    const row = this.d.store.sessions.get(id);
    if (!row) throw new PaddockError('NOT_FOUND', 'That task no longer exists.');
    return row;
  }

  private summary(id: string): TaskSummary {
    return this.toSummary(this.row(id));
  }

  private toSummary(r: SessionRow): TaskSummary {
    const live = this.live.get(r.id);
    let pendingApprovals = 0;
    for (const p of this.pending.values()) if (p.approval.taskId === r.id) pendingApprovals++;
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
      costUsd: r.costUsd,
      createdAt: r.createdAt,
      updatedAt: r.updatedAt,
      pendingApprovals,
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
    if (!this.disposed && this.d.store.sessions.get(id))
      this.d.events.emit('task:changed', this.summary(id));
  }

  private async start(id: string, prompt: string): Promise<void> {
    if (this.disposed) throw new PaddockError('CLOSING', 'Paddock is shutting down.');
    const t = await this.open(id);
    if (t.session.isRunning)
      throw new PaddockError(
        'BUSY',
        'This task is still working: wait for it to finish, or press Stop first.',
      );
    if (t.idleTimer) clearTimeout(t.idleTimer);
    t.idleTimer = null;
    const run = t.session.run(prompt);
    this.changed(id);
    t.running = run.then(
      () => undefined,
      () => undefined, // the session recorded and reported the error itself
    );
    void t.running.then(() => {
      t.running = null;
      this.changed(id);
      this.scheduleIdleStop(t);
    });
  }

  /** The task's live session and sandbox, made on first use (or after the VM was idle-stopped). */
  private open(id: string): Promise<LiveTask> {
    const have = this.live.get(id);
    if (have) return Promise.resolve(have);
    let p = this.opening.get(id);
    if (!p) {
      p = this.make(id).finally(() => this.opening.delete(id));
      this.opening.set(id, p);
    }
    return p;
  }

  private async make(id: string): Promise<LiveTask> {
    const row = this.row(id);
    const creds = this.d.apiKeys.resolve();
    if (!creds)
      throw new PaddockError(
        'NO_API_KEY',
        'There is no Anthropic API key yet: enter it in Settings, then try again.',
      );
    const settings = this.d.store.settings.get();
    const shares = row.folders as TaskFolder[];
    const image = await findImage(this.d.dataDir).catch(() => null);
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-'));
    const t: LiveTask = {
      id,
      session: undefined as unknown as AgentSession,
      sandbox: null,
      runDir,
      running: null,
      allowedTools: new Set(),
      extraHosts: [],
      idleTimer: null,
    };
    if (image) {
      t.sandbox = new Sandbox({
        backend: chooseBackend({ dataDir: this.d.dataDir }).backend,
        imageDir: image.dir,
        sessionDir: path.join(this.d.dataDir, 'sessions', id),
        runDir,
        shares,
        allowHosts: row.allowlist,
        promptHosts: row.promptAllowlist,
        memoryMb: settings.vmMemoryMb,
        cpus: settings.vmCpus,
        onEgress: (d) => this.d.store.egressLog.record({ ...d, sessionId: id }),
        // What the boundary refused or undid in the grants reaches the person as a notice.
        onBoundary: (f) =>
          this.d.events.emit('task:event', {
            taskId: id,
            event: { type: 'notice', message: boundaryNote(f) },
          }),
        askPerson: (h, p) => t.session.askNetwork(h, p),
        ...(this.d.pool ? { pool: this.d.pool } : {}),
      });
    }
    t.session = new AgentSession({
      store: this.d.store,
      client: createAnthropic(creds),
      sessionId: id,
      host: () => {
        if (!t.sandbox) throw new ToolError(IMAGE_MISSING_HINT);
        return t.sandbox;
      },
      settings: {
        model: row.model,
        maxTokens: settings.maxTokens,
        thinking: thinkingFromBudget(settings.thinkingBudget),
        contextBudgetTokens: 400_000,
      },
      approvalMode: row.approvalMode === 'ask' ? 'ask' : 'auto',
      approver: this.approverFor(t),
      prompt: {
        shares,
        allowlist: [...row.allowlist, ...row.promptAllowlist],
        timeZone: Intl.DateTimeFormat().resolvedOptions().timeZone,
      },
      ...(this.d.scheduleAutomation
        ? {
            scheduleAutomation: this.d.scheduleAutomation({
              folders: shares,
              allowlist: row.allowlist,
              promptAllowlist: row.promptAllowlist,
            }),
          }
        : {}),
    });
    t.session.on('event', (event: AgentEvent) => {
      this.d.events.emit('task:event', { taskId: id, event });
      if (event.type === 'assistant' || event.type === 'done') this.changed(id);
    });
    this.live.set(id, t);
    return t;
  }

  private approverFor(t: LiveTask): Approver {
    return {
      approveTool: async (call) => {
        if (t.allowedTools.has(call.name)) return 'allow';
        const answer = await this.ask(
          t.id,
          'tool',
          call.name,
          summariseInput(call.name, call.input),
        );
        if (answer === 'session' || answer === 'always') t.allowedTools.add(call.name);
        return answer === 'deny' ? 'deny' : 'allow';
      },
      askNetwork: async (host, port): Promise<PersonAnswer> => {
        const answer = await this.ask(
          t.id,
          'network',
          `${host}:${port}`,
          `${host} is not on this task’s network allowlist.`,
        );
        const entry = port === 80 || port === 443 ? host : `${host}:${port}`;
        if (answer === 'always') {
          const s = this.d.store.settings.get();
          // SECURITY: kept as an answer to a prompt, so later tasks never let it reach internal
          // addresses (a name whose DNS answer turns into 127.0.0.1 stays refused).
          if (!s.networkAllowlist.includes(entry) && !s.promptAllowlist.includes(entry)) {
            const next = this.d.store.settings.update({
              promptAllowlist: [...s.promptAllowlist, entry],
            });
            this.d.events.emit('settings:changed', next);
          }
        }
        if ((answer === 'session' || answer === 'always') && !t.extraHosts.includes(entry)) {
          t.extraHosts.push(entry);
          this.changed(t.id);
        }
        return answer;
      },
      approveAutomation: async (plan: AutomationPlan) => {
        // SECURITY: every automation is its own question, in every approval mode; no answer is
        // remembered (t.allowedTools is not consulted), so "session"/"always" mean this one only.
        const answer = await this.ask(
          t.id,
          'automation',
          plan.name,
          `The agent wants to schedule “${plan.name}”, which runs on its own later:\n${describeAutomationPlan(plan)}`,
          plan,
        );
        return answer === 'deny'
          ? {
              answer: 'deny',
              reason:
                'The person declined to create this automation. Do not try again or another way; say what you wanted to schedule, and they can create it themselves in Automations.',
            }
          : { answer: 'allow' };
      },
    };
  }

  private ask(
    taskId: string,
    kind: Approval['kind'],
    subject: string,
    detail: string,
    automation?: AutomationPlan,
  ): Promise<ApprovalAnswer> {
    if (this.disposed) return Promise.resolve('deny');
    const approval: Approval = {
      id: newId('apr'),
      taskId,
      kind,
      subject,
      detail,
      ...(automation ? { automation } : {}),
      createdAt: Date.now(),
    };
    return new Promise<ApprovalAnswer>((resolve) => {
      this.pending.set(approval.id, { approval, resolve });
      this.d.events.emit('approval:requested', approval);
      this.changed(taskId);
    });
  }

  private resolveApproval(id: string, answer: ApprovalAnswer): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    p.resolve(answer);
    this.d.events.emit('approval:resolved', { id, taskId: p.approval.taskId, answer });
    this.changed(p.approval.taskId);
    return true;
  }

  private scheduleIdleStop(t: LiveTask): void {
    if (this.disposed) return;
    t.idleTimer = setTimeout(
      () => {
        if (t.session.isRunning || this.live.get(t.id) !== t) return;
        this.live.delete(t.id);
        void this.stopVm(t);
      },
      this.d.idleStopMs ?? 10 * 60_000,
    );
    t.idleTimer.unref();
  }

  private async stopVm(t: LiveTask): Promise<void> {
    await t.sandbox?.stop().catch(() => undefined);
    fs.rmSync(t.runDir, { recursive: true, force: true });
  }
}
