import { z } from 'zod';
import { usageTotalsSchema } from './usage.js';

/**
 * The automations' part of the API contract (scheduled tasks, their runs, the inbox). Kept in its
 * own file and spread into `requests`/`events` in api.ts, like app-contract.ts.
 */

const empty = z.object({}).strict();
const id = z.object({ id: z.string().min(1) }).strict();

/** What happens to slots that passed while Paddock was not running. */
export const missedPolicySchema = z.enum(['skip', 'once', 'all']);

/** A run's state: one per scheduled slot, or one per "run now". */
export const runStatusSchema = z.enum([
  'scheduled',
  'running',
  'succeeded',
  'failed',
  'missed',
  'skipped',
  'interrupted',
]);
export type RunStatus = z.infer<typeof runStatusSchema>;

/**
 * A folder an automation works on: its host path, whether it is read-only, and for a read-write
 * folder whether a run's writes are staged for review (true) or written directly (false). The
 * page always gets `review`; a request may leave it out (a folder kept: its mode stays).
 */
export const automationFolderSchema = z.object({
  hostPath: z.string(),
  readOnly: z.boolean(),
  review: z.boolean().optional(),
});

/**
 * What becomes of what a run staged in its review folders: it waits for the person (`review`),
 * or is applied as the run ends (`auto`; still journalled so it can be undone, and a conflict
 * still waits).
 */
export const applyChangesSchema = z.enum(['review', 'auto']);
export type ApplyChanges = z.infer<typeof applyChangesSchema>;

/** One run of an automation, for the history. */
export const runSchema = z.object({
  id: z.string(),
  automationId: z.string(),
  slotAt: z.number(),
  status: runStatusSchema,
  trigger: z.enum(['schedule', 'manual']),
  late: z.boolean(),
  attempt: z.number().int(),
  /** The agent session that did the work (a task the person can open), when there is one. */
  sessionId: z.string().nullable(),
  startedAt: z.number().nullable(),
  finishedAt: z.number().nullable(),
  error: z.string().nullable(),
  summary: z.string().nullable(),
  /** The tokens and cost of its session; null when no session ran (missed, skipped). */
  usage: usageTotalsSchema.nullable(),
});
export type AutomationRun = z.infer<typeof runSchema>;

/** One automation as the automations page shows it. */
export const automationSchema = z.object({
  id: z.string(),
  name: z.string(),
  prompt: z.string(),
  /** What the person wrote ("every weekday at 9:00") or the iCalendar text. */
  scheduleText: z.string(),
  rrule: z.string(),
  tzid: z.string(),
  folders: z.array(automationFolderSchema),
  allowlist: z.array(z.string()),
  missedPolicy: missedPolicySchema,
  /** A run is stopped once it has cost this many dollars; null: no limit. */
  spendLimitUsd: z.number().nullable(),
  applyChanges: applyChangesSchema,
  /** Names of the secrets its runs may use (placeholders in the VM; see secrets-contract.ts). */
  secrets: z.array(z.string()),
  /** The tokens and cost of all its runs together. */
  usage: usageTotalsSchema,
  enabled: z.boolean(),
  /** The next slot, or null when paused or the schedule has no slot left. */
  nextRunAt: z.number().nullable(),
  lastRun: runSchema.nullable(),
  running: z.boolean(),
  /** The task whose agent created it with `schedule_automation`, if one did. */
  createdBySession: z.string().nullable(),
  createdAt: z.number(),
});
export type Automation = z.infer<typeof automationSchema>;

/** One inbox item: what became of one run. */
export const inboxItemSchema = z.object({
  id: z.string(),
  runId: z.string(),
  automationId: z.string().nullable(),
  /** succeeded, failed, missed, interrupted or skipped. */
  kind: z.string(),
  title: z.string(),
  state: z.enum(['unread', 'read', 'archived']),
  summary: z.string(),
  createdAt: z.number(),
  readAt: z.number().nullable(),
  /** The run's session, to open as a task. */
  sessionId: z.string().nullable(),
  slotAt: z.number().nullable(),
  /** Files the run changed in its review folders that still wait for the person (0: none). */
  reviewWaiting: z.number().int(),
});
export type InboxItem = z.infer<typeof inboxItemSchema>;

/** A granted folder by grant id; a read-write one is staged for review unless `review` is false. */
const folderRequest = z
  .object({ id: z.string().min(1), readOnly: z.boolean(), review: z.boolean().optional() })
  .strict();

/** What a spend limit must be, said once for the contract, the service and the CLI. */
export const SPEND_LIMIT_RULE =
  'The spend limit must be a positive number of dollars, such as 2 or 0.50, or none for no limit.';

const automationFields = {
  name: z.string().trim().min(1, 'Give the automation a name.').max(200),
  prompt: z.string().trim().min(1, 'Say what the automation should do.').max(100_000),
  /** A phrase ("every weekday at 9:00") or iCalendar text (DTSTART;TZID=… RRULE:…). */
  schedule: z.string().trim().min(1, 'Say when it should run.').max(4000),
  /** The zone the schedule's times are in: the person's (the page sends its own). */
  tz: z.string().min(1).max(100).optional(),
  /** Granted folders by grant id, as for tasks; the first is the working folder. */
  folders: z.array(folderRequest).max(16),
  allowlist: z.array(z.string().min(1)).max(200),
  missed: missedPolicySchema,
  /** Dollars a run may spend before it is stopped; null for no limit. */
  spendLimitUsd: z
    .number(SPEND_LIMIT_RULE)
    .positive(SPEND_LIMIT_RULE)
    .max(1_000_000, SPEND_LIMIT_RULE)
    .nullable(),
  applyChanges: applyChangesSchema,
  /** Secrets its runs may use, by name. */
  secrets: z.array(z.string().min(1).max(64)).max(32),
};

/** Request/response schemas of the automations' channels (spread into `requests` in api.ts). */
export const automationRequests = {
  'automations:list': {
    req: empty,
    res: z.object({ automations: z.array(automationSchema) }),
  },
  'automations:create': {
    req: z
      .object({
        ...automationFields,
        allowlist: automationFields.allowlist.optional(),
        missed: automationFields.missed.optional(),
        spendLimitUsd: automationFields.spendLimitUsd.optional(),
        /** Default: `review`. */
        applyChanges: automationFields.applyChanges.optional(),
        secrets: automationFields.secrets.optional(),
      })
      .strict(),
    res: automationSchema,
  },
  'automations:update': {
    req: z
      .object({
        id: z.string().min(1),
        name: automationFields.name.optional(),
        prompt: automationFields.prompt.optional(),
        schedule: automationFields.schedule.optional(),
        tz: automationFields.tz,
        /** Newly granted folders, by grant id. */
        folders: automationFields.folders.optional(),
        /** Folders the automation already has that stay (only those; checked by the core). */
        keepFolders: z.array(automationFolderSchema.strict()).max(16).optional(),
        allowlist: automationFields.allowlist.optional(),
        missed: automationFields.missed.optional(),
        /** null removes the limit. */
        spendLimitUsd: automationFields.spendLimitUsd.optional(),
        applyChanges: automationFields.applyChanges.optional(),
        secrets: automationFields.secrets.optional(),
      })
      .strict(),
    res: automationSchema,
  },
  'automations:preview': {
    req: z.object({ schedule: z.string().max(4000), tz: z.string().max(100).optional() }).strict(),
    res: z.object({
      /** Null when the schedule is fine; otherwise one sentence saying what is wrong. */
      problem: z.string().nullable(),
      tzid: z.string().nullable(),
      /** The next (up to) 5 slots, epoch milliseconds. */
      times: z.array(z.number()),
    }),
  },
  'automations:pause': { req: id, res: automationSchema },
  'automations:resume': { req: id, res: automationSchema },
  'automations:remove': { req: id, res: z.object({ removed: z.boolean() }) },
  'automations:runNow': { req: id, res: runSchema },
  'automations:runs': {
    req: z
      .object({
        automationId: z.string().min(1).optional(),
        limit: z.number().int().min(1).max(1000).optional(),
      })
      .strict(),
    res: z.object({ runs: z.array(runSchema) }),
  },
  'inbox:list': {
    req: z.object({ includeArchived: z.boolean().optional() }).strict(),
    res: z.object({ items: z.array(inboxItemSchema), unread: z.number().int() }),
  },
  'inbox:markRead': {
    req: z.object({ id: z.string().min(1), read: z.boolean().optional() }).strict(),
    res: inboxItemSchema,
  },
  'inbox:archive': {
    req: z.object({ id: z.string().min(1), archived: z.boolean().optional() }).strict(),
    res: inboxItemSchema,
  },
  'inbox:unreadCount': { req: empty, res: z.object({ unread: z.number().int() }) },
} as const;

/** Events of the automations (spread into `events` in api.ts). */
export const automationEvents = {
  /** An automation was created, edited, paused, resumed or removed (here or in another process). */
  'automations:changed': z.object({ automationId: z.string().nullable() }),
  /** A run started, finished, was missed or skipped. */
  'automations:run-changed': runSchema,
  /** Inbox items were added or changed state. */
  'inbox:changed': z.object({ unread: z.number().int() }),
} as const;
