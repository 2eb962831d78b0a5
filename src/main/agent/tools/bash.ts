import { z } from 'zod';
import { boundaryNote } from '../../vm/protected-paths.js';
import { runCommand } from './run-command.js';
import type { Tool } from './types.js';

const input = z.object({
  command: z.string().min(1).describe('The bash command to run.'),
  timeout_s: z
    .number()
    .int()
    .min(1)
    .max(3600)
    .optional()
    .describe('Kill the command after this many seconds (default 120).'),
});

/** `bash`: runs a command in the session's VM, in the working folder. */
export const bashTool: Tool<typeof input> = {
  name: 'bash',
  description:
    'Run a bash command inside the sandbox Linux VM, in the working folder. Returns stdout, stderr and the exit code. ' +
    'Long outputs are cut in the middle. The VM reaches the network only through an allowlisting proxy.',
  input,
  async run({ command, timeout_s }, ctx) {
    const r = await runCommand(ctx, {
      argv: ['bash', '-c', command],
      timeoutMs: (timeout_s ?? 120) * 1000,
    });
    const parts = [];
    if (r.stdout) parts.push(r.stdout.replace(/\n$/, ''));
    if (r.stderr) parts.push(`[stderr]\n${r.stderr.replace(/\n$/, '')}`);
    if (r.timedOut) parts.push(`[timed out after ${timeout_s ?? 120} s; the command was killed]`);
    parts.push(`[exit code ${r.exitCode}]`);
    // SECURITY: the model learns what the boundary refused or undid, so it neither retries
    // blindly nor believes a write it made still stands.
    const note = boundaryNote(r.boundary);
    if (note) parts.push(note);
    return {
      content: parts.join('\n'),
      isError: r.exitCode !== 0,
      exitCode: r.exitCode,
      durationMs: r.durationMs,
    };
  },
};
