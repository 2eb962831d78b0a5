import type { ModelInfo } from '@anthropic-ai/sdk/resources/models';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentEvent } from '../../shared/agent-events.js';
import type { Effort } from '../../shared/api.js';
import { PaddockError } from '../../shared/result.js';
import { createAnthropic } from '../agent/model.js';
import { ModelCatalog } from '../agent/models.js';
import { AgentSession, type Approver } from '../agent/session.js';
import { ToolError, type AutomationScheduler, type ToolHost } from '../agent/tools/types.js';
import type { SessionRow } from '../store/sessions-repo.js';
import type { Store } from '../store/store.js';
import type { ShareSpec, Vm, VmBackend } from '../vm/backend.js';
import { checkedAllowlistEntry } from '../vm/egress/allowlist.js';
import type { ProxyCa } from '../vm/egress/proxy-ca.js';
import type { InterceptPolicy, ProxySecret } from '../vm/egress/secret-types.js';
import { findImage, IMAGE_MISSING_HINT } from '../vm/image.js';
import type { BoundaryFinding } from '../vm/protected-paths.js';
import { Sandbox } from '../vm/sandbox.js';
import type { WarmPool } from '../vm/warm-pool.js';
import type { ApiKeys, ModelCredentials } from './api-keys.js';

/** Every entry checked as the egress proxy will read it; BAD_ALLOW_HOST with a sentence if not. */
export function checkAllowlists(configured: string[], prompt: string[] = []): void {
  for (const e of configured) checkedAllowlistEntry(e, 'configured');
  for (const e of prompt) checkedAllowlistEntry(e, 'prompt');
}

/** Folders and hosts with where each came from: what a session or automation is given. */
export interface SessionGrants {
  folders: ShareSpec[];
  /** Hosts a person typed (Settings' included). */
  allowlist: string[];
  /** Hosts allowed by answering a prompt ("always"); never internal addresses. */
  promptAllowlist: string[];
}

/** The secrets a session may be given (the core's SecretsService). */
export interface SessionSecrets {
  /** The hosts of these secrets; SECRET_NOT_FOUND for a name that is not stored. */
  hostsOf(names: string[]): string[];
  /** Each named secret with a fresh placeholder; SECRET_NOT_FOUND, SECRETS_LOCKED. */
  forSession(names: string[]): ProxySecret[];
}

/** What the core builds sessions from; wired once. */
export interface SessionFactoryDeps {
  store: Store;
  dataDir: string;
  backend: VmBackend;
  apiKeys: ApiKeys;
  /** VMs booted ahead (the new-task page); a session that may use them says so when opened. */
  pool?: WarmPool;
  /** The agent's `schedule_automation` for a session with these grants. */
  scheduleFor?: (grants: SessionGrants) => AutomationScheduler;
  /** Stored secrets; without it a session that names a secret cannot be made. */
  secrets?: SessionSecrets;
  /** The per-install CA the egress proxy intercepts with (opened once, when first needed). */
  proxyCa?: () => Promise<ProxyCa>;
  /** Roots the proxy trusts upstream instead of the system's (tests: a loopback test CA). */
  upstreamCa?: string[];
}

/** A session to store. Settings' allowlists are added to the hosts given here. */
export interface NewSession {
  title: string;
  model?: string | undefined;
  approvalMode?: 'auto' | 'ask' | undefined;
  /** Resolved and judged by resolveGrants already. */
  folders: ShareSpec[];
  /** Hosts the person typed for this session. */
  allowHosts?: string[] | undefined;
  /** Prompt answers of its own (an automation's). */
  promptHosts?: string[] | undefined;
  /** Secrets it may use, by name; their hosts join its allowlist. */
  secrets?: string[] | undefined;
  /** Hosts pinned for this session (`--pin-host`), on top of Settings' and the secrets'. */
  pinHosts?: string[] | undefined;
}

/** How one live session is wired to whoever attends it. */
export interface OpenSession {
  /** Answers the session's questions: the approval desk, a terminal, or nobody. */
  approver: Approver;
  /**
   * Offer `schedule_automation`. Its every plan is asked through the approver; an unattended run
   * is not offered it at all.
   */
  canSchedule: boolean;
  /** The time zone the model is told (automations: their own). */
  timeZone?: string;
  /** This run only: another model than the stored one (`paddock run --model` on a resume). */
  model?: string | undefined;
  /** This run only: another effort than Settings' (`paddock run --effort`). */
  effort?: Effort | undefined;
  approvalMode?: 'auto' | 'ask' | undefined;
  /** Take a VM booted ahead for the same folders, if one is waiting. */
  useWarmPool?: boolean;
  /**
   * Stop the run once its model calls cost this many dollars (an automation's limit); it then
   * ends with stop reason `spend_limit`. Unset: no limit.
   */
  spendLimitUsd?: number | undefined;
  onEvent?: (e: AgentEvent) => void;
  /** What the boundary refused or undid in read-write grants. */
  onBoundary?: (findings: readonly BoundaryFinding[]) => void;
}

/** A live session's secrets and pins, before the CA is opened. */
interface SessionIntercept {
  policy: InterceptPolicy;
  /** Each secret's environment variable with its placeholder. */
  guestEnv: Record<string, string>;
  /** What the model is told: variable names and hosts (no placeholders). */
  prompt: { envName: string; hosts: string[] }[];
}

/** A session with its sandbox, which boots on the first tool call. */
export interface LiveSession {
  readonly id: string;
  readonly session: AgentSession;
  /** Stops the VM if one booted and removes the run's temporary folder. */
  stop(): Promise<void>;
  /** The sandbox's VM if one was booted (to read what it staged in review grants), else null. */
  vm?(): Promise<Vm> | null;
}

const NO_KEY =
  'There is no Anthropic API key yet: enter it in Settings (or set ANTHROPIC_API_KEY), then try again.';

/**
 * The one way a sandboxed agent session is made — for tasks, automation runs and `paddock run`:
 * the stored session (its folders and allowlists checked and recorded with their sources), then
 * the live AgentSession with its approver, a sandbox VM booted only when a tool first needs it,
 * the egress log, and `schedule_automation` where a person can agree to it.
 */
export class SessionFactory {
  constructor(private readonly d: SessionFactoryDeps) {}

  /** Stores a new session: Settings' allowlists added, every entry checked before anything is saved. */
  create(req: NewSession): SessionRow {
    const settings = this.d.store.settings.get();
    const secrets = [...new Set(req.secrets ?? [])];
    // A secret's hosts are where the person means it to go: reachable without a prompt.
    const secretHosts = secrets.length > 0 ? this.secretStore().hostsOf(secrets) : [];
    const allowlist = [
      ...new Set([...settings.networkAllowlist, ...(req.allowHosts ?? []), ...secretHosts]),
    ];
    const pinHosts = [...new Set(req.pinHosts ?? [])].map((h) =>
      checkedAllowlistEntry(h, 'configured'),
    );
    // SECURITY: "always" answers to prompts stay prompt entries (never internal addresses).
    const promptAllowlist = [
      ...new Set([...settings.promptAllowlist, ...(req.promptHosts ?? [])]),
    ].filter((h) => !allowlist.includes(h));
    checkAllowlists(allowlist, promptAllowlist);
    const title = req.title.trim().split('\n')[0] ?? '';
    return this.d.store.sessions.create({
      title: title.length > 80 ? title.slice(0, 79) + '…' : title,
      model: req.model ?? settings.model,
      approvalMode: req.approvalMode ?? settings.approvalMode,
      folders: req.folders,
      allowlist,
      promptAllowlist,
      secrets,
      pinHosts,
    });
  }

  /** SECRET_NOT_FOUND (with how to add it) unless every named secret is stored. */
  checkSecrets(names: string[]): void {
    this.secretStore().hostsOf(names);
  }

  private secretStore(): SessionSecrets {
    if (!this.d.secrets)
      throw new PaddockError('SECRETS_UNAVAILABLE', 'This Paddock cannot use stored secrets.');
    return this.d.secrets;
  }

  /**
   * What the egress proxy intercepts for this session (its secrets with fresh placeholders, the
   * pinned hosts), or undefined when it has neither: then no TLS is ever terminated.
   */
  private interceptFor(row: SessionRow): SessionIntercept | undefined {
    const pinHosts = [...new Set([...this.d.store.settings.get().pinnedHosts, ...row.pinHosts])];
    const secrets = row.secrets.length > 0 ? this.secretStore().forSession(row.secrets) : [];
    if (secrets.length === 0 && pinHosts.length === 0) return undefined;
    return {
      policy: { secrets, pinHosts },
      guestEnv: Object.fromEntries(secrets.map((s) => [s.envName, s.placeholder])),
      prompt: secrets.map((s) => ({ envName: s.envName, hosts: s.hosts })),
    };
  }

  /** The proxy's interception for a sandbox: the policy with the per-install CA. */
  private async interception(
    i: SessionIntercept,
  ): Promise<NonNullable<ConstructorParameters<typeof Sandbox>[0]['intercept']>> {
    if (!this.d.proxyCa)
      throw new PaddockError('SECRETS_UNAVAILABLE', 'This Paddock has no proxy CA for secrets.');
    return {
      ca: await this.d.proxyCa(),
      policy: i.policy,
      ...(this.d.upstreamCa ? { upstreamCa: this.d.upstreamCa } : {}),
    };
  }

  /** The stored session, or a NOT_FOUND error. */
  row(id: string): SessionRow {
    const row = this.d.store.sessions.get(id);
    if (!row) throw new PaddockError('NOT_FOUND', 'That task no longer exists.');
    return row;
  }

  /**
   * What each model accepts, from the Models API of the endpoint in use (kept a day, on disk, in
   * the data folder), the built-in table when it cannot be reached.
   */
  models(creds: ModelCredentials): ModelCatalog {
    const endpoint = creds.baseURL ?? 'https://api.anthropic.com';
    const key = `${endpoint}\n${creds.apiKey}`;
    if (this.catalog?.key !== key) {
      const name = createHash('sha256').update(endpoint).digest('hex').slice(0, 12);
      const client = createAnthropic(creds);
      this.catalog = {
        key,
        catalog: new ModelCatalog({
          list: async () => {
            const out: ModelInfo[] = [];
            for await (const m of client.models.list({ limit: 100 })) out.push(m);
            return out;
          },
          cacheFile: path.join(this.d.dataDir, 'cache', `models-${name}.json`),
        }),
      };
    }
    return this.catalog.catalog;
  }
  private catalog: { key: string; catalog: ModelCatalog } | undefined;

  /** Whether a key is there now (entered, or ANTHROPIC_API_KEY). */
  hasCredentials(): boolean {
    return this.d.apiKeys.resolve() !== null;
  }

  /** The key and endpoint sessions use now; a NO_API_KEY error that says where to enter one. */
  credentials(): ModelCredentials {
    const creds = this.d.apiKeys.resolve();
    if (!creds) throw new PaddockError('NO_API_KEY', NO_KEY);
    return creds;
  }

  /** The live session of a stored one, ready to run; throws NO_API_KEY without a key. */
  open(id: string, o: OpenSession): LiveSession {
    const { store, dataDir } = this.d;
    const row = this.row(id);
    const creds = this.credentials();
    const settings = store.settings.get();
    const grants: SessionGrants = {
      folders: row.folders as ShareSpec[],
      allowlist: row.allowlist,
      promptAllowlist: row.promptAllowlist,
    };
    // Placeholders are made once per live session; a secret removed since refuses to open it.
    const intercept = this.interceptFor(row);
    const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-'));
    let sandbox: Promise<Sandbox> | undefined;
    let stopped = false;
    const bootSandbox = async (): Promise<Sandbox> => {
      if (stopped) throw new ToolError('This session was stopped.');
      const image = await findImage(dataDir).catch(() => null);
      if (!image) throw new ToolError(IMAGE_MISSING_HINT);
      return new Sandbox({
        backend: this.d.backend,
        imageDir: image.dir,
        sessionDir: path.join(dataDir, 'sessions', id),
        runDir,
        shares: grants.folders,
        allowHosts: grants.allowlist,
        promptHosts: grants.promptAllowlist,
        memoryMb: settings.vmMemoryMb,
        cpus: settings.vmCpus,
        onEgress: (e) => store.egressLog.record({ ...e, sessionId: id }),
        ...(intercept
          ? { intercept: await this.interception(intercept), guestEnv: intercept.guestEnv }
          : {}),
        askPerson: (h, p) => session.askNetwork(h, p),
        ...(o.onBoundary ? { onBoundary: o.onBoundary } : {}),
        ...(o.useWarmPool && this.d.pool ? { pool: this.d.pool } : {}),
      });
    };
    const sb = (): Promise<Sandbox> => {
      if (!sandbox) {
        const p = bootSandbox();
        sandbox = p;
        // A missing image is said once per call, and the next call looks again (it may be built).
        p.catch(() => {
          if (sandbox === p) sandbox = undefined;
        });
      }
      return sandbox;
    };
    // The VM (and the image check) only when a tool first needs them: a reply boots nothing.
    const host: ToolHost = {
      exec: async (req) => (await sb()).exec(req),
      readFile: async (p) => (await sb()).readFile(p),
      writeFile: async (p, data, opts) => (await sb()).writeFile(p, data, opts),
      stat: async (p) => (await sb()).stat(p),
      list: async (p) => (await sb()).list(p),
    };
    const scheduler = o.canSchedule ? this.d.scheduleFor?.(grants) : undefined;
    const session: AgentSession = new AgentSession({
      store,
      client: createAnthropic(creds),
      sessionId: id,
      models: this.models(creds),
      host: () => host,
      settings: {
        model: o.model ?? row.model,
        maxTokens: settings.maxTokens,
        effort: o.effort ?? settings.effort,
      },
      approvalMode: (o.approvalMode ?? row.approvalMode) === 'ask' ? 'ask' : 'auto',
      approver: o.approver,
      prompt: {
        shares: grants.folders,
        allowlist: [...grants.allowlist, ...grants.promptAllowlist],
        ...(intercept?.prompt.length ? { secrets: intercept.prompt } : {}),
        timeZone: o.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone,
      },
      ...(scheduler ? { scheduleAutomation: scheduler } : {}),
      ...(o.spendLimitUsd !== undefined ? { spendLimitUsd: o.spendLimitUsd } : {}),
    });
    if (o.onEvent) session.on('event', o.onEvent);
    return {
      id,
      session,
      vm: () => (sandbox ? sandbox.then((s) => s.ready()) : null),
      stop: async () => {
        stopped = true;
        const s = sandbox;
        sandbox = undefined;
        if (s) await (await s.catch(() => null))?.stop().catch(() => undefined);
        fs.rmSync(runDir, { recursive: true, force: true });
      },
    };
  }
}
