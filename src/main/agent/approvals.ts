import type { Approval, ApprovalAnswer, AutomationPlan } from '../../shared/app-contract.js';
import { newId } from '../../shared/ids.js';
import type { SettingsRepo } from '../store/settings-repo.js';
import type { PersonAnswer } from '../vm/egress/proxy.js';
import { AUTOMATION_DECLINED, type Approver } from './session.js';
import { describeAutomationPlan } from './tools/artifacts.js';

/**
 * The approver of a run nobody attends: tools run (auto mode), hosts off the allowlist are denied,
 * and no automation is created (creating one always needs a person's yes).
 */
export const unattendedApprover: Required<Approver> = {
  approveTool: async () => 'allow',
  // SECURITY: an unattended run never widens its allowlist; nobody is there to say yes.
  askNetwork: async () => 'deny',
  // SECURITY: an automation run must not make more automations (a prompt injection would spread).
  approveAutomation: async () => ({
    answer: 'deny',
    reason:
      'This is an automation run with nobody there to agree, so it cannot create automations. Say in your answer what you would schedule; the person can create it in Automations.',
  }),
};

/** How a host is written in an allowlist: bare on 80/443, with its port otherwise. */
function allowlistEntryFor(host: string, port: number): string {
  return port === 80 || port === 443 ? host : `${host}:${port}`;
}

/**
 * Keeps an "always" answer about a host in Settings, as an answer to a prompt: later sessions
 * allow it, and (SECURITY) never let it reach internal addresses, since a name whose DNS answer
 * turns into 127.0.0.1 stays refused for prompt entries. Returns the new settings, or null when
 * the host was already listed.
 */
export function rememberAlways(
  settings: SettingsRepo,
  host: string,
  port: number,
): ReturnType<SettingsRepo['get']> | null {
  const entry = allowlistEntryFor(host, port);
  const s = settings.get();
  if (s.networkAllowlist.includes(entry) || s.promptAllowlist.includes(entry)) return null;
  return settings.update({ promptAllowlist: [...s.promptAllowlist, entry] });
}

/** The one-line summary of a tool call shown in a question. */
export function summariseToolInput(name: string, input: unknown, max = 400): string {
  const i = (input ?? {}) as Record<string, unknown>;
  const s =
    typeof i.command === 'string'
      ? i.command
      : typeof i.path === 'string'
        ? i.path
        : typeof i.url === 'string'
          ? i.url
          : JSON.stringify(input);
  return s.length > max ? s.slice(0, max - 3) + '…' : s;
}

/** What the desk tells the rest of the app. */
export interface ApprovalDeskEvents {
  requested(approval: Approval): void;
  resolved(answer: { id: string; taskId: string; answer: ApprovalAnswer }): void;
}

/**
 * Questions waiting for a person: asked by a session's approver, answered from any window (or
 * refused when the task stops or the app closes). A question is answered once; a second answer
 * is ignored.
 */
export class ApprovalDesk {
  private readonly pending = new Map<
    string,
    { approval: Approval; resolve(a: ApprovalAnswer): void }
  >();
  private closed = false;

  constructor(private readonly on: ApprovalDeskEvents) {}

  ask(
    taskId: string,
    kind: Approval['kind'],
    subject: string,
    detail: string,
    automation?: AutomationPlan,
  ): Promise<ApprovalAnswer> {
    if (this.closed) return Promise.resolve('deny');
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
      this.on.requested(approval);
    });
  }

  /** The person's answer; false when the question was already answered. */
  answer(id: string, answer: ApprovalAnswer): boolean {
    const p = this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id);
    p.resolve(answer);
    this.on.resolved({ id, taskId: p.approval.taskId, answer });
    return true;
  }

  /** The questions waiting on one task. */
  waiting(taskId: string): Approval[] {
    return [...this.pending.values()]
      .filter((p) => p.approval.taskId === taskId)
      .map((p) => p.approval);
  }

  /** Refuses every open question of a task (its Stop button). */
  refuseAll(taskId?: string): void {
    for (const p of [...this.pending.values()])
      if (taskId === undefined || p.approval.taskId === taskId) this.answer(p.approval.id, 'deny');
  }

  /** Refuses every open question, and every later one at once (the app is closing). */
  close(): void {
    this.closed = true;
    this.refuseAll();
  }
}

/** What a person's approver remembers and reports for one session. */
export interface PersonApproverHooks {
  /** A host the person allowed for this session or always (shown with the task's allowlist). */
  hostAllowed?(entry: string): void;
  /** Settings changed because of an "always" answer. */
  settingsChanged?(settings: ReturnType<SettingsRepo['get']>): void;
}

/**
 * The approver of a session a person attends through the desk (the app, the browser): a tool
 * allowed for the session is not asked about again; an "always" host is remembered as a prompt
 * answer; every automation is its own question.
 */
export function deskApprover(
  desk: ApprovalDesk,
  taskId: string,
  settings: SettingsRepo,
  hooks: PersonApproverHooks = {},
): Required<Approver> {
  const allowedTools = new Set<string>();
  return {
    approveTool: async (call) => {
      if (allowedTools.has(call.name)) return 'allow';
      const answer = await desk.ask(
        taskId,
        'tool',
        call.name,
        `${call.name}: ${summariseToolInput(call.name, call.input)}`,
      );
      if (answer === 'session' || answer === 'always') allowedTools.add(call.name);
      return answer === 'deny' ? 'deny' : 'allow';
    },
    askNetwork: async (host, port): Promise<PersonAnswer> => {
      const answer = await desk.ask(
        taskId,
        'network',
        `${host}:${port}`,
        `${host} is not on this task’s network allowlist.`,
      );
      if (answer === 'always') {
        const next = rememberAlways(settings, host, port);
        if (next) hooks.settingsChanged?.(next);
      }
      if (answer === 'session' || answer === 'always')
        hooks.hostAllowed?.(allowlistEntryFor(host, port));
      return answer;
    },
    approveAutomation: async (plan: AutomationPlan) => {
      // SECURITY: every automation is its own question, in every approval mode; no answer is
      // remembered (allowedTools is not consulted), so "session"/"always" mean this one only.
      const answer = await desk.ask(
        taskId,
        'automation',
        plan.name,
        `The agent wants to schedule “${plan.name}”, which runs on its own later:\n${describeAutomationPlan(plan)}`,
        plan,
      );
      return answer === 'deny'
        ? { answer: 'deny', reason: AUTOMATION_DECLINED }
        : { answer: 'allow' };
    },
  };
}
