// A long agent session against the scripted Messages API: each turn the model calls one tool whose
// output is 30,000 characters, for a set number of turns, then answers. Shared by the benchmark
// (`npm run bench -- --only agent`) and the kill -9 resume test; run directly it is the child
// process that test kills:
//   tsx test/support/long-session.ts <home> <api-url> <session-id|new> <turns> [model]
import { z } from 'zod';
import { createAnthropic } from '../../src/main/agent/model.js';
import { AgentSession, type RunOutcome } from '../../src/main/agent/session.js';
import type { Tool } from '../../src/main/agent/tools/types.js';
import { Store } from '../../src/main/store/store.js';
import type { MessagesRequestBody, MockMessagesApi, Step } from './messages-api/server.js';

export const LONG_TOOL_CHARS = 30_000;

/** The tool: `turn N`, then filler that differs every turn, 30,000 characters in all. */
export const emitTool: Tool = {
  name: 'emit',
  description: 'Prints the output of one step of a long job.',
  input: z.object({ turn: z.number().int().min(1) }),
  run: async ({ turn }) => {
    const head = `turn ${turn}\n`;
    let body = '';
    for (let i = 0; body.length < LONG_TOOL_CHARS; i++) body += `${turn}.${i} lorem ipsum dolor; `;
    return { content: (head + body).slice(0, LONG_TOOL_CHARS), isError: false };
  },
};

/** The newest turn the conversation has an output for (0: none yet). */
function lastTurn(body: MessagesRequestBody): number {
  const messages = (body.messages ?? []) as { content?: unknown }[];
  for (let i = messages.length - 1; i >= 0; i--) {
    const content = messages[i]!.content;
    if (!Array.isArray(content)) continue;
    for (let j = content.length - 1; j >= 0; j--) {
      const b = content[j] as { type?: string; content?: unknown };
      const m =
        b.type === 'tool_result' &&
        typeof b.content === 'string' &&
        /^turn (\d+)\n/.exec(b.content);
      if (m) return Number(m[1]);
    }
  }
  return 0;
}

/**
 * One scripted step per request: the next turn's tool call, read from the conversation it is
 * sent (so it follows a resume or a compaction), or the answer once `turns` outputs are in.
 */
export function longSessionStep(turns: number): Step {
  return {
    handler: (body) => {
      const next = lastTurn(body) + 1;
      if (next > turns)
        return {
          reply: {
            content: [{ type: 'text', text: `All ${turns} steps done.` }],
            stop_reason: 'end_turn',
          },
        };
      return {
        reply: {
          content: [
            { type: 'text', text: `Step ${next}.` },
            {
              type: 'tool_use',
              id: `toolu_turn_${next}_${Date.now()}`,
              name: 'emit',
              input: { turn: next },
            },
          ],
          stop_reason: 'tool_use',
        },
      };
    },
  };
}

/** Queues enough steps for a session of `turns` turns (with room for retries and resumes). */
export function enqueueLongSession(api: MockMessagesApi, turns: number): void {
  for (let i = 0; i < turns + 20; i++) api.enqueue(longSessionStep(turns));
}

/** The session itself, on the real SDK and store, with no VM (the tool needs none). */
export function longSession(o: {
  store: Store;
  apiUrl: string;
  sessionId: string;
  model?: string;
  promptCaching?: boolean;
}): AgentSession {
  return new AgentSession({
    store: o.store,
    client: createAnthropic({ apiKey: 'long-session', baseURL: o.apiUrl }),
    sessionId: o.sessionId,
    host: () => {
      throw new Error('the long session needs no VM');
    },
    settings: {
      model: o.model ?? 'claude-opus-5-5',
      maxTokens: 8_000,
      effort: 'medium',
      promptCaching: o.promptCaching ?? true,
    },
    approvalMode: 'auto',
    approver: { approveTool: async () => 'allow', askNetwork: async () => 'deny' },
    prompt: { shares: [], allowlist: [], timeZone: 'UTC' },
    tools: [emitTool],
    retry: { attempts: 3, baseMs: 5, maxMs: 50 },
  });
}

/** Input as billed, in input-token equivalents: cache reads at 0.1, cache writes at 1.25. */
export function billedInput(row: {
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}): number {
  return row.inputTokens + 0.1 * row.cacheReadTokens + 1.25 * row.cacheWriteTokens;
}

async function main(argv: string[]): Promise<RunOutcome> {
  const [home, apiUrl, id, turns, model] = argv;
  if (!home || !apiUrl || !id || !turns)
    throw new Error('usage: long-session.ts HOME URL ID|new TURNS [MODEL]');
  const store = Store.open(home);
  try {
    const sessionId =
      id === 'new'
        ? store.sessions.create({
            title: 'long',
            model: model ?? 'claude-opus-5-5',
            approvalMode: 'auto',
          }).id
        : id;
    process.stdout.write(`session ${sessionId}\n`);
    const session = longSession({ store, apiUrl, sessionId, ...(model ? { model } : {}) });
    session.on('event', (e) => {
      if (e.type === 'tool-result') process.stdout.write(`${e.content.split('\n')[0]}\n`);
    });
    const outcome = await session.run(id === 'new' ? `Run the ${turns}-step job.` : undefined);
    process.stdout.write(`outcome ${outcome.stopReason}\n`);
    return outcome;
  } finally {
    store.dispose();
  }
}

if (process.argv[1] && /long-session\.ts$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (o) => process.exit(o.stopReason === 'end_turn' ? 0 : 1),
    (e: unknown) => {
      process.stderr.write(`${String(e)}\n`);
      process.exit(2);
    },
  );
}
