import { performance } from 'node:perf_hooks';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAnthropic } from '../src/main/agent/model.js';
import { AgentSession } from '../src/main/agent/session.js';
import { Store } from '../src/main/store/store.js';
import { startMessagesApi } from '../test/support/messages-api/server.js';
import { billedInput, enqueueLongSession, longSession } from '../test/support/long-session.js';
import { median, round } from './stats.js';
import type { BenchSuite } from './suites.js';

const TURNS = 100;
/** The long session: turns of 30,000-character tool outputs, far past the context window. */
const LONG_TURNS = 200;

/**
 * The agent loop's own cost, model excluded: the same number of streamed replies is timed once
 * through the bare SDK and once through AgentSession (which also records every event in SQLite
 * and runs a tool per turn); the difference per turn is the loop's overhead. Memory per idle
 * session: 200 sessions with a stored four-message conversation each, rebuilt and held.
 */
export const agentSuite: BenchSuite = {
  name: 'agent',
  async run(log) {
    const figures: Record<string, number | string> = {};
    const api = await startMessagesApi();
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bench-agent-'));
    const store = Store.open(home);
    const client = createAnthropic({ apiKey: 'bench', baseURL: api.url });
    /** A session with no VM behind it: the turns call create_artifact, which needs none. */
    const sessionFor = (sessionId: string) =>
      new AgentSession({
        store,
        client,
        sessionId,
        host: () => {
          throw new Error('no VM in this benchmark');
        },
        settings: {
          model: 'claude-opus-5-5',
          maxTokens: 1024,
          effort: 'low',
        },
        approvalMode: 'auto',
        approver: { approveTool: async () => 'allow', askNetwork: async () => 'deny' },
        prompt: { shares: [], allowlist: [], timeZone: 'UTC' },
      });
    const reply = (i: number) => ({
      reply: {
        content: [
          { type: 'text' as const, text: `Step ${i}: saving a note.` },
          {
            type: 'tool_use' as const,
            name: 'create_artifact',
            input: { title: `n${i}`, kind: 'markdown', content: '# x' },
          },
        ],
        stop_reason: 'tool_use' as const,
      },
    });
    try {
      // Warm up both paths.
      for (let i = 0; i < 5; i++) api.enqueue(reply(i));
      for (let i = 0; i < 5; i++)
        await client.messages
          .stream({
            model: 'claude-opus-5-5',
            max_tokens: 100,
            messages: [{ role: 'user', content: 'x' }],
          })
          .finalMessage();

      const bare: number[] = [];
      for (let i = 0; i < TURNS; i++) api.enqueue(reply(i));
      for (let i = 0; i < TURNS; i++) {
        const t = performance.now();
        await client.messages
          .stream({
            model: 'claude-opus-5-5',
            max_tokens: 100,
            messages: [{ role: 'user', content: 'x' }],
          })
          .finalMessage();
        bare.push(performance.now() - t);
      }

      for (let i = 0; i < TURNS; i++) api.enqueue(reply(i));
      api.enqueue({
        reply: { content: [{ type: 'text', text: 'done' }], stop_reason: 'end_turn' },
      });
      const id = store.sessions.create({
        title: 'bench',
        model: 'claude-opus-5-5',
        approvalMode: 'auto',
      }).id;
      const session = sessionFor(id);
      const t0 = performance.now();
      await session.run('benchmark');
      const loopTotal = performance.now() - t0;
      const perTurn = loopTotal / (TURNS + 1);
      figures.loop_turn_total_ms = round(perTurn);
      figures.bare_sdk_turn_median_ms = round(median(bare));
      figures.loop_overhead_per_turn_ms = round(perTurn - median(bare));
      log(
        `${TURNS + 1} turns in ${round(loopTotal, 0)} ms; bare SDK median ${round(median(bare))} ms per call`,
      );

      // Memory per idle session.
      const ids: string[] = [];
      for (let i = 0; i < 200; i++) {
        const sid = store.sessions.create({
          title: `s${i}`,
          model: 'claude-opus-5-5',
          approvalMode: 'auto',
        }).id;
        store.sessions.appendEvent(sid, 'user', { content: 'Summarise the notes in this folder.' });
        store.sessions.appendEvent(sid, 'assistant', {
          content: [{ type: 'text', text: 'Here is a summary of the notes: '.repeat(10) }],
          stop_reason: 'end_turn',
        });
        ids.push(sid);
      }
      global.gc?.();
      const before = process.memoryUsage().heapUsed;
      const held = ids.map(sessionFor);
      global.gc?.();
      const after = process.memoryUsage().heapUsed;
      figures.idle_session_heap_kib = round((after - before) / held.length / 1024, 1);
      if (!global.gc) figures.idle_session_note = 'run with node --expose-gc for a steadier figure';

      // A long session, with prompt caching and without: it must finish (compacted on the way),
      // and cost at most a quarter of the uncached input.
      const billed: number[] = [];
      for (const promptCaching of [true, false]) {
        enqueueLongSession(api, LONG_TURNS);
        const sid = store.sessions.create({
          title: 'long',
          model: 'claude-opus-5-5',
          approvalMode: 'auto',
        }).id;
        const long = longSession({ store, apiUrl: api.url, sessionId: sid, promptCaching });
        let turns = 0;
        let compactions = 0;
        long.on('event', (e) => {
          if (e.type === 'tool-result') turns++;
          if (e.type === 'context') compactions++;
        });
        const t = performance.now();
        const outcome = await long.run(`Run the ${LONG_TURNS}-step job.`);
        const ms = performance.now() - t;
        const row = store.sessions.get(sid)!;
        billed.push(billedInput(row));
        log(
          `long session ${promptCaching ? 'cached' : 'uncached'}: ${outcome.stopReason} after ${turns} turns, ${compactions} compaction(s), ${round(ms / 1000, 1)} s; input ${row.inputTokens}, cache read ${row.cacheReadTokens}, cache write ${row.cacheWriteTokens}`,
        );
        if (promptCaching) {
          figures.agent_long_session_turns = outcome.stopReason === 'end_turn' ? turns : 0;
          figures.agent_long_session_compactions = compactions;
          figures.agent_long_session_s = round(ms / 1000, 1);
        }
      }
      figures.agent_cache_ratio = round(billed[0]! / billed[1]!, 3);
    } finally {
      store.dispose();
      await api.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
    return figures;
  },
};
