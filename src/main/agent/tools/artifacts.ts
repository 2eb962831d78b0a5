import { z } from 'zod';
import { folderModeText, type AutomationPlan } from '../../../shared/app-contract.js';
import { ToolError, type Tool } from './types.js';
import { ARTIFACT_KINDS } from '../../../shared/artifact-policy.js';

const artifactInput = z.object({
  title: z.string().min(1).max(200),
  kind: z.enum(ARTIFACT_KINDS),
  content: z.string().max(2_000_000),
  artifact_id: z
    .string()
    .min(1)
    .max(100)
    .optional()
    .describe(
      'To revise an artifact made earlier in this task, its id (art_…): the content given becomes its next version. Leave out to make a new artifact.',
    ),
});

/**
 * `create_artifact`: stores something the agent made, with versions, for the person to view. With
 * `artifact_id` it adds a version to one of this session's artifacts instead (one tool, so the
 * model revises by saying which artifact rather than choosing between two tools).
 */
export const createArtifactTool: Tool<typeof artifactInput> = {
  name: 'create_artifact',
  description:
    'Save a document the person can view: html, svg, markdown, mermaid, react (JSX) or code. Stored with versions: to revise one you made in this task, pass its artifact_id with the complete new content (not a diff).',
  input: artifactInput,
  async run(input, ctx) {
    const a = ctx.createArtifact({
      title: input.title,
      kind: input.kind,
      content: input.content,
      ...(input.artifact_id !== undefined ? { artifactId: input.artifact_id } : {}),
    });
    return {
      content:
        a.version === 1
          ? `Saved artifact “${input.title}” (${input.kind}) as ${a.id}, version 1.`
          : `Saved “${input.title}” (${input.kind}) as ${a.id}, version ${a.version}.`,
      isError: false,
    };
  },
};

const scheduleInput = z.object({
  name: z.string().min(1).max(200),
  prompt: z
    .string()
    .min(1)
    .describe('What to do at each run, written as a complete task for a fresh session.'),
  schedule: z
    .string()
    .min(1)
    .describe(
      'When: "every weekday at 9:00", "every day at 9:00, 13:00 and 17:00", "every monday at 18:30", "every 2 hours", "every month on the 1st at 8:00", "once on 2026-12-01 at 08:00", or iCalendar DTSTART;TZID=…/RRULE:… text.',
    ),
  time_zone: z
    .string()
    .optional()
    .describe('IANA zone of the times, e.g. Europe/Paris (default: the person’s).'),
  missed: z
    .enum(['skip', 'once', 'all'])
    .optional()
    .describe(
      'Slots that pass while the computer is off or asleep: skip them, run the latest once (default), or run all.',
    ),
});

/**
 * `schedule_automation`: creates an automation (with this session's folders and allowlist) through
 * the host-given `ctx.scheduleAutomation`, so this layer never imports the automations layer.
 */
export const scheduleAutomationTool: Tool<typeof scheduleInput> = {
  name: 'schedule_automation',
  description:
    'Schedule a recurring or one-off task that runs later as its own session with the folders and network access of this one. The person is always asked first, and sees the schedule, folders and hosts; they can pause or remove it later in Automations; results land in their inbox.',
  input: scheduleInput,
  // SECURITY: the session asks the person about every automation, whatever the approval mode.
  asksPerson: true,
  async run(input, ctx) {
    if (!ctx.scheduleAutomation) {
      return {
        content:
          'Scheduling is not available here; tell the person this task cannot be scheduled from this session and offer to do it now instead.',
        isError: true,
      };
    }
    try {
      const content = await ctx.scheduleAutomation({
        name: input.name,
        prompt: input.prompt,
        schedule: input.schedule,
        ...(input.time_zone ? { timeZone: input.time_zone } : {}),
        ...(input.missed ? { missed: input.missed } : {}),
      });
      return { content, isError: false };
    } catch (e) {
      throw new ToolError(`Could not schedule “${input.name}”: ${(e as Error).message}`);
    }
  },
};

/**
 * The plan of an automation in lines a person reads before saying yes: when, the first run, the
 * folders, the hosts and what each run does. One wording for the app's question and the CLI's.
 */
export function describeAutomationPlan(plan: AutomationPlan): string {
  const prompt = plan.prompt.length > 300 ? `${plan.prompt.slice(0, 299)}…` : plan.prompt;
  return [
    `When: ${plan.schedule} (${plan.timeZone})${plan.firstRun ? `; first run ${plan.firstRun}` : ''}`,
    `Folders: ${plan.folders.length ? plan.folders.map((f) => `${f.hostPath} (${folderModeText(f)})`).join(', ') : 'none'}`,
    `Network: ${plan.hosts.length ? plan.hosts.join(', ') : 'none'}`,
    `Each run: ${prompt}`,
  ].join('\n');
}
