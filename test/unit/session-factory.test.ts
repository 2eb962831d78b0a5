import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Approval } from '../../src/shared/app-contract.js';
import { ApprovalDesk, deskApprover, unattendedApprover } from '../../src/main/agent/approvals.js';
import { ApiKeys, MemorySecretStore } from '../../src/main/core/api-keys.js';
import { SessionFactory } from '../../src/main/core/sessions.js';
import { Store } from '../../src/main/store/store.js';
import type { VmBackend } from '../../src/main/vm/backend.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const KEY = 'sk-ant-factory-key-0123456789abcd';

/** A backend that must never be asked for a VM in these tests (no tool needs one). */
const noVm: VmBackend = {
  start: () => {
    throw new Error('no VM should boot');
  },
} as unknown as VmBackend;

describe('the one session factory', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let store: Store;
  const factory = (env: NodeJS.ProcessEnv) =>
    new SessionFactory({
      store,
      dataDir: home.dir,
      backend: noVm,
      apiKeys: new ApiKeys(new MemorySecretStore(), env),
    });

  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: KEY });
  });
  afterAll(() => api.close());
  beforeEach(() => {
    home = tempDir();
    store = Store.open(home.dir);
  });
  afterEach(() => {
    store.dispose();
    home.cleanup();
  });

  it('adds Settings’ allowlists, keeps prompt answers apart, and stores nothing when an entry is bad', () => {
    store.settings.update({ networkAllowlist: ['pypi.org'], promptAllowlist: ['example.com'] });
    const f = factory({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: api.url });
    const row = f.create({
      title: 'first line\nsecond line',
      folders: [],
      allowHosts: ['github.com'],
      promptHosts: ['docs.test'],
    });
    expect(row.title).toBe('first line');
    expect(row.allowlist).toEqual(['pypi.org', 'github.com']);
    expect(row.promptAllowlist).toEqual(['example.com', 'docs.test']);

    expect(() => f.create({ title: 'x', folders: [], allowHosts: ['*'] })).toThrow(
      expect.objectContaining({ code: 'BAD_ALLOW_HOST' }),
    );
    expect(store.sessions.list().map((r) => r.id)).toEqual([row.id]);
  });

  it('says where to enter a key when there is none, before a session opens', () => {
    const f = factory({});
    const row = f.create({ title: 'x', folders: [] });
    expect(() => f.open(row.id, { approver: unattendedApprover, canSchedule: false })).toThrow(
      expect.objectContaining({ code: 'NO_API_KEY', message: expect.stringMatching(/Settings/) }),
    );
  });

  it('answers without booting a VM, and a tool call without an image says how to build it', async () => {
    const f = factory({ ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: api.url });
    const row = f.create({ title: 'list', folders: [] });
    api.enqueue(
      {
        reply: {
          content: [{ type: 'tool_use', name: 'bash', input: { command: 'ls' } }],
          stop_reason: 'tool_use',
        },
      },
      { reply: { content: [{ type: 'text', text: 'No VM here.' }], stop_reason: 'end_turn' } },
    );
    const live = f.open(row.id, { approver: unattendedApprover, canSchedule: false });
    const outcome = await live.session.run('list the files');
    await live.stop();
    expect(outcome.finalText).toBe('No VM here.');
    const toolResult = JSON.stringify(api.requests.at(-1)!.body.messages);
    expect(toolResult).toMatch(/paddock image build/);
  });
});

describe('the approval desk', () => {
  it('asks each question once, remembers a tool for the session, and keeps “always” hosts as prompt answers', async () => {
    const home = tempDir();
    const store = Store.open(home.dir);
    try {
      const asked: Approval[] = [];
      const desk = new ApprovalDesk({ requested: (a) => asked.push(a), resolved: () => {} });
      const allowed: string[] = [];
      const approver = deskApprover(desk, 'ses_1', store.settings, {
        hostAllowed: (e) => allowed.push(e),
      });

      const first = approver.approveTool({ id: 't1', name: 'bash', input: { command: 'ls' } });
      expect(asked.at(-1)).toMatchObject({ kind: 'tool', subject: 'bash', detail: 'bash: ls' });
      expect(desk.answer(asked.at(-1)!.id, 'session')).toBe(true);
      expect(desk.answer(asked.at(-1)!.id, 'deny')).toBe(false);
      expect(await first).toBe('allow');
      expect(await approver.approveTool({ id: 't2', name: 'bash', input: {} })).toBe('allow');
      expect(asked).toHaveLength(1);

      const net = approver.askNetwork('api.test', 8443);
      desk.answer(asked.at(-1)!.id, 'always');
      expect(await net).toBe('always');
      expect(allowed).toEqual(['api.test:8443']);
      expect(store.settings.get()).toMatchObject({
        networkAllowlist: [],
        promptAllowlist: ['api.test:8443'],
      });

      // Stop refuses what is open; a closed desk refuses at once.
      const open = approver.approveTool({ id: 't3', name: 'write_file', input: { path: 'a' } });
      desk.refuseAll('ses_1');
      expect(await open).toBe('deny');
      desk.close();
      expect(await approver.approveTool({ id: 't4', name: 'edit_file', input: {} })).toBe('deny');
    } finally {
      store.dispose();
      home.cleanup();
    }
  });
});
