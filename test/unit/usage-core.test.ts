import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  requests,
  type Channel,
  type EventName,
  type Req,
  type Res,
} from '../../src/shared/api.js';
import type { AutomationRun } from '../../src/shared/automations-contract.js';
import type { TaskSummary } from '../../src/shared/app-contract.js';
import { spendLimitSentence } from '../../src/shared/usage.js';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { displayEvents } from '../../src/main/core/task-history.js';
import { checkedSpendLimit } from '../../src/main/automations/service.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const KEY = 'sk-ant-test-key-0123456789used';
/** Monday 4 January 2027, 08:59 UTC. */
const START = Date.UTC(2027, 0, 4, 8, 59);
const RULE =
  'The spend limit must be a positive number of dollars, such as 2 or 0.50, or none for no limit.';

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Calls a channel as a transport does, unwraps the Result, and checks the answer against the
 * channel's response schema: what the page receives is what the contract says.
 */
async function rpc<C extends Channel>(core: Core, channel: C, req: Req<C>): Promise<Res<C>> {
  const r = await dispatch(core.handlers, channel, req);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return requests[channel].res.parse(r.value) as Res<C>;
}

describe('usage and spend limits in the app core (real store, real SDK, local Messages API)', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let core: Core;
  let clock: FakeClock;
  let seen: { event: EventName; payload: unknown }[];

  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: KEY });
  });
  afterAll(() => api.close());
  beforeEach(() => {
    home = tempDir();
    clock = new FakeClock(START);
    core = new Core({
      dataDir: path.join(home.dir, 'data'),
      host: 'web',
      env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
      scheduler: { clock },
    });
    seen = [];
    core.events.onAny((event, payload) => seen.push({ event, payload }));
    api.requests.length = 0;
  });
  afterEach(async () => {
    await core.close();
    expect(api.problems).toEqual([]);
    expect(api.remaining).toBe(0);
    home.cleanup();
  });

  const base = {
    name: 'Nightly tidy',
    prompt: 'Tidy the notes',
    schedule: 'every day at 23:00',
    tz: 'UTC',
    folders: [],
  };

  it('takes a spend limit of a positive number of dollars or none, and says so otherwise', async () => {
    const a = await rpc(core, 'automations:create', { ...base, spendLimitUsd: 2 });
    expect(a).toMatchObject({ spendLimitUsd: 2, usage: { costUsd: 0, inputTokens: 0 } });
    for (const bad of [0, -1, '2', 'lots', 2e7]) {
      const r = await dispatch(core.handlers, 'automations:create', {
        ...base,
        spendLimitUsd: bad,
      });
      expect(r).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
      expect(!r.ok && r.error.message).toContain(`spendLimitUsd: ${RULE}`);
    }
    const edited = await rpc(core, 'automations:update', { id: a.id, spendLimitUsd: 0.5 });
    expect(edited.spendLimitUsd).toBe(0.5);
    // Leaving it out changes nothing; null removes it.
    expect((await rpc(core, 'automations:update', { id: a.id, name: 'x' })).spendLimitUsd).toBe(
      0.5,
    );
    expect(
      (await rpc(core, 'automations:update', { id: a.id, spendLimitUsd: null })).spendLimitUsd,
    ).toBeNull();
    const none = await rpc(core, 'automations:create', { ...base, name: 'No limit' });
    expect(none.spendLimitUsd).toBeNull();
    // The service checks too, for the CLI and the agent's tool, which do not pass the contract.
    expect(checkedSpendLimit(null)).toBeNull();
    expect(checkedSpendLimit(1.5)).toBe(1.5);
    for (const bad of [0, -2, Number.NaN, Number.POSITIVE_INFINITY, '3'])
      expect(() => checkedSpendLimit(bad)).toThrow(RULE);
    expect(() => core.automations.service.create({ ...base, spendLimitUsd: -3 })).toThrow(
      /-3 is not one\.$/,
    );
  });

  it('stops a run at its spend limit, fails it, and the inbox says what happened and what to do', async () => {
    // 1,000 input + 2,000 cache writes (×1.25) + 50,000 cache reads (×0.1) = 8,500 at $4/M, and
    // 1,000 output at $20/M: $0.054, past a $0.02 limit after the first call. The loop would go
    // on to the tool call otherwise (and there is no VM here).
    api.enqueue({
      reply: {
        content: [
          { type: 'text', text: 'Starting on the notes.' },
          { type: 'tool_use', name: 'bash', input: { command: 'ls' } },
        ],
        stop_reason: 'tool_use',
        usage: {
          input_tokens: 1000,
          output_tokens: 1000,
          cache_creation_input_tokens: 2000,
          cache_read_input_tokens: 50_000,
        },
      },
    });
    const a = await rpc(core, 'automations:create', { ...base, spendLimitUsd: 0.02 });
    await rpc(core, 'automations:runNow', { id: a.id });
    const finished = () =>
      seen
        .filter((e) => e.event === 'automations:run-changed')
        .map((e) => e.payload as AutomationRun)
        .find((r) => r.status === 'failed' || r.status === 'succeeded');
    await until(() => finished() !== undefined);
    const run = (await rpc(core, 'automations:runs', { automationId: a.id })).runs[0]!;
    expect(run.status).toBe('failed');
    expect(run.error).toBe(
      'This run reached its spend limit of $0.02 (spent $0.05) and was stopped. Raise the limit in the automation, or run it again.',
    );
    expect(run.usage).toMatchObject({
      inputTokens: 1000,
      outputTokens: 1000,
      cacheReadTokens: 50_000,
      cacheWriteTokens: 2000,
    });
    expect(run.usage!.costUsd).toBeCloseTo(0.054, 10);
    expect(finished()!.usage?.cacheReadTokens).toBe(50_000);

    const item = (await rpc(core, 'inbox:list', {})).items[0]!;
    expect(item).toMatchObject({ kind: 'failed', title: 'Nightly tidy', runId: run.id });
    expect(item.summary).toMatch(
      /^Failed: This run reached its spend limit of \$0\.02 \(spent \$0\.05\) and was stopped\. Raise the limit in the automation, or run it again\./,
    );
    // The automation adds up its runs; the run's task shows the same tokens, cache included.
    const [listed] = (await rpc(core, 'automations:list', {})).automations;
    expect(listed!.usage).toEqual(run.usage);
    expect(listed!.lastRun?.usage).toEqual(run.usage);
    const task = await rpc(core, 'tasks:get', { id: run.sessionId! });
    expect(task.task).toMatchObject({ cacheReadTokens: 50_000, cacheWriteTokens: 2000 });
    expect(task.events.find((e) => e.type === 'error')).toMatchObject({ code: 'SPEND_LIMIT' });
    // And this month's total in Settings counts it.
    const month = await rpc(core, 'usage:summary', { tz: 'Europe/Paris' });
    expect(month.timeZone).toBe('Europe/Paris');
    expect(month.thisMonth).toMatchObject({ cacheReadTokens: 50_000, cacheWriteTokens: 2000 });
    expect(month.thisMonth.costUsd).toBeCloseTo(0.054, 10);
  });

  it('words the spend-limit sentence with the limit and what was spent', () => {
    expect(spendLimitSentence(2, 2.04)).toBe(
      'This run reached its spend limit of $2.00 (spent $2.04) and was stopped. Raise the limit in the automation, or run it again.',
    );
    expect(spendLimitSentence(0.005, 0.0061)).toMatch(/of \$0\.0050 \(spent \$0\.0061\)/);
  });

  it('gives a task its cache reads and writes apart from input, live and reopened', async () => {
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'Done.' }],
        stop_reason: 'end_turn',
        usage: {
          input_tokens: 40,
          output_tokens: 12,
          cache_read_input_tokens: 18_000,
          cache_creation_input_tokens: 900,
        },
      },
    });
    const task = await rpc(core, 'tasks:create', { prompt: 'Say done', folders: [] });
    await until(() =>
      seen.some((e) => e.event === 'task:changed' && (e.payload as TaskSummary).status === 'done'),
    );
    const got = await rpc(core, 'tasks:get', { id: task.id });
    expect(got.task).toMatchObject({
      inputTokens: 40,
      outputTokens: 12,
      cacheReadTokens: 18_000,
      cacheWriteTokens: 900,
    });
    expect(got.events.find((e) => e.type === 'assistant')).toMatchObject({
      cacheReadTokens: 18_000,
      cacheWriteTokens: 900,
    });
    const listed = (await rpc(core, 'tasks:list', {})).tasks.find((t) => t.id === task.id);
    expect(listed?.cacheReadTokens).toBe(18_000);
    const summary = await rpc(core, 'usage:summary', {});
    expect(summary.thisMonth.cacheReadTokens).toBe(18_000);
    expect(summary.lastMonth.cacheReadTokens).toBe(0);
    const bad = await dispatch(core.handlers, 'usage:summary', { tz: 'Nowhere/Special' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'BAD_TIME_ZONE' } });
  });
});

describe('a context event in a stored task', () => {
  it('comes back as the event the live view saw', () => {
    const row = (seq: number, type: string, payload: unknown) => ({
      sessionId: 's',
      seq,
      type,
      payload,
      createdAt: seq,
    });
    expect(
      displayEvents([
        row(1, 'user', { content: 'go' }),
        row(2, 'context', {
          action: 'compacted',
          tokensBefore: 182_000,
          tokensAfter: 14_000,
          message: 'Summarised the conversation so far.',
        }),
        row(3, 'context', { action: 'cleared', tokensBefore: 90_000, tokensAfter: 60_000 }),
        row(4, 'context', { action: 'something else' }),
      ]),
    ).toEqual([
      { type: 'user', text: 'go' },
      {
        type: 'context',
        action: 'compacted',
        tokensBefore: 182_000,
        tokensAfter: 14_000,
        message: 'Summarised the conversation so far.',
      },
      {
        type: 'context',
        action: 'cleared',
        tokensBefore: 90_000,
        tokensAfter: 60_000,
        message: '',
      },
    ]);
  });
});
