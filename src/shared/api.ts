import { z } from 'zod';
import type { Result } from './result.js';
import { appEvents, appRequests, artifactRequests, type Grant } from './app-contract.js';
import { automationEvents, automationRequests } from './automations-contract.js';
import { changesEvents, changesRequests } from './changes-contract.js';
import { secretsEvents, secretsRequests } from './secrets-contract.js';

/**
 * The one API contract between the core and every UI transport (Electron IPC, WebSocket).
 * Channels are `domain:verb`; events are `domain:thing-changed`. Types derive from the schemas,
 * so neither side keeps typings in sync by hand.
 */

const empty = z.object({}).strict();

export const doctorCheck = z.object({
  id: z.string(),
  label: z.string(),
  status: z.enum(['ok', 'warn', 'fail']),
  detail: z.string(),
  /** The command or action that fixes what is missing, when something is. */
  fix: z.string().optional(),
});
export type DoctorCheck = z.infer<typeof doctorCheck>;

export const settingsSchema = z.object({
  model: z.string().min(1),
  /** Output limit per model call. */
  maxTokens: z.number().int().min(1024).max(128_000),
  /**
   * How much effort the model puts into a reply (its thinking depth, tool calls, length). Sent as
   * `output_config.effort` where the model supports it; the thinking mode follows the model.
   */
  effort: z.enum(['low', 'medium', 'high', 'xhigh', 'max']),
  approvalMode: z.enum(['auto', 'ask']),
  vmMemoryMb: z.number().int().min(128).max(65536),
  vmCpus: z.number().int().min(1).max(64),
  /** Hosts every task may reach, as a person typed them in Settings. */
  networkAllowlist: z.array(z.string()),
  /**
   * Hosts a person allowed by answering "always" to a prompt. Kept apart because an answer to a
   * prompt never opens loopback, private, link-local or metadata addresses.
   */
  promptAllowlist: z.array(z.string()),
  /**
   * Hosts pinned to the person's own secrets for every task ("my account only"): a credential
   * on a request to them must come from a placeholder swap, or the request is refused. A secret's
   * hosts are pinned by the secret itself (its `pin`).
   */
  pinnedHosts: z.array(z.string()),
  theme: z.enum(['system', 'light', 'dark']),
  /** Set once the person finished the first-run screens (key, model, VM check). */
  onboarded: z.boolean(),
  /**
   * How long what applying staged changes overwrote is kept, so they can be undone (days); older
   * journal entries and the copies only they needed are removed.
   */
  journalDays: z.number().int().min(1).max(3650),
});
export type Settings = z.infer<typeof settingsSchema>;
export type Effort = Settings['effort'];

export const requests = {
  'app:info': {
    req: empty,
    res: z.object({
      version: z.string(),
      schemaVersion: z.number().int(),
      dataDir: z.string(),
      host: z.enum(['electron', 'web', 'cli']),
      /** Where artifact frames come from (Electron: its scheme; `serve`: the frame port). */
      artifactOrigin: z.string().optional(),
    }),
  },
  'doctor:run': {
    req: empty,
    res: z.object({ checks: z.array(doctorCheck) }),
  },
  'settings:get': {
    req: empty,
    res: settingsSchema,
  },
  'settings:update': {
    req: settingsSchema.partial().strict(),
    res: settingsSchema,
  },
  // The desktop app's channels (tasks, approvals, grants, key, image, logs): app-contract.ts.
  ...appRequests,
  // Automations, their runs and the inbox: automations-contract.ts.
  ...automationRequests,
  // Staged folder edits (review grants): changes-contract.ts.
  ...changesRequests,
  // Secrets the VM never sees: secrets-contract.ts.
  ...secretsRequests,
  // Artifacts the agent made, with their versions: app-contract.ts.
  ...artifactRequests,
} as const;

/**
 * Requests the Electron host answers itself, never the core: they act on the core process. Kept
 * out of `requests` because every channel there has a core handler.
 */
export const hostRequests = {
  /** Starts the core process again after it crashed too often to be restarted on its own. */
  'core:restart': { req: empty, res: z.object({ restarted: z.boolean() }) },
} as const;

/** The health of the Electron app's core process, for the window's banner. */
export const coreStatusSchema = z.object({
  /**
   * `crashed`: it stopped unexpectedly and will be restarted; `restarting`: a new one is
   * starting; `ready`: it answers again; `failed`: it crashed too often and waits for Restart.
   */
  state: z.enum(['crashed', 'restarting', 'ready', 'failed']),
  message: z.string(),
});
export type CoreStatus = z.infer<typeof coreStatusSchema>;

export const events = {
  'settings:changed': settingsSchema,
  /** Electron only: the core process crashed, is restarting, is back, or gave up. */
  'core:status': coreStatusSchema,
  // The desktop app's events: app-contract.ts.
  ...appEvents,
  // Automations and the inbox: automations-contract.ts.
  ...automationEvents,
  ...changesEvents,
  ...secretsEvents,
} as const;

export type Channel = keyof typeof requests;
export type HostChannel = keyof typeof hostRequests;
/** Every method of `window.paddock`: the core's channels and the host's own. */
export type ApiChannel = Channel | HostChannel;
type AllRequests = typeof requests & typeof hostRequests;
export type EventName = keyof typeof events;
export type Req<C extends ApiChannel> = z.input<AllRequests[C]['req']>;
export type Res<C extends ApiChannel> = z.infer<AllRequests[C]['res']>;
export type EventPayload<E extends EventName> = z.infer<(typeof events)[E]>;

export const channels = Object.keys(requests) as Channel[];
export const hostChannels = Object.keys(hostRequests) as HostChannel[];
export const eventNames = Object.keys(events) as EventName[];

export function isChannel(name: unknown): name is Channel {
  return typeof name === 'string' && Object.hasOwn(requests, name);
}

export function isEventName(name: unknown): name is EventName {
  return typeof name === 'string' && Object.hasOwn(events, name);
}

/** What the renderer sees as `window.paddock`, whichever transport carries it. */
export type PaddockApi = {
  [C in ApiChannel]: (req: Req<C>) => Promise<Result<Res<C>>>;
} & {
  on<E extends EventName>(event: E, listener: (payload: EventPayload<E>) => void): () => void;
  /**
   * Electron only: grants a folder dropped on the window. The preload turns the dropped File into
   * its path (webUtils.getPathForFile) and main grants it, so the page never supplies a path.
   */
  dropFolder?: (file: File) => Promise<Result<Grant>>;
};

/** Builds a PaddockApi from one transport function, so preload and web client share the shape. */
export function buildApi(
  invoke: (channel: ApiChannel, req: unknown) => Promise<Result<unknown>>,
  subscribe: (event: EventName, listener: (payload: unknown) => void) => () => void,
): PaddockApi {
  const api: Record<string, unknown> = {};
  for (const channel of [...channels, ...hostChannels]) {
    api[channel] = (req: unknown) => invoke(channel, req ?? {});
  }
  api.on = (event: EventName, listener: (payload: unknown) => void) => {
    if (!isEventName(event)) throw new Error(`Unknown event ${String(event)}`);
    return subscribe(event, listener);
  };
  return api as PaddockApi;
}

/** Formats a zod failure as one sentence naming the fields that were wrong. */
export function describeSchemaError(error: z.ZodError): string {
  const parts = error.issues.slice(0, 5).map((i) => {
    const where = i.path.length ? i.path.join('.') : 'request';
    return `${where}: ${i.message}`;
  });
  return `The request did not match the API contract (${parts.join('; ')}).`;
}
