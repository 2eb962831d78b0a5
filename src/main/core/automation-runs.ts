import type { AgentEvent } from '../../shared/agent-events.js';
import { PaddockError } from '../../shared/result.js';
import { spendLimitSentence } from '../../shared/usage.js';
import { unattendedApprover } from '../agent/approvals.js';
import type { RunExecutor, RunJob, RunResult } from '../automations/scheduler.js';
import type { Store } from '../store/store.js';
import { resolveGrants } from '../vm/grants.js';
import type { SessionFactory } from './sessions.js';

/** What an automation run needs from the core. */
export interface SessionRunDeps {
  store: Store;
  dataDir: string;
  sessions: SessionFactory;
  /** Live agent events of a run's session, so an open task view follows it. */
  onAgentEvent?: (sessionId: string, e: AgentEvent) => void;
  /** A run's session started or ended: the task list shows it. */
  onSessionChanged?: (sessionId: string) => void;
}

/**
 * Runs an automation as an agent session made by the one session factory: the automation's
 * folders (resolved and judged again now) and hosts, nobody to ask (tools run, hosts off the
 * allowlist are denied, no automation is made), cancelled when the scheduler aborts (timeout,
 * shutdown, lost lease). The key is read at run time: one entered after start is used.
 */
export class SessionRunExecutor implements RunExecutor {
  constructor(private readonly d: SessionRunDeps) {}

  async execute(job: RunJob): Promise<RunResult> {
    if (!this.d.sessions.hasCredentials())
      return {
        status: 'failed',
        finalText: '',
        error: 'There is no Anthropic API key: enter it in Settings so automations can run.',
      };
    const a = job.automation;
    const slot = new Date(job.run.slotAt).toISOString().slice(0, 16).replace('T', ' ');
    let sessionId: string;
    try {
      // SECURITY: judged again at run time, so a folder swapped for a symlink since is caught.
      const folders = resolveGrants(
        a.folders.map((f) => ({ path: f.hostPath, readOnly: f.readOnly })),
        { dataDir: this.d.dataDir },
      );
      sessionId = this.d.sessions.create({
        title: `${a.name} (${slot} UTC)`,
        approvalMode: 'auto',
        folders,
        allowHosts: a.allowlist,
        promptHosts: a.promptAllowlist,
      }).id;
    } catch (e) {
      return { status: 'failed', finalText: '', error: (e as Error).message };
    }
    job.setSession(sessionId);
    this.d.onSessionChanged?.(sessionId);
    const live = this.d.sessions.open(sessionId, {
      approver: unattendedApprover,
      // No schedule_automation here: nobody is there to agree to a new automation.
      canSchedule: false,
      timeZone: a.tzid,
      approvalMode: 'auto',
      ...(a.spendLimitUsd !== null ? { spendLimitUsd: a.spendLimitUsd } : {}),
      ...(this.d.onAgentEvent ? { onEvent: (e) => this.d.onAgentEvent!(sessionId, e) } : {}),
    });
    const onAbort = () => live.session.cancel();
    job.signal.addEventListener('abort', onAbort);
    if (job.signal.aborted) live.session.cancel();
    try {
      const outcome = await live.session.run(a.prompt);
      if (outcome.stopReason === 'cancelled')
        return { status: 'failed', finalText: outcome.finalText, error: 'The run was stopped.' };
      if (outcome.stopReason === 'refusal')
        return {
          status: 'failed',
          finalText: outcome.finalText,
          error: 'The model declined this task.',
        };
      if (outcome.stopReason === 'spend_limit')
        return {
          status: 'failed',
          finalText: outcome.finalText,
          error: spendLimitSentence(
            a.spendLimitUsd ?? 0,
            this.d.store.sessions.get(sessionId)?.costUsd ?? 0,
          ),
        };
      return { status: 'succeeded', finalText: outcome.finalText };
    } catch (e) {
      const message = e instanceof PaddockError ? e.message : (e as Error).message;
      return { status: 'failed', finalText: '', error: message };
    } finally {
      job.signal.removeEventListener('abort', onAbort);
      await live.stop();
      this.d.onSessionChanged?.(sessionId);
    }
  }
}
