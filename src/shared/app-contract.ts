import { z } from 'zod';
import type { AgentEvent } from './agent-events.js';
import { usageTotalsSchema } from './usage.js';

/**
 * The desktop app's part of the API contract (tasks, approvals, folder grants, the API key, the
 * guest image, logs). Kept in its own file and spread into `requests`/`events` in api.ts, so the
 * other areas' additions there never collide with these.
 */

const empty = z.object({}).strict();

/** A folder the person granted, by id; the host path is shown, never typed back by the page. */
export const grantSchema = z.object({
  id: z.string(),
  hostPath: z.string(),
  name: z.string(),
  readOnly: z.boolean(),
});
export type Grant = z.infer<typeof grantSchema>;

/** A folder as a task sees it: where it is on the host, its /mnt name, read-only or not. */
export const taskFolderSchema = z.object({
  hostPath: z.string(),
  name: z.string(),
  readOnly: z.boolean(),
  /** Its changes are staged for review rather than written to the folder. */
  review: z.boolean().optional(),
});
export type TaskFolder = z.infer<typeof taskFolderSchema>;

/**
 * How a granted folder is shared, in the words every surface uses (the automation's plan, its
 * page, `paddock automations show`): read-only, read-write with changes reviewed, or written
 * directly.
 */
export function folderModeText(f: { readOnly: boolean; review?: boolean | undefined }): string {
  return f.readOnly
    ? 'read-only'
    : f.review
      ? 'read-write, changes reviewed'
      : 'read-write, written directly';
}

/** One task in the sidebar and at the top of its view. */
export const taskSummarySchema = z.object({
  id: z.string(),
  title: z.string(),
  /** idle, running, done, cancelled, error, refusal, … as the agent session stored it. */
  status: z.string(),
  model: z.string(),
  approvalMode: z.enum(['auto', 'ask']),
  folders: z.array(taskFolderSchema),
  /** The allowlist in force: the task's own plus hosts the person allowed while it ran. */
  allowlist: z.array(z.string()),
  /** Uncached input tokens. */
  inputTokens: z.number(),
  outputTokens: z.number(),
  /** Input read from the prompt cache (billed at a tenth of input). */
  cacheReadTokens: z.number(),
  /** Input written to the prompt cache (billed at 1.25× input). */
  cacheWriteTokens: z.number(),
  costUsd: z.number(),
  createdAt: z.number(),
  updatedAt: z.number(),
  /** Questions waiting for the person's answer. */
  pendingApprovals: z.number().int(),
});
export type TaskSummary = z.infer<typeof taskSummarySchema>;

/**
 * What an automation the agent asks to create (`schedule_automation`) would get. Shown to the
 * person before it exists, because it outlives the task with the task's folders and network.
 */
export const automationPlanSchema = z.object({
  name: z.string(),
  /** What each run is told to do. */
  prompt: z.string(),
  /** The schedule as written, e.g. `every weekday at 9:00`. */
  schedule: z.string(),
  /** The IANA zone its times are in. */
  timeZone: z.string(),
  /** The first run in that zone, as a person reads it; null when the schedule has none left. */
  firstRun: z.string().nullable(),
  /** Every folder its runs get, with the host path (and, read-write, whether it is reviewed). */
  folders: z.array(
    z.object({ hostPath: z.string(), readOnly: z.boolean(), review: z.boolean().optional() }),
  ),
  /** Every host its runs may reach (the allowlist in Settings included). */
  hosts: z.array(z.string()),
});
export type AutomationPlan = z.infer<typeof automationPlanSchema>;

/**
 * A question the running agent is waiting on: a tool call in ask mode, a host to reach, or an
 * automation to create (asked in every mode).
 */
export const approvalSchema = z.object({
  id: z.string(),
  taskId: z.string(),
  kind: z.enum(['tool', 'network', 'automation']),
  /** The tool's name, `host:port`, or the automation's name. */
  subject: z.string(),
  /** What the tool would do (its command or path), why the host is not allowed, or the plan. */
  detail: z.string(),
  /** For `automation`: what it would get. */
  automation: automationPlanSchema.optional(),
  createdAt: z.number(),
});
export type Approval = z.infer<typeof approvalSchema>;

/**
 * How the person can answer: `once`/`session`/`always`/`deny`. For an automation only `deny`
 * refuses; any other answer creates that one automation and is never remembered.
 */
export const approvalAnswerSchema = z.enum(['once', 'session', 'always', 'deny']);
export type ApprovalAnswer = z.infer<typeof approvalAnswerSchema>;

/** One decision of the egress proxy for a task, shown so the person sees what was reached. */
export const networkDecisionSchema = z.object({
  at: z.number(),
  host: z.string(),
  port: z.number(),
  allowed: z.boolean(),
  reason: z.string(),
  /** `CONNECT`, or the method of a request the proxy saw (plain HTTP, or inside intercepted TLS). */
  method: z.string().optional(),
  /** Names of the secrets swapped into this request (never values). */
  secrets: z.array(z.string()).optional(),
  /** Refused because the host is pinned and a credential did not come from a placeholder. */
  pinRefused: z.boolean().optional(),
  /** The proxy terminated TLS for it (a host with a secret or a pin). */
  intercepted: z.boolean().optional(),
});

const approvalEventKind = z.enum(['tool', 'network']);

/** The zod form of AgentEvent (agent-events.ts), so live events travel inside the contract. */
export const agentEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('session'), sessionId: z.string(), model: z.string() }),
  z.object({ type: z.literal('user'), text: z.string() }),
  z.object({ type: z.literal('text-delta'), text: z.string() }),
  z.object({ type: z.literal('thinking-delta'), text: z.string() }),
  z.object({
    type: z.literal('assistant'),
    text: z.string(),
    stopReason: z.string().nullable(),
    inputTokens: z.number(),
    outputTokens: z.number(),
    cacheReadTokens: z.number(),
    cacheWriteTokens: z.number(),
  }),
  z.object({ type: z.literal('tool-start'), id: z.string(), name: z.string(), input: z.unknown() }),
  z.object({
    type: z.literal('tool-output'),
    id: z.string(),
    stream: z.enum(['stdout', 'stderr']),
    text: z.string(),
  }),
  z.object({
    type: z.literal('tool-result'),
    id: z.string(),
    name: z.string(),
    content: z.string(),
    isError: z.boolean(),
    exitCode: z.number().optional(),
    durationMs: z.number(),
  }),
  z.object({
    type: z.literal('approval'),
    kind: approvalEventKind,
    subject: z.string(),
    answer: z.string(),
    reason: z.string().optional(),
  }),
  z.object({
    type: z.literal('retry'),
    attempt: z.number(),
    delayMs: z.number(),
    reason: z.string(),
  }),
  z.object({ type: z.literal('notice'), message: z.string() }),
  z.object({
    type: z.literal('context'),
    action: z.enum(['cleared', 'compacted']),
    tokensBefore: z.number(),
    tokensAfter: z.number(),
    message: z.string(),
  }),
  z.object({
    type: z.literal('artifact'),
    id: z.string(),
    title: z.string(),
    kind: z.string(),
    version: z.number(),
  }),
  z.object({ type: z.literal('error'), code: z.string(), message: z.string() }),
  z.object({ type: z.literal('done'), stopReason: z.string(), costUsd: z.number() }),
]) as unknown as z.ZodType<AgentEvent>;

/** Where the API key comes from; the key itself never leaves the main process. */
export const apiKeyStatusSchema = z.object({
  configured: z.boolean(),
  source: z.enum(['stored', 'env', 'none']),
  /** e.g. `sk-ant-…abcd`; null when there is no key. */
  masked: z.string().nullable(),
  /** Set when ANTHROPIC_BASE_URL points somewhere else than Anthropic. */
  baseURL: z.string().nullable(),
  /** Whether a key entered here outlives the process (Electron safeStorage) or not (web host). */
  persistent: z.boolean(),
});
export type ApiKeyStatus = z.infer<typeof apiKeyStatusSchema>;

/** Progress of `image:build`, streamed as `image:progress`. */
export const imageProgressSchema = z.object({
  state: z.enum(['running', 'done', 'failed']),
  step: z.string(),
  fraction: z.number().min(0).max(1),
  message: z.string().optional(),
});
export type ImageProgress = z.infer<typeof imageProgressSchema>;

/**
 * A file a task changed, as its preview shows it (`tasks:file`): text up to 1 MB, an image up to
 * 5 MB as a `data:` address, or only what it is (binary, too large, gone).
 */
export const taskFileSchema = z.object({
  kind: z.enum(['text', 'image', 'binary', 'too-large', 'missing']),
  /** As asked: `share/relative/path`. */
  path: z.string(),
  /** Bytes on disk (0 when missing). */
  size: z.number(),
  /** The text, for `text`. */
  content: z.string().optional(),
  /** `data:image/…;base64,…`, for `image`. */
  dataUrl: z.string().optional(),
  /** The highlight.js language guessed from the name, for `text`. */
  language: z.string().optional(),
  /** The text before the task's edits, where the stored tool calls tell it. */
  before: z.string().optional(),
});
export type TaskFile = z.infer<typeof taskFileSchema>;

/**
 * A granted folder for a task. A read-write folder is staged for review unless `review` is
 * false: the agent's changes wait in the VM until the person applies them.
 */
const folderRequest = z
  .object({ id: z.string().min(1), readOnly: z.boolean(), review: z.boolean().optional() })
  .strict();

/** Tokens and cost of every model call in one calendar month (tasks and automation runs alike). */
export const usageMonthSchema = usageTotalsSchema.extend({
  /** The month as `2026-11`, in the summary's time zone. */
  month: z.string(),
  /** Its first millisecond, and the first millisecond of the month after (epoch ms). */
  from: z.number(),
  to: z.number(),
});
export type UsageMonth = z.infer<typeof usageMonthSchema>;

/** Request/response schemas of the app's channels (spread into `requests` in api.ts). */
export const appRequests = {
  'tasks:create': {
    req: z
      .object({
        prompt: z.string().trim().min(1, 'Say what you want done.'),
        /** Granted folders by grant id; the first is the working folder. */
        folders: z.array(folderRequest).max(16),
        approvalMode: z.enum(['auto', 'ask']).optional(),
        /** Extra hosts for this task, on top of the allowlist in settings. */
        allowlist: z.array(z.string().min(1)).max(200).optional(),
        /** Secrets the task may use (by name); their hosts join its allowlist. */
        secrets: z.array(z.string().min(1).max(64)).max(32).optional(),
      })
      .strict(),
    res: taskSummarySchema,
  },
  'tasks:list': {
    req: z.object({ query: z.string().max(200).optional() }).strict(),
    res: z.object({ tasks: z.array(taskSummarySchema) }),
  },
  'tasks:get': {
    req: z.object({ id: z.string().min(1) }).strict(),
    res: z.object({
      task: taskSummarySchema,
      /** The stored conversation rebuilt as the events a live view would have seen. */
      events: z.array(agentEventSchema),
      /** Files the task wrote, relative to the host folders: `name/relative/path`. */
      filesChanged: z.array(z.string()),
      approvals: z.array(approvalSchema),
      network: z.array(networkDecisionSchema),
      running: z.boolean(),
    }),
  },
  /** The preview of one file a task changed (a name from `filesChanged`). */
  'tasks:file': {
    req: z.object({ id: z.string().min(1), path: z.string().min(1).max(4096) }).strict(),
    res: taskFileSchema,
  },
  'tasks:send': {
    req: z.object({ id: z.string().min(1), prompt: z.string().trim().min(1) }).strict(),
    res: taskSummarySchema,
  },
  'tasks:cancel': {
    req: z.object({ id: z.string().min(1) }).strict(),
    res: taskSummarySchema,
  },
  'tasks:prewarm': {
    req: z.object({ folders: z.array(folderRequest).max(16) }).strict(),
    res: z.object({ warming: z.boolean() }),
  },
  'approvals:answer': {
    req: z.object({ id: z.string().min(1), answer: approvalAnswerSchema }).strict(),
    res: z.object({ answered: z.boolean() }),
  },
  'grants:add': {
    req: z.object({ path: z.string().min(1).max(4096), readOnly: z.boolean() }).strict(),
    res: grantSchema,
  },
  'grants:pick': {
    req: z.object({ readOnly: z.boolean() }).strict(),
    res: z.object({ grant: grantSchema.nullable() }),
  },
  'grants:browse': {
    req: z.object({ path: z.string().max(4096).optional() }).strict(),
    res: z.object({
      path: z.string(),
      parent: z.string().nullable(),
      folders: z.array(z.object({ name: z.string(), path: z.string() })),
    }),
  },
  'settings:apiKey': {
    req: empty,
    res: apiKeyStatusSchema,
  },
  'settings:setApiKey': {
    req: z.object({ key: z.string().trim().min(8).max(512) }).strict(),
    res: z.object({ status: apiKeyStatusSchema, models: z.array(z.string()) }),
  },
  'models:list': {
    req: empty,
    res: z.object({ models: z.array(z.string()) }),
  },
  'image:build': {
    req: empty,
    res: z.object({ started: z.boolean() }),
  },
  /** This calendar month's usage so far and last month's, for Settings. */
  'usage:summary': {
    req: z
      .object({
        /** The person's IANA time zone, where months begin (default: the core's). */
        tz: z.string().min(1).max(100).optional(),
      })
      .strict(),
    res: z.object({
      timeZone: z.string(),
      thisMonth: usageMonthSchema,
      lastMonth: usageMonthSchema,
    }),
  },
  'app:openLogs': {
    req: empty,
    res: z.object({ path: z.string(), opened: z.boolean() }),
  },
} as const;

const artifactId = z.string().min(1).max(100);
const artifactVersion = z.number().int().min(1).max(1_000_000);

/** One artifact in a task's list: its newest version and when it last changed. */
export const artifactSummarySchema = z.object({
  id: z.string(),
  /** The task (session) that made it; null for one made outside a task. */
  taskId: z.string().nullable(),
  title: z.string(),
  /** html, svg, markdown, mermaid, react or code. */
  kind: z.string(),
  latestVersion: z.number().int(),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type ArtifactSummary = z.infer<typeof artifactSummarySchema>;

/** One version of an artifact with its content. */
export const artifactSchema = z.object({
  id: z.string(),
  sessionId: z.string().nullable(),
  title: z.string(),
  kind: z.string(),
  version: z.number().int(),
  latestVersion: z.number().int(),
  content: z.string(),
  createdAt: z.number(),
});
export type Artifact = z.infer<typeof artifactSchema>;

/**
 * The file name an artifact version is saved or exported as: its title in letters, digits and
 * dashes (safe on every file system and in a download attribute), the version, the extension.
 * One rule for the core's export and the page's save.
 */
export function artifactFileName(title: string, version: number, ext: string): string {
  const stem =
    title
      .normalize('NFKD')
      .replace(/[^\w\s-]/g, '')
      .trim()
      .replace(/[\s_]+/g, '-')
      .replace(/-+/g, '-')
      .toLowerCase()
      .slice(0, 60)
      .replace(/^-|-$/g, '') || 'artifact';
  return `${stem}-v${version}.${ext}`;
}

/**
 * Request/response schemas of the artifact channels (spread into `requests` in api.ts): what
 * `create_artifact` stored, by task, with every version, and as a standalone file to export.
 */
export const artifactRequests = {
  'artifacts:list': {
    /** A task's artifacts in the order they were made; without taskId, every one (newest first). */
    req: z.object({ taskId: z.string().min(1).max(100).optional() }).strict(),
    res: z.object({ artifacts: z.array(artifactSummarySchema) }),
  },
  'artifacts:get': {
    /** One version; the newest when `version` is left out. */
    req: z.object({ id: artifactId, version: artifactVersion.optional() }).strict(),
    res: artifactSchema,
  },
  'artifacts:versions': {
    req: z.object({ id: artifactId }).strict(),
    res: z.object({
      versions: z.array(
        z.object({ version: z.number().int(), createdAt: z.number(), size: z.number().int() }),
      ),
    }),
  },
  'artifacts:export': {
    /** A standalone HTML document (libraries inlined, no network) to save or open on its own. */
    req: z.object({ id: artifactId, version: artifactVersion.optional() }).strict(),
    res: z.object({ filename: z.string(), html: z.string() }),
  },
} as const;

/** Events of the app's channels (spread into `events` in api.ts). */
export const appEvents = {
  'task:event': z.object({ taskId: z.string(), event: agentEventSchema }),
  'task:changed': taskSummarySchema,
  'approval:requested': approvalSchema,
  'approval:resolved': z.object({ id: z.string(), taskId: z.string(), answer: z.string() }),
  'image:progress': imageProgressSchema,
  /** A menu item or a dropped folder in the Electron shell asks the page to do something. */
  'ui:command': z.object({
    command: z.enum(['new-task', 'settings', 'open-task', 'inbox']),
    grant: grantSchema.optional(),
    taskId: z.string().optional(),
  }),
} as const;
