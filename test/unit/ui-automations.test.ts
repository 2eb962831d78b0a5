import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Channel, EventName, Req, Res } from '../../src/shared/api.js';
import type { AutomationRun } from '../../src/shared/automations-contract.js';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { FakeClock } from '../helpers/fake-clock.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const KEY = 'sk-ant-test-key-0123456789auto';
/** Monday 4 January 2027, 08:59 UTC: a minute before a daily 9:00 slot. */
const START = Date.UTC(2027, 0, 4, 8, 59);

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Calls a channel through the dispatcher, as a transport does, and unwraps the Result. */
async function rpc<C extends Channel>(core: Core, channel: C, req: Req<C>): Promise<Res<C>> {
  const r = await dispatch(core.handlers, channel, req);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as Res<C>;
}

/**
 * The app core's automations: the scheduler wired into Core (fake clock, real SQLite store, the
 * real SDK against the local Messages API), the contract's channels and events, and the agent's
 * schedule_automation tool from a task.
 */
describe('automations in the app core', () => {
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
  });
  afterEach(async () => {
    await core.close();
    expect(api.problems).toEqual([]);
    home.cleanup();
  });

  const runEvents = (status: string) =>
    seen
      .filter((e) => e.event === 'automations:run-changed')
      .map((e) => e.payload as AutomationRun)
      .filter((r) => r.status === status);

  it('previews the next 5 times, or says what is wrong with the schedule', async () => {
    const p = await rpc(core, 'automations:preview', { schedule: 'every day at 9:00', tz: 'UTC' });
    expect(p.problem).toBeNull();
    expect(p.tzid).toBe('UTC');
    expect(p.times).toEqual([0, 1, 2, 3, 4].map((d) => Date.UTC(2027, 0, 4 + d, 9, 0)));
    const paris = await rpc(core, 'automations:preview', {
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
    });
    expect(paris.times[0]).toBe(Date.UTC(2027, 0, 5, 8, 0));
    const bad = await rpc(core, 'automations:preview', { schedule: 'whenever you like' });
    expect(bad.times).toEqual([]);
    expect(bad.problem).toMatch(/\w+ .*\./);
  });

  it('runs a slot when it comes due: run events, the inbox item with its summary, the unread count', async () => {
    const a = await rpc(core, 'automations:create', {
      name: 'Morning summary',
      prompt: 'Summarise the news',
      schedule: 'every day at 9:00',
      tz: 'UTC',
      folders: [],
    });
    expect(a).toMatchObject({ enabled: true, nextRunAt: Date.UTC(2027, 0, 4, 9), running: false });
    expect(seen.some((e) => e.event === 'automations:changed')).toBe(true);
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'Three new files; **nothing** urgent.' }],
        stop_reason: 'end_turn',
      },
    });
    await clock.advance(61_000);
    await until(() => runEvents('succeeded').length === 1);
    expect(runEvents('running')).toHaveLength(1);
    const [run] = runEvents('succeeded');
    expect(run).toMatchObject({ slotAt: Date.UTC(2027, 0, 4, 9), trigger: 'schedule' });
    expect(run!.sessionId).toMatch(/\w/);

    const inbox = await rpc(core, 'inbox:list', {});
    expect(inbox.unread).toBe(1);
    expect(inbox.items[0]).toMatchObject({
      title: 'Morning summary',
      kind: 'succeeded',
      state: 'unread',
      summary: 'Three new files; nothing urgent.',
      sessionId: run!.sessionId,
    });
    expect(seen.filter((e) => e.event === 'inbox:changed').at(-1)?.payload).toEqual({ unread: 1 });
    // The run's session is a task the person can open.
    const task = await rpc(core, 'tasks:get', { id: run!.sessionId! });
    expect(task.task.status).toBe('done');

    const item = inbox.items[0]!;
    await rpc(core, 'inbox:markRead', { id: item.id });
    expect(await rpc(core, 'inbox:unreadCount', {})).toEqual({ unread: 0 });
    expect(seen.filter((e) => e.event === 'inbox:changed').at(-1)?.payload).toEqual({ unread: 0 });
    await rpc(core, 'inbox:archive', { id: item.id });
    expect((await rpc(core, 'inbox:list', {})).items).toEqual([]);
    expect((await rpc(core, 'inbox:list', { includeArchived: true })).items).toHaveLength(1);

    const list = await rpc(core, 'automations:list', {});
    expect(list.automations[0]).toMatchObject({
      nextRunAt: Date.UTC(2027, 0, 5, 9),
      lastRun: { status: 'succeeded' },
    });
  });

  it('records slots missed while asleep when the machine resumes, and says so', async () => {
    const a = await rpc(core, 'automations:create', {
      name: 'Hourly check',
      prompt: 'Check',
      schedule: 'every hour',
      tz: 'UTC',
      folders: [],
      missed: 'skip',
    });
    // Asleep for three hours: no timer fired; the wake is what notices.
    clock.jump(3 * 3600_000);
    core.power.emit('resume');
    await until(() => runEvents('missed').length === 3);
    const runs = (await rpc(core, 'automations:runs', { automationId: a.id })).runs;
    expect(runs.map((r) => r.status)).toEqual(['missed', 'missed', 'missed']);
    expect(runs[0]!.error).toMatch(/^Missed: Paddock was not running/);
    expect((await rpc(core, 'inbox:unreadCount', {})).unread).toBe(3);
    const items = (await rpc(core, 'inbox:list', {})).items;
    expect(items.every((i) => i.kind === 'missed')).toBe(true);
  });

  it('edits, pauses, resumes, runs now and removes', async () => {
    const a = await rpc(core, 'automations:create', {
      name: 'Weekly',
      prompt: 'Tidy up',
      schedule: 'every Monday at 10:00',
      tz: 'UTC',
      folders: [],
    });
    const edited = await rpc(core, 'automations:update', {
      id: a.id,
      name: 'Weekly tidy',
      schedule: 'every Tuesday at 10:00',
      tz: 'UTC',
    });
    expect(edited).toMatchObject({
      name: 'Weekly tidy',
      scheduleText: 'every Tuesday at 10:00',
      nextRunAt: Date.UTC(2027, 0, 5, 10),
    });
    const bad = await dispatch(core.handlers, 'automations:update', {
      id: a.id,
      schedule: 'at teatime',
    });
    expect(bad).toMatchObject({ ok: false, error: { code: 'BAD_SCHEDULE' } });
    // A folder the automation never had cannot be slipped in by path.
    const sneaky = await dispatch(core.handlers, 'automations:update', {
      id: a.id,
      keepFolders: [{ hostPath: '/etc', readOnly: true }],
    });
    expect(sneaky).toMatchObject({ ok: false, error: { code: 'GRANT_MISSING' } });

    const paused = await rpc(core, 'automations:pause', { id: a.id });
    expect(paused).toMatchObject({ enabled: false, nextRunAt: null });

    // Run now works while paused: the person asked for it.
    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Tidied.' }], stop_reason: 'end_turn' },
    });
    const started = await rpc(core, 'automations:runNow', { id: a.id });
    expect(started).toMatchObject({ status: 'running', trigger: 'manual' });
    await until(() => runEvents('succeeded').length === 1);
    expect((await rpc(core, 'inbox:list', {})).items[0]!.summary).toBe('Tidied.');

    const resumed = await rpc(core, 'automations:resume', { id: a.id });
    expect(resumed).toMatchObject({ enabled: true, nextRunAt: Date.UTC(2027, 0, 5, 10) });
    expect(await rpc(core, 'automations:remove', { id: a.id })).toEqual({ removed: true });
    expect((await rpc(core, 'automations:list', {})).automations).toEqual([]);
    // Its history stays.
    expect((await rpc(core, 'automations:runs', {})).runs).toHaveLength(1);
    const gone = await dispatch(core.handlers, 'automations:pause', { id: a.id });
    expect(gone).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
  });

  it('lets the agent schedule an automation from a task, which the page then lists', async () => {
    api.enqueue(
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              name: 'schedule_automation',
              input: {
                name: 'Daily notes',
                prompt: 'Sort my notes',
                schedule: 'every day at 7:30',
              },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      {
        reply: {
          content: [{ type: 'text', text: 'Scheduled.' }],
          stop_reason: 'end_turn',
        },
      },
    );
    const task = await rpc(core, 'tasks:create', {
      prompt: 'Sort my notes every morning',
      folders: [],
    });
    // The person is always asked first, and says yes.
    await until(() => seen.some((e) => e.event === 'approval:requested'));
    const question = seen.find((e) => e.event === 'approval:requested')!.payload as {
      id: string;
      kind: string;
    };
    expect(question.kind).toBe('automation');
    await rpc(core, 'approvals:answer', { id: question.id, answer: 'once' });
    await until(() =>
      seen.some((e) => {
        const t = e.payload as { id?: string; status?: string };
        return e.event === 'task:changed' && t.id === task.id && t.status === 'done';
      }),
    );
    const list = (await rpc(core, 'automations:list', {})).automations;
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      name: 'Daily notes',
      scheduleText: 'every day at 7:30',
      createdBySession: task.id,
      enabled: true,
    });
    expect(seen.some((e) => e.event === 'automations:changed')).toBe(true);
    const result = (await rpc(core, 'tasks:get', { id: task.id })).events.find(
      (e) => e.type === 'tool-result',
    );
    expect(result).toMatchObject({ name: 'schedule_automation', isError: false });
    expect(result?.type === 'tool-result' && result.content).toMatch(/^Scheduled “Daily notes”/);
    await rpc(core, 'automations:pause', { id: list[0]!.id });
    await rpc(core, 'automations:remove', { id: list[0]!.id });
  });
});
