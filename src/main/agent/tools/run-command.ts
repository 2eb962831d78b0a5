import type { ExecRequest } from '../../vm/backend.js';
import type { BoundaryFinding } from '../../vm/protected-paths.js';
import { OutputCap } from '../output-cap.js';
import { MAX_RESULT_CHARS, type ToolContext } from './types.js';

export interface CommandResult {
  stdout: string;
  stderr: string;
  exitCode: number;
  timedOut: boolean;
  durationMs: number;
  /** What the host's boundary refused or undid during the command (protected-paths.ts). */
  boundary: readonly BoundaryFinding[];
}

/**
 * Runs one command in the VM, streaming its output live and keeping only a bounded head and tail
 * of it, so a command printing gigabytes costs neither memory nor tokens. Cancelling the session
 * kills the command.
 */
export async function runCommand(ctx: ToolContext, req: ExecRequest): Promise<CommandResult> {
  const handle = await ctx.host.exec({ cwd: ctx.cwd, ...req });
  const onAbort = () => handle.kill('SIGKILL');
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  if (!req.stdin) handle.stdin.end();
  const out = new OutputCap((MAX_RESULT_CHARS * 2) / 3, MAX_RESULT_CHARS / 3);
  const err = new OutputCap(MAX_RESULT_CHARS / 6, MAX_RESULT_CHARS / 6);
  handle.stdout.on('data', (d: Buffer) => {
    out.push(d);
    ctx.onOutput?.('stdout', d.toString('utf8'));
  });
  handle.stderr.on('data', (d: Buffer) => {
    err.push(d);
    ctx.onOutput?.('stderr', d.toString('utf8'));
  });
  try {
    const r = await handle.result;
    return {
      stdout: out.text(),
      stderr: err.text(),
      exitCode: r.exitCode,
      timedOut: r.timedOut,
      durationMs: r.durationMs,
      boundary: r.boundary ?? [],
    };
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

/** Quotes a string for /bin/sh. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}
