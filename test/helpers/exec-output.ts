import type { ExecHandle, ExecResult } from '../../src/main/vm/backend.js';

/** Runs a started command to its end with no stdin: its whole output, exit code and result. */
export async function execOutput(
  h: ExecHandle,
): Promise<{ out: string; err: string; code: number; r: ExecResult }> {
  let out = '';
  let err = '';
  h.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  h.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  h.stdin.end();
  const r = await h.result;
  return { out, err, code: r.exitCode, r };
}
