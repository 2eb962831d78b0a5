import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { CoreBridge, type MainSecrets } from '../../src/main/electron/core-bridge.js';
import type { CoreStatus, EventName } from '../../src/shared/api.js';
import type { AgentEvent } from '../../src/shared/agent-events.js';
import type { Grant, TaskSummary } from '../../src/shared/app-contract.js';
import type { Result } from '../../src/shared/result.js';
import * as fake from '../helpers/fake-electron.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

vi.mock('electron', () => import('../helpers/fake-electron.js'));

/**
 * The core in its own process, as the app runs it: the real bridge, the real entry started with
 * child_process.fork (the fake's utilityProcess), a real SQLite file, and the real SDK against the
 * local Messages API. Only Electron itself is faked.
 */
const ENTRY = path.resolve('src/main/electron/core-process-entry.ts');
const KEY = 'sk-ant-test-key-0123456789abcd';

/** Waits until `pred` holds, polling. */
async function until(pred: () => boolean, ms = 15_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Main's keychain, in memory: what the bridge is asked to keep. */
class MemoryKeychain implements MainSecrets {
  value: string | null = null;
  canKeep = () => true;
  get = () => this.value;
  set = (s: string) => void (this.value = s);
  clear = () => void (this.value = null);
}

let api: MockMessagesApi;
let home: ReturnType<typeof tempDir>;
let work: string;
let keychain: MemoryKeychain;
let seen: { event: EventName; payload: unknown }[];
let bridges: CoreBridge[];
/** What main's picker answers; a pending promise keeps a request in flight. */
let pick: () => Promise<string | null>;
let opened: string[];

function startBridge(backoffMs = 50): CoreBridge {
  const b = new CoreBridge({
    entry: ENTRY,
    secrets: keychain,
    pickFolder: () => pick(),
    openPath: async (p) => void opened.push(p),
    env: {
      ...process.env,
      PADDOCK_HOME: path.join(home.dir, 'data'),
      ANTHROPIC_BASE_URL: api.url,
      ANTHROPIC_API_KEY: '',
    },
    backoffMs: () => backoffMs,
  });
  b.onEvent((event, payload) => seen.push({ event, payload }));
  bridges.push(b);
  b.start();
  return b;
}

const statuses = () =>
  seen.filter((s) => s.event === 'core:status').map((s) => (s.payload as CoreStatus).state);
const taskEvents = (id: string) =>
  seen
    .filter((s) => s.event === 'task:event')
    .map((s) => s.payload as { taskId: string; event: AgentEvent })
    .filter((p) => p.taskId === id)
    .map((p) => p.event);

/** A request that must succeed; its value. */
async function value<T>(r: Promise<Result<unknown>>): Promise<T> {
  const got = await r;
  if (!got.ok) throw new Error(`${got.error.code}: ${got.error.message}`);
  return got.value as T;
}

/** Kills the core process as the OS would, and waits until the bridge has seen it go. */
async function crash(b: CoreBridge): Promise<void> {
  const pid = b.pid!;
  const before = statuses().length;
  process.kill(pid, 'SIGKILL');
  await until(() => statuses().length > before);
}

beforeAll(async () => {
  api = await startMessagesApi({ apiKey: KEY });
});
afterAll(() => api.close());
beforeEach(() => {
  fake.resetFake();
  home = tempDir();
  work = fs.mkdtempSync(path.join(home.dir, 'work-'));
  keychain = new MemoryKeychain();
  seen = [];
  bridges = [];
  pick = async () => work;
  opened = [];
  api.requests.length = 0;
});
afterEach(async () => {
  await Promise.all(bridges.map((b) => b.shutdown()));
  expect(api.problems).toEqual([]);
  home.cleanup();
});

describe('the core process', () => {
  it('answers the contract, and asks main for the picker, the file manager and the keychain', async () => {
    const b = startBridge();
    expect(await value(b.call('app:info', {}))).toMatchObject({
      host: 'electron',
      dataDir: path.join(home.dir, 'data'),
    });
    expect(b.pid).toBe(fake.utilityProcesses[0]!.pid);
    expect(b.pid).not.toBe(process.pid);
    expect(await value(b.call('settings:get', {}))).toMatchObject({ approvalMode: 'auto' });
    expect(await b.call('settings:update', { vmCpus: 'lots' })).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });

    // Typed paths never grant a folder in the app; the picker (in main) and a drop do.
    expect(await b.call('grants:add', { path: work, readOnly: false })).toMatchObject({
      ok: false,
      error: { code: 'USE_PICKER' },
    });
    const picked = await value<{ grant: Grant }>(b.call('grants:pick', { readOnly: true }));
    expect(picked.grant).toMatchObject({ hostPath: fs.realpathSync(work), readOnly: true });
    const dropped = await value<Grant>(b.grantFolder(work, false));
    expect(dropped).toMatchObject({ hostPath: fs.realpathSync(work), readOnly: false });
    const missing = await b.grantFolder(path.join(home.dir, 'does-not-exist'), false);
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.error.code).not.toBe('INTERNAL');

    const logs = await value<{ path: string; opened: boolean }>(b.call('app:openLogs', {}));
    expect(logs.opened).toBe(true);
    expect(opened).toEqual([logs.path]);

    // The key is checked in the core process, then kept by main (safeStorage in the app).
    await value(b.call('settings:setApiKey', { key: KEY }));
    await until(() => keychain.value === KEY);
    expect(await value(b.call('settings:apiKey', {}))).toMatchObject({ source: 'stored' });
  });

  it('restarts after a crash: in-flight requests say so, the task survives and resumes', async () => {
    keychain.value = KEY;
    const b = startBridge();
    const grant = await value<Grant>(b.grantFolder(work, false));
    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Sorted.' }], stop_reason: 'end_turn' },
    });
    const task = await value<TaskSummary>(
      b.call('tasks:create', {
        prompt: 'Sort my notes',
        folders: [{ id: grant.id, readOnly: false }],
      }),
    );
    await until(() => taskEvents(task.id).some((e) => e.type === 'done'));

    // A request waiting on main (the picker is open) when the core process dies.
    let closePicker: ((p: string | null) => void) | undefined;
    pick = () => new Promise((resolve) => (closePicker = resolve));
    const inFlight = b.call('grants:pick', { readOnly: false });
    await until(() => closePicker !== undefined);
    const firstPid = b.pid;
    await crash(b);
    expect(await inFlight).toEqual({
      ok: false,
      error: { code: 'CORE_RESTARTED', message: expect.stringMatching(/try again/) },
    });
    closePicker!(work); // answered after the crash: nobody is waiting, nothing breaks

    await until(() => statuses().includes('ready'));
    expect(statuses()).toEqual(['crashed', 'restarting', 'ready']);
    expect(b.pid).not.toBe(firstPid);
    expect(fake.utilityProcesses).toHaveLength(2);

    const list = await value<{ tasks: TaskSummary[] }>(b.call('tasks:list', {}));
    expect(list.tasks.map((t) => t.id)).toEqual([task.id]);
    // The key main kept reached the new process.
    expect(await value(b.call('settings:apiKey', {}))).toMatchObject({ source: 'stored' });
    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Again.' }], stop_reason: 'end_turn' },
    });
    await value(b.call('tasks:send', { id: task.id, prompt: 'once more' }));
    await until(() => taskEvents(task.id).filter((e) => e.type === 'done').length === 2);
    expect(api.requests.at(-1)!.body.messages!.map((m) => m.role)).toEqual([
      'user',
      'assistant',
      'user',
    ]);
  }, 60_000);

  it('names the automation with its run’s event, so main’s notifier needs no store', async () => {
    keychain.value = KEY;
    const b = startBridge();
    api.enqueue({ reply: { content: [{ type: 'text', text: 'Done.' }], stop_reason: 'end_turn' } });
    const automation = await value<{ id: string }>(
      b.call('automations:create', {
        name: 'Morning digest',
        prompt: 'Summarise',
        schedule: 'every day at 9:00',
        tz: 'UTC',
        folders: [],
      }),
    );
    await value(b.call('automations:runNow', { id: automation.id }));
    await until(() => seen.some((s) => s.event === 'automations:run-changed'));
    expect(b.automationName(automation.id)).toBe('Morning digest');
    await until(() =>
      seen.some(
        (s) =>
          s.event === 'automations:run-changed' &&
          !['queued', 'running'].includes((s.payload as { status: string }).status),
      ),
    );
  });

  it('does not report a clean shutdown as a crash', async () => {
    const b = startBridge();
    await value(b.call('app:info', {}));
    const child = fake.utilityProcesses[0]!;
    const exited = new Promise<number>((resolve) => child.on('exit', resolve));
    await b.shutdown();
    expect(await exited).toBe(0);
    expect(statuses()).toEqual([]);
    expect(b.pid).toBeUndefined();
    expect(await b.call('app:info', {})).toMatchObject({
      ok: false,
      error: { code: 'CORE_STOPPED' },
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.utilityProcesses).toHaveLength(1);
  });

  it('stops restarting after three quick crashes, until Restart', async () => {
    const b = startBridge(10);
    for (let i = 1; i <= 3; i++) {
      await value(b.call('app:info', {})); // waits for the (re)started process to be ready
      await crash(b);
    }
    expect(statuses()).toEqual([
      'crashed',
      'restarting',
      'ready',
      'crashed',
      'restarting',
      'ready',
      'failed',
    ]);
    const failed = seen.filter((s) => s.event === 'core:status').at(-1)!.payload as CoreStatus;
    expect(failed.message).toMatch(/Restart/);
    await new Promise((r) => setTimeout(r, 300));
    expect(fake.utilityProcesses).toHaveLength(3);
    expect(b.pid).toBeUndefined();
    expect(await b.call('app:info', {})).toMatchObject({
      ok: false,
      error: { code: 'CORE_STOPPED', message: expect.stringMatching(/Restart/) },
    });

    // The window's Restart button.
    expect(b.restart()).toEqual({ restarted: true });
    expect(await value(b.call('app:info', {}))).toMatchObject({ host: 'electron' });
    expect(statuses().slice(-2)).toEqual(['restarting', 'ready']);
    expect(b.restart()).toEqual({ restarted: false });
  }, 60_000);
});
