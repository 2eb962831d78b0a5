import type { AgentEvent } from '../../shared/agent-events.js';
import type { ChangeFile } from '../../shared/changes-contract.js';
import { PaddockError } from '../../shared/result.js';
import { spendLimitSentence } from '../../shared/usage.js';
import { unattendedApprover } from '../agent/approvals.js';
import type { RunExecutor, RunJob, RunResult } from '../automations/scheduler.js';
import type { AutomationRow } from '../store/automations-repo.js';
import type { Store } from '../store/store.js';
import { resolveGrants } from '../vm/grants.js';
import { reviewShares, type ChangeService } from './changes/service.js';
import type { StagedSource } from './changes/types.js';
import { vmStagedSource } from './changes/vm-source.js';
import type { LiveSession, SessionFactory } from './sessions.js';

/** What an automation run needs from the core. */
export interface SessionRunDeps {
  store: Store;
  dataDir: string;
  sessions: SessionFactory;
  /** Live agent events of a run's session, so an open task view follows it. */
  onAgentEvent?: (sessionId: string, e: AgentEvent) => void;
  /** A run's session started or ended: the task list shows it. */
  onSessionChanged?: (sessionId: string) => void;
  /** Where a run's review folders are staged as it ends (and applied, for `applyChanges: auto`). */
  changes: ChangeService;
  /**
   * Where a run's staged changes are read from; default {@link vmStagedSource} over the run's VM
   * when one booted (none booted: nothing was written). Another source stands in where no VM can
   * run. Null: nothing to stage.
   */
  stagedSource?: (run: {
    sessionId: string;
    live: LiveSession;
    names: string[];
  }) => StagedSource | null;
}

/** A run's VM as the source of what it staged; null when no VM booted (nothing was written). */
function vmSource(run: { live: LiveSession; names: string[] }): StagedSource | null {
  const vm = run.live.vm?.() ?? null;
  return vm ? vmStagedSource(() => vm, run.names) : null;
}

const filesText = (n: number) => `${n} file${n === 1 ? '' : 's'}`;

/** What became of one review folder's staged changes at the end of a run. */
export interface FolderOutcome {
  name: string;
  /** Files written to the folder (automatic apply). */
  applied: number;
  /** Files refused because the person's copy changed since the run read it. */
  conflicts: number;
  /** Files still waiting for the person (review, or refused for another reason). */
  waiting: number;
  /** Why applying failed altogether (the folder gone, …), if it did. */
  failed?: string;
}

/**
 * The inbox's sentence for one folder: "3 files changed in notes: review.", "Applied 3 files to
 * notes (undo within 30 days).", "2 applied, 1 conflict in notes: review.".
 */
export function folderSentence(o: FolderOutcome, journalDays: number): string {
  if (o.failed)
    return `${filesText(o.waiting)} changed in ${o.name} could not be applied (${o.failed.replace(/\.$/, '')}): review.`;
  if (o.applied === 0) {
    if (o.conflicts === 0) return `${filesText(o.waiting)} changed in ${o.name}: review.`;
  } else if (o.conflicts === 0 && o.waiting === 0)
    return `Applied ${filesText(o.applied)} to ${o.name} (undo within ${journalDays} day${journalDays === 1 ? '' : 's'}).`;
  const parts = [
    o.applied ? `${o.applied} applied` : '',
    o.conflicts ? `${o.conflicts} conflict${o.conflicts === 1 ? '' : 's'}` : '',
    o.waiting ? `${o.waiting} not applied` : '',
  ].filter(Boolean);
  return `${parts.join(', ')} in ${o.name}: review.`;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Runs an automation as an agent session made by the one session factory: the automation's
 * folders (resolved and judged again now) and hosts, nobody to ask (tools run, hosts off the
 * allowlist are denied, no automation is made), cancelled when the scheduler aborts (timeout,
 * shutdown, lost lease). The key is read at run time: one entered after start is used. Before
 * its VM stops, what the run wrote in review folders is staged for the person (or applied, for
 * `applyChanges: auto`), and the inbox item says which.
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
        // A review folder's writes are staged in the VM, to be read as the run ends.
        a.folders.map((f) => ({
          path: f.hostPath,
          readOnly: f.readOnly,
          review: f.review === true,
        })),
        { dataDir: this.d.dataDir },
      );
      sessionId = this.d.sessions.create({
        title: `${a.name} (${slot} UTC)`,
        approvalMode: 'auto',
        folders,
        allowHosts: a.allowlist,
        promptHosts: a.promptAllowlist,
        secrets: a.secrets,
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
    let result: RunResult;
    try {
      result = await this.run(live, a, sessionId);
    } finally {
      job.signal.removeEventListener('abort', onAbort);
    }
    try {
      // Before the VM stops: what it staged in the review folders lives in it.
      const changes = await this.settleChanges(
        sessionId,
        live,
        a,
        result.status === 'succeeded' && !job.signal.aborted,
      );
      return changes ? { ...result, changes } : result;
    } finally {
      await live.stop();
      this.d.onSessionChanged?.(sessionId);
    }
  }

  private async run(live: LiveSession, a: AutomationRow, sessionId: string): Promise<RunResult> {
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
    }
  }

  /**
   * Stages what the run wrote in its review folders as one changeset per folder (the session is
   * the changeset's task), applies them when the automation says `auto` and the run finished
   * (journalled: they can be undone; conflicts and refusals stay waiting), and says in one line
   * per folder what became of them, for the inbox. Null when nothing changed. Never throws: a
   * failure is said instead.
   */
  private async settleChanges(
    sessionId: string,
    live: LiveSession,
    a: AutomationRow,
    finished: boolean,
  ): Promise<string | null> {
    const shares = reviewShares(this.d.store.sessions.get(sessionId)?.folders ?? []);
    if (shares.length === 0) return null;
    const names = shares.map((s) => s.name);
    const notes: string[] = [];
    try {
      const source = (this.d.stagedSource ?? vmSource)({ sessionId, live, names });
      if (!source) return null;
      await this.d.changes.stage(sessionId, source, shares);
    } catch (e) {
      // What did stage (another folder) is still listed below.
      notes.push(
        `The changes in ${names.join(', ')} could not all be read for review: ${messageOf(e)}`,
      );
    }
    const auto = a.applyChanges === 'auto';
    const count = (list: ChangeFile[], s: ChangeFile['status']) =>
      list.filter((f) => f.status === s).length;
    const outcomes: FolderOutcome[] = [];
    try {
      for (const cs of this.d.changes.list(sessionId)) {
        let files = this.d.changes.get(cs.id).files;
        let failed: string | undefined;
        if (auto && finished && files.some((f) => f.status === 'pending')) {
          try {
            files = (await this.d.changes.apply(cs.id)).changeset.files;
          } catch (e) {
            failed = messageOf(e);
          }
        }
        const applied = count(files, 'applied');
        const conflicts = count(files, 'conflict');
        const waiting = count(files, 'pending');
        if (applied + conflicts + waiting === 0) continue;
        outcomes.push({
          name: cs.name,
          applied,
          conflicts,
          waiting,
          ...(failed ? { failed } : {}),
        });
      }
    } catch (e) {
      notes.push(`The run's changes could not be listed: ${messageOf(e)}`);
    }
    const days = this.d.store.settings.get().journalDays;
    const lines = outcomes.map((o) => folderSentence(o, days));
    if (auto && !finished && outcomes.length)
      lines.push('Nothing was applied automatically, since the run did not finish.');
    return [...lines, ...notes].join(' ') || null;
  }
}
