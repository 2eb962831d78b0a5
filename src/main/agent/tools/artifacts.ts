import { z } from 'zod';
import type { Tool } from './types.js';

export const ARTIFACT_KINDS = ['html', 'svg', 'markdown', 'mermaid', 'react', 'code'] as const;

const artifactInput = z.object({
  title: z.string().min(1).max(200),
  kind: z.enum(ARTIFACT_KINDS),
  content: z.string().max(2_000_000),
});

/** `create_artifact`: stores something the agent made, with versions, for the person to view. */
export const createArtifactTool: Tool<typeof artifactInput> = {
  name: 'create_artifact',
  description:
    'Save a document the person can view: html, svg, markdown, mermaid, react (JSX) or code. Stored with versions.',
  input: artifactInput,
  async run(input, ctx) {
    const a = ctx.createArtifact(input);
    return {
      content: `Saved artifact “${input.title}” (${input.kind}) as ${a.id}, version ${a.version}.`,
      isError: false,
    };
  },
};

const scheduleInput = z.object({
  name: z.string().min(1),
  prompt: z.string().min(1),
  schedule: z.string().min(1).describe('For example "every weekday at 9:00".'),
});

/** `schedule_automation`: lands with the automations feature; until then it says so plainly. */
export const scheduleAutomationTool: Tool<typeof scheduleInput> = {
  name: 'schedule_automation',
  description:
    'Schedule a recurring task (name, prompt, schedule such as "every weekday at 9:00").',
  input: scheduleInput,
  async run() {
    return {
      content:
        'Scheduling is not available yet in this version of Paddock; tell the person this task cannot be scheduled yet and offer to do it now instead.',
      isError: true,
    };
  },
};
