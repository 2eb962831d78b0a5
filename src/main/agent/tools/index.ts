import { z } from 'zod';
import type { Tool as ApiTool } from '@anthropic-ai/sdk/resources/messages';
import { createArtifactTool, scheduleAutomationTool } from './artifacts.js';
import { bashTool } from './bash.js';
import { editFileTool, listFilesTool, readFileTool, writeFileTool } from './files.js';
import type { Tool } from './types.js';
import { webFetchTool } from './web-fetch.js';

/** Every tool, in the order the model sees them. Their names are part of the product. */
export const TOOLS: Tool[] = [
  bashTool,
  readFileTool,
  writeFileTool,
  editFileTool,
  listFilesTool,
  webFetchTool,
  createArtifactTool,
  scheduleAutomationTool,
] as Tool[];

export const TOOL_NAMES = TOOLS.map((t) => t.name);

const schemaCache = new WeakMap<Tool[], ApiTool[]>();

/** The tools as the Messages API wants them: name, description, JSON schema of the input. */
export function apiTools(tools: Tool[] = TOOLS): ApiTool[] {
  const cached = schemaCache.get(tools);
  if (cached) return cached;
  const built = tools.map((t) => {
    const { $schema: _drop, ...schema } = z.toJSONSchema(t.input) as Record<string, unknown>;
    return {
      name: t.name,
      description: t.description,
      input_schema: schema as ApiTool['input_schema'],
    };
  });
  schemaCache.set(tools, built);
  return built;
}
