/**
 * `paddock run --json` as a child process against the scripted Messages API, for the VM tests
 * that drive the agent end to end.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import type { AgentEvent } from '../../src/shared/agent-events.js';
import type { MockMessagesApi } from '../support/messages-api/server.js';
import { repoRoot } from './cli.js';
import { vmTestHome } from './vm-image.js';

export const KEY = 'test-key';

/** `paddock run --json` as a process, its events parsed as they arrive. */
export function startRun(args: string[], api: MockMessagesApi, env: NodeJS.ProcessEnv = {}) {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/main/cli/entry.ts'), 'run', '--json', ...args],
    {
      cwd: repoRoot,
      env: {
        ...process.env,
        PADDOCK_HOME: vmTestHome,
        ANTHROPIC_API_KEY: KEY,
        ANTHROPIC_BASE_URL: api.url,
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const events: AgentEvent[] = [];
  let stderr = '';
  const waiters: { pred: (e: AgentEvent) => boolean; resolve: (e: AgentEvent) => void }[] = [];
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  readline.createInterface({ input: proc.stdout }).on('line', (line) => {
    const e = JSON.parse(line) as AgentEvent;
    events.push(e);
    for (const w of waiters.filter((w) => w.pred(e))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(e);
    }
  });
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  return {
    proc,
    events,
    stderr: () => stderr,
    exited,
    waitFor: (pred: (e: AgentEvent) => boolean) =>
      new Promise<AgentEvent>((resolve, reject) => {
        const found = events.find(pred);
        if (found) return resolve(found);
        waiters.push({ pred, resolve });
        // A run that ends before the awaited event fails the test now, not at its timeout.
        void exited.then((code) =>
          reject(new Error(`paddock run exited ${code} first: ${stderr}`)),
        );
      }),
  };
}

export function toolResults(
  api: MockMessagesApi,
  n: number,
): { tool_use_id: string; content: string; is_error?: boolean }[] {
  const msgs = api.requests[n]!.body.messages as { role: string; content: unknown }[];
  const last = msgs.at(-1)!;
  return (Array.isArray(last.content) ? last.content : []).filter(
    (b: { type: string }) => b.type === 'tool_result',
  );
}
