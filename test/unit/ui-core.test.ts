import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EventName } from '../../src/shared/api.js';
import type { AgentEvent } from '../../src/shared/agent-events.js';
import type { Approval, TaskSummary } from '../../src/shared/app-contract.js';
import { ApiKeys, maskKey, MemorySecretStore } from '../../src/main/core/api-keys.js';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { browseFolders, filesModifiedSince } from '../../src/main/core/folders.js';
import { displayEvents, filesFromToolCalls } from '../../src/main/core/task-history.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const KEY = 'sk-ant-test-key-0123456789abcd';

/** Waits until `pred` holds, polling. */
async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('the API key', () => {
  let api: MockMessagesApi;
  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: KEY });
  });
  afterAll(() => api.close());

  it('is checked with a real call before it is kept, and only its masked form is shown', async () => {
    const keys = new ApiKeys(new MemorySecretStore(), { ANTHROPIC_BASE_URL: api.url });
    expect(keys.status()).toMatchObject({ configured: false, source: 'none', masked: null });
    await expect(keys.set('sk-ant-wrong-key-000000')).rejects.toMatchObject({ code: 'AUTH' });
    expect(keys.resolve()).toBeNull();
    const r = await keys.set(KEY);
    expect(r.models).toContain('claude-opus-5-5');
    expect(r.status).toMatchObject({ configured: true, source: 'stored', masked: 'sk-ant-…abcd' });
    expect(JSON.stringify(r)).not.toContain(KEY);
    expect(api.sideRequests.at(-1)).toMatchObject({ method: 'GET', path: '/v1/models' });
  });

  it('prefers the stored key to ANTHROPIC_API_KEY, and says where it came from', () => {
    const secrets = new MemorySecretStore();
    const keys = new ApiKeys(secrets, { ANTHROPIC_API_KEY: 'sk-ant-from-env-xyz9' });
    expect(keys.status()).toMatchObject({ source: 'env', masked: 'sk-ant-…xyz9' });
    secrets.set('sk-ant-stored-key-1111');
    expect(keys.resolve()?.apiKey).toBe('sk-ant-stored-key-1111');
    expect(keys.status().source).toBe('stored');
  });

  it('explains an unreachable endpoint in a sentence', async () => {
    const keys = new ApiKeys(new MemorySecretStore(), { ANTHROPIC_BASE_URL: 'http://127.0.0.1:9' });
    await expect(keys.set(KEY)).rejects.toMatchObject({ code: 'MODEL_UNREACHABLE' });
  });

  it('masks short and unusual keys too', () => {
    expect(maskKey('abcdefgh')).toBe('…gh');
    expect(maskKey('key-1234567890wxyz')).toBe('key…wxyz');
  });
});

describe('the web host folder browser', () => {
  let t: { dir: string; cleanup(): void };
  beforeEach(() => {
    t = tempDir();
    return () => t.cleanup();
  });

  it('lists folders only, skips hidden ones, and starts at home', () => {
    fs.mkdirSync(path.join(t.dir, 'b-project'));
    fs.mkdirSync(path.join(t.dir, 'a-notes'));
    fs.mkdirSync(path.join(t.dir, '.secret'));
    fs.writeFileSync(path.join(t.dir, 'file.txt'), 'x');
    fs.symlinkSync('/etc', path.join(t.dir, 'etc-link'));
    const l = browseFolders(undefined, t.dir);
    expect(l.path).toBe(fs.realpathSync(t.dir));
    expect(l.folders.map((f) => f.name)).toEqual(['a-notes', 'b-project']);
    expect(l.parent).toBe(path.dirname(fs.realpathSync(t.dir)));
  });

  it('never opens a system folder, even by path or through a symlink', () => {
    expect(() => browseFolders('/etc', t.dir)).toThrow(/system folder/);
    fs.symlinkSync('/usr', path.join(t.dir, 'usr-link'));
    expect(() => browseFolders(path.join(t.dir, 'usr-link'), t.dir)).toThrow(/system folder/);
    expect(browseFolders('/', t.dir).folders.map((f) => f.name)).not.toContain('etc');
  });

  it('finds the files changed since a moment, skipping .git', async () => {
    fs.writeFileSync(path.join(t.dir, 'old.txt'), 'old');
    const since = Date.now() + 5;
    await new Promise((r) => setTimeout(r, 20));
    fs.mkdirSync(path.join(t.dir, 'out'));
    fs.writeFileSync(path.join(t.dir, 'out', 'new.txt'), 'new');
    fs.mkdirSync(path.join(t.dir, '.git'));
    fs.writeFileSync(path.join(t.dir, '.git', 'index'), 'x');
    expect(filesModifiedSince(t.dir, since)).toEqual(['out/new.txt']);
  });
});

describe('the task manager (real store, real SDK, local Messages API, no VM)', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let work: string;
  let core: Core;
  let seen: { event: EventName; payload: unknown }[];

  const taskEvents = (id: string): AgentEvent[] =>
    seen
      .filter((s) => s.event === 'task:event')
      .map((s) => s.payload as { taskId: string; event: AgentEvent })
      .filter((p) => p.taskId === id)
      .map((p) => p.event);
  const call = async (channel: string, req: unknown) => {
    const r = await dispatch(core.handlers, channel, req);
    if (!r.ok) throw Object.assign(new Error(r.error.message), { code: r.error.code });
    return r.value as never;
  };

  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: KEY });
  });
  afterAll(() => api.close());
  beforeEach(() => {
    home = tempDir();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-work-'));
    core = new Core({
      dataDir: path.join(home.dir, 'data'),
      host: 'web',
      env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
    });
    seen = [];
    core.events.onAny((event, payload) => seen.push({ event, payload }));
    api.requests.length = 0;
  });
  afterEach(async () => {
    await core.close();
    expect(api.problems).toEqual([]);
    home.cleanup();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('creates a task on a granted folder, streams it live, and reopens it from the store', async () => {
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'All sorted.' }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 1200, output_tokens: 30 },
      },
    });
    const grant = (await call('grants:add', { path: work, readOnly: false })) as {
      id: string;
      hostPath: string;
    };
    expect(grant.hostPath).toBe(fs.realpathSync(work));
    const task = (await call('tasks:create', {
      prompt: 'Sort my notes\nplease',
      folders: [{ id: grant.id, readOnly: true }],
      allowlist: ['pypi.org'],
    })) as TaskSummary;
    expect(task).toMatchObject({
      title: 'Sort my notes',
      status: 'running',
      allowlist: ['pypi.org'],
    });
    expect(task.folders[0]).toMatchObject({ hostPath: fs.realpathSync(work), readOnly: true });
    await until(() => taskEvents(task.id).some((e) => e.type === 'done'));
    expect(taskEvents(task.id).map((e) => e.type)).toEqual([
      'session',
      'user',
      'text-delta',
      'text-delta',
      'text-delta',
      'assistant',
      'done',
    ]);
    const changed = seen
      .filter((s) => s.event === 'task:changed')
      .map((s) => s.payload as TaskSummary);
    expect(changed.at(-1)).toMatchObject({ status: 'done', inputTokens: 1200, outputTokens: 30 });
    expect(changed.at(-1)!.costUsd).toBeGreaterThan(0);

    const got = (await call('tasks:get', { id: task.id })) as {
      events: AgentEvent[];
      running: boolean;
    };
    expect(got.running).toBe(false);
    expect(got.events).toEqual([
      { type: 'user', text: 'Sort my notes\nplease' },
      {
        type: 'assistant',
        text: 'All sorted.',
        stopReason: 'end_turn',
        inputTokens: 1200,
        outputTokens: 30,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
      },
      { type: 'done', stopReason: 'end_turn', costUsd: 0 },
    ]);
    const list = (await call('tasks:list', { query: 'notes' })) as { tasks: TaskSummary[] };
    expect(list.tasks.map((t) => t.id)).toEqual([task.id]);
    expect(
      ((await call('tasks:list', { query: 'nothing like it' })) as { tasks: [] }).tasks,
    ).toEqual([]);
  });

  it('boots no warm VM when there is no image yet (the task would fail its tools anyway)', async () => {
    expect(await call('tasks:prewarm', { folders: [] })).toEqual({ warming: false });
    expect(core.pool.size).toBe(0);
  });

  it('refuses to start without a key, with the sentence to act on', async () => {
    const bare = new Core({ dataDir: path.join(home.dir, 'bare'), host: 'web', env: {} });
    const r = await dispatch(bare.handlers, 'tasks:create', { prompt: 'hi', folders: [] });
    expect(r).toMatchObject({ ok: false, error: { code: 'NO_API_KEY' } });
    await bare.close();
  });

  it('stops a task mid-stream at once, and a follow-up resumes it', async () => {
    api.enqueue({
      hang: true,
      afterEvents: 4,
      reply: {
        content: [{ type: 'text', text: 'a long answer that never ends' }],
        stop_reason: 'end_turn',
      },
    });
    const task = (await call('tasks:create', {
      prompt: 'go on forever',
      folders: [],
    })) as TaskSummary;
    await until(() => taskEvents(task.id).some((e) => e.type === 'text-delta'));
    const t0 = Date.now();
    await call('tasks:cancel', { id: task.id });
    await until(() => taskEvents(task.id).some((e) => e.type === 'done'));
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(taskEvents(task.id).at(-1)).toEqual({
      type: 'done',
      stopReason: 'cancelled',
      costUsd: 0,
    });
    expect(((await call('tasks:get', { id: task.id })) as { task: TaskSummary }).task.status).toBe(
      'cancelled',
    );

    api.enqueue({ reply: { content: [{ type: 'text', text: 'Back.' }], stop_reason: 'end_turn' } });
    await call('tasks:send', { id: task.id, prompt: 'carry on' });
    await until(() => taskEvents(task.id).filter((e) => e.type === 'done').length === 2);
    expect(api.requests.at(-1)!.body.messages!.map((m) => m.role)).toEqual(['user']);
  });

  it('asks before a tool in ask mode; the answer is recorded and a session answer sticks', async () => {
    const artifact = (title: string) => ({
      type: 'tool_use' as const,
      name: 'create_artifact',
      input: { title, kind: 'markdown', content: '# hi' },
    });
    api.enqueue(
      { reply: { content: [artifact('one')], stop_reason: 'tool_use' } },
      { reply: { content: [artifact('two'), artifact('three')], stop_reason: 'tool_use' } },
      { reply: { content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn' } },
    );
    const task = (await call('tasks:create', {
      prompt: 'make notes',
      folders: [],
      approvalMode: 'ask',
    })) as TaskSummary;
    const asked = () =>
      seen.filter((s) => s.event === 'approval:requested').map((s) => s.payload as Approval);
    await until(() => asked().length === 1);
    expect(asked()[0]).toMatchObject({ taskId: task.id, kind: 'tool', subject: 'create_artifact' });
    expect(
      ((await call('tasks:get', { id: task.id })) as { approvals: Approval[] }).approvals,
    ).toHaveLength(1);
    expect(await call('approvals:answer', { id: asked()[0]!.id, answer: 'deny' })).toEqual({
      answered: true,
    });
    await until(() => asked().length === 2);
    await call('approvals:answer', { id: asked()[1]!.id, answer: 'session' });
    await until(() => taskEvents(task.id).some((e) => e.type === 'done'));
    // 'three' ran without asking: create_artifact was allowed for the rest of the task.
    expect(asked()).toHaveLength(2);
    expect(await call('approvals:answer', { id: asked()[1]!.id, answer: 'once' })).toEqual({
      answered: false,
    });
    const got = (await call('tasks:get', { id: task.id })) as { events: AgentEvent[] };
    expect(got.events.filter((e) => e.type === 'approval')).toEqual([
      { type: 'approval', kind: 'tool', subject: 'create_artifact', answer: 'deny' },
      { type: 'approval', kind: 'tool', subject: 'create_artifact', answer: 'allow' },
      { type: 'approval', kind: 'tool', subject: 'create_artifact', answer: 'allow' },
    ]);
    expect(
      got.events
        .filter((e) => e.type === 'tool-result')
        .map((e) => (e as { isError: boolean }).isError),
    ).toEqual([true, false, false]);
  });

  it('answers an open question with no when the task is stopped', async () => {
    api.enqueue({
      reply: {
        content: [{ type: 'tool_use', name: 'bash', input: { command: 'ls' } }],
        stop_reason: 'tool_use',
      },
    });
    const task = (await call('tasks:create', {
      prompt: 'ls',
      folders: [],
      approvalMode: 'ask',
    })) as TaskSummary;
    await until(() => seen.some((s) => s.event === 'approval:requested'));
    await call('tasks:cancel', { id: task.id });
    await until(() => taskEvents(task.id).some((e) => e.type === 'done'));
    expect(seen.find((s) => s.event === 'approval:resolved')?.payload).toMatchObject({
      answer: 'deny',
    });
    expect(taskEvents(task.id).at(-1)).toMatchObject({ stopReason: 'cancelled' });
  });

  it('in Electron, refuses typed paths and browsing: folders come from drop or the picker', async () => {
    const app = new Core({
      dataDir: path.join(home.dir, 'app'),
      host: 'electron',
      env: {},
      pickFolder: async () => work,
    });
    const typed = await dispatch(app.handlers, 'grants:add', { path: work, readOnly: false });
    expect(typed).toMatchObject({ ok: false, error: { code: 'USE_PICKER' } });
    expect(await dispatch(app.handlers, 'grants:browse', {})).toMatchObject({ ok: false });
    const picked = await dispatch(app.handlers, 'grants:pick', { readOnly: true });
    expect(picked).toMatchObject({
      ok: true,
      value: { grant: { hostPath: fs.realpathSync(work), readOnly: true } },
    });
    expect(app.grantFolder(work, true).id).toBe(
      (picked as { value: { grant: { id: string } } }).value.grant.id,
    );
    await app.close();
  });

  it('refuses system folders and the data folder as grants', async () => {
    await expect(call('grants:add', { path: '/etc', readOnly: true })).rejects.toMatchObject({
      code: 'GRANT_REFUSED',
    });
    await expect(
      call('grants:add', { path: path.join(home.dir, 'data'), readOnly: true }),
    ).rejects.toMatchObject({ code: 'GRANT_REFUSED' });
  });
});

describe('a stored task rebuilt for display', () => {
  it('lists files written by the file tools inside read-write shares only', () => {
    const rows = [
      {
        type: 'assistant',
        payload: {
          content: [
            { type: 'tool_use', id: 'a', name: 'write_file', input: { path: 'out/report.md' } },
            { type: 'tool_use', id: 'b', name: 'edit_file', input: { path: '/mnt/ref/x.txt' } },
            { type: 'tool_use', id: 'c', name: 'write_file', input: { path: '/tmp/scratch' } },
            { type: 'tool_use', id: 'd', name: 'write_file', input: { path: 'failed.md' } },
          ],
        },
      },
      { type: 'tool_result', payload: { tool_use_id: 'a', is_error: false } },
      { type: 'tool_result', payload: { tool_use_id: 'b', is_error: false } },
      { type: 'tool_result', payload: { tool_use_id: 'c', is_error: false } },
      { type: 'tool_result', payload: { tool_use_id: 'd', is_error: true } },
    ].map((r, i) => ({ ...r, sessionId: 's', seq: i + 1, createdAt: 0 }));
    expect(
      filesFromToolCalls(rows, [
        { name: 'work', readOnly: false },
        { name: 'ref', readOnly: true },
      ]),
    ).toEqual(['work/out/report.md']);
    expect(displayEvents(rows).filter((e) => e.type === 'tool-start')).toHaveLength(4);
  });
});
