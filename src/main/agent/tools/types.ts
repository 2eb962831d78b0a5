import type { z } from 'zod';
import type { AutomationPlan } from '../../../shared/app-contract.js';
import type { ExecHandle, ExecRequest, FileStat } from '../../vm/backend.js';

/** What tools run against: the session's sandbox VM (the Sandbox class satisfies it). */
export interface ToolHost {
  exec(req: ExecRequest): Promise<ExecHandle>;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer, opts?: { mode?: number }): Promise<void>;
  stat(path: string): Promise<FileStat>;
  list(path: string): Promise<FileStat[]>;
}

export interface ToolContext {
  host: ToolHost;
  /** The working folder in the guest: the first grant, or /root. */
  cwd: string;
  signal: AbortSignal;
  sessionId: string;
  /**
   * Stores an artifact of this session, or with `artifactId` a new version of one (throws a
   * ToolError sentence when that id is not one of this session's artifacts).
   */
  createArtifact(input: { title: string; kind: string; content: string; artifactId?: string }): {
    id: string;
    version: number;
  };
  /**
   * Creates an automation with this session's folders and allowlist, once the person agreed to
   * its plan (the session asks; see {@link AutomationScheduler}). Absent where scheduling is not
   * offered.
   */
  scheduleAutomation?(input: ScheduleRequest): Promise<string>;
  /** Live output of a running command, for the UI. */
  onOutput?(stream: 'stdout' | 'stderr', text: string): void;
}

/** What the agent's `schedule_automation` tool asks for. */
export interface ScheduleRequest {
  name: string;
  prompt: string;
  /** A phrase ("every weekday at 9:00") or iCalendar text. */
  schedule: string;
  /** An IANA zone for the schedule's times (default: the person's). */
  timeZone?: string;
  missed?: 'skip' | 'once' | 'all';
}

/**
 * What the host that wires the automations layer in gives the session for `schedule_automation`
 * (the agent layer must not import that layer). Two steps, so that the session can show the
 * person exactly what the automation would get and create it only on their yes.
 */
export interface AutomationScheduler {
  /** Checks the request and says what the automation would get; throws a sentence if it cannot be made. */
  plan(input: ScheduleRequest): AutomationPlan | Promise<AutomationPlan>;
  /** Creates it (only after the person agreed) and returns a sentence for the model. */
  create(input: ScheduleRequest, sessionId: string): Promise<string>;
}

/** One result of a tool, as the model gets it back. */
export interface ToolOutcome {
  content: string;
  isError: boolean;
  exitCode?: number;
  durationMs?: number;
}

/** One tool the model can call. The name and input are part of the product (README lists them). */
export interface Tool<S extends z.ZodType = z.ZodType> {
  name: string;
  description: string;
  input: S;
  /**
   * The tool asks the person itself, in every approval mode (schedule_automation), so ask mode
   * does not ask about it a second time.
   */
  asksPerson?: boolean;
  run(input: z.infer<S>, ctx: ToolContext): Promise<ToolOutcome>;
}

/** A tool failure the model should see as an is_error result (never ends the loop). */
export class ToolError extends Error {}

/** The most a tool result may carry back to the model. */
export const MAX_RESULT_CHARS = 30_000;
