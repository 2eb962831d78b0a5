import type Anthropic from '@anthropic-ai/sdk';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentEvent } from '../../shared/agent-events.js';
import { PaddockError } from '../../shared/result.js';
import {
  AgentSession,
  thinkingFromBudget,
  type AgentSettings,
  type Approver,
} from '../agent/session.js';
import type { ToolHost } from '../agent/tools/types.js';
import type { Store } from '../store/store.js';
import type { VmBackend } from '../vm/backend.js';
import { parseFolderArg, resolveGrants } from '../vm/grants.js';
import { requireImage } from '../vm/image.js';
import { Sandbox } from '../vm/sandbox.js';
import type { RunExecutor, RunJob, RunResult } from './scheduler.js';

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

/** What an automation run needs from the host: the store, the model client and the VM backend. */
export interface AgentExecutorOptions {
  store: Store;
  dataDir: string;
  client: Anthropic;
  /** Makes the VM backend, on first use only: a run that calls no tool boots no VM. */
  backend: () => VmBackend;
  /** Model settings; default from the store's settings. */
  settings?: Partial<AgentSettings>;
  onAgentEvent?: (runId: string, e: AgentEvent) => void;
}

/**
 * Runs an automation as an agent session: the automation's folders (resolved and checked again
 * now) and allowlist, auto approval (nobody is there to ask; hosts off the allowlist are denied),
 * cancelled when the scheduler aborts (timeout, shutdown, lost lease).
 */
export class AgentRunExecutor implements RunExecutor {
  constructor(private readonly o: AgentExecutorOptions) {}

  async execute(job: RunJob): Promise<RunResult> {
    const { store } = this.o;
    const a = job.automation;
    const settings = store.settings.get();
    const shares = resolveGrants(a.folders.map(parseFolderArg), { dataDir: this.o.dataDir });
    const allowlist = [...new Set([...settings.networkAllowlist, ...a.allowlist])];
    // SECURITY: prompt answers (Settings' "always" ones, the automation's own) stay prompt entries.
    const promptAllowlist = [...new Set([...settings.promptAllowlist, ...a.promptAllowlist])];
    const model = this.o.settings?.model ?? settings.model;
    const sessionId = store.sessions.create({
      title: `${a.name} (${new Date(job.run.slotAt).toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
      model,
      approvalMode: 'auto',
      folders: shares,
      allowlist,
      promptAllowlist,
    }).id;
    job.setSession(sessionId);

    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-auto-'));
    let sandbox: Promise<Sandbox> | undefined;
    const sb = (): Promise<Sandbox> =>
      (sandbox ??= requireImage(this.o.dataDir).then(
        (image) =>
          new Sandbox({
            backend: this.o.backend(),
            imageDir: image.dir,
            sessionDir: path.join(this.o.dataDir, 'sessions', sessionId),
            runDir,
            shares,
            allowHosts: allowlist,
            promptHosts: promptAllowlist,
            memoryMb: settings.vmMemoryMb,
            cpus: settings.vmCpus,
            onEgress: (d) => store.egressLog.record({ ...d, sessionId }),
            askPerson: (h, p) => session.askNetwork(h, p),
          }),
      ));
    // The VM (and the image check) only when a tool first needs them.
    const lazyHost: ToolHost = {
      exec: async (req) => (await sb()).exec(req),
      readFile: async (p) => (await sb()).readFile(p),
      writeFile: async (p, d, o) => (await sb()).writeFile(p, d, o),
      stat: async (p) => (await sb()).stat(p),
      list: async (p) => (await sb()).list(p),
    };
    const session: AgentSession = new AgentSession({
      store,
      client: this.o.client,
      sessionId,
      host: () => lazyHost,
      settings: {
        model,
        maxTokens: this.o.settings?.maxTokens ?? settings.maxTokens,
        thinking: this.o.settings?.thinking ?? thinkingFromBudget(settings.thinkingBudget),
        contextBudgetTokens: this.o.settings?.contextBudgetTokens ?? 400_000,
      },
      approvalMode: 'auto',
      approver: unattendedApprover,
      prompt: { shares, allowlist: [...allowlist, ...promptAllowlist], timeZone: a.tzid },
      // No schedule_automation here: nobody is there to agree to a new automation.
    });
    if (this.o.onAgentEvent) session.on('event', (e) => this.o.onAgentEvent!(job.run.id, e));
    const s = session;
    const onAbort = () => s.cancel();
    job.signal.addEventListener('abort', onAbort);
    if (job.signal.aborted) s.cancel();
    try {
      const outcome = await s.run(a.prompt);
      if (outcome.stopReason === 'cancelled')
        return { status: 'failed', finalText: outcome.finalText, error: 'The run was stopped.' };
      if (outcome.stopReason === 'refusal')
        return {
          status: 'failed',
          finalText: outcome.finalText,
          error: 'The model declined this task.',
        };
      return { status: 'succeeded', finalText: outcome.finalText };
    } catch (e) {
      const message = e instanceof PaddockError ? e.message : (e as Error).message;
      return { status: 'failed', finalText: '', error: message };
    } finally {
      job.signal.removeEventListener('abort', onAbort);
      if (sandbox) await (await sandbox.catch(() => null))?.stop().catch(() => undefined);
      fs.rmSync(runDir, { recursive: true, force: true });
    }
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
