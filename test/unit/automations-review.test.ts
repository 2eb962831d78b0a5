import fs from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Channel, Req, Res } from '../../src/shared/api.js';
import {
  automationSchema,
  inboxItemSchema,
  type InboxItem,
} from '../../src/shared/automations-contract.js';
import { folderSentence } from '../../src/main/core/automation-runs.js';
import type { StagedSource } from '../../src/main/core/changes/types.js';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { Store } from '../../src/main/store/store.js';
import { hrefOf, parseRoute } from '../../src/renderer/lib/route.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';
import { FakeOverlay, treeOf, writeTree } from '../helpers/changes-fake.js';
import { databaseAtSchema } from '../helpers/old-database.js';

const KEY = 'sk-ant-test-key-0123456789rvw8';

async function rpc<C extends Channel>(core: Core, channel: C, req: Req<C>): Promise<Res<C>> {
  const r = await dispatch(core.handlers, channel, req);
  if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
  return r.value as Res<C>;
}

async function until(pred: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const read = (dir: string, rel: string) => fs.readFileSync(path.join(dir, rel), 'utf8');

describe('what the inbox says of a run’s changes', () => {
  it('names the folder, the count and what to do', () => {
    const o = { name: 'notes', applied: 0, conflicts: 0, waiting: 0 };
    expect(folderSentence({ ...o, waiting: 3 }, 30)).toBe('3 files changed in notes: review.');
    expect(folderSentence({ ...o, waiting: 1 }, 30)).toBe('1 file changed in notes: review.');
    expect(folderSentence({ ...o, applied: 3 }, 30)).toBe(
      'Applied 3 files to notes (undo within 30 days).',
    );
    expect(folderSentence({ ...o, applied: 1 }, 1)).toBe(
      'Applied 1 file to notes (undo within 1 day).',
    );
    expect(folderSentence({ ...o, applied: 2, conflicts: 1 }, 30)).toBe(
      '2 applied, 1 conflict in notes: review.',
    );
    expect(folderSentence({ ...o, conflicts: 2, waiting: 1 }, 30)).toBe(
      '2 conflicts, 1 not applied in notes: review.',
    );
    expect(folderSentence({ ...o, waiting: 2, failed: 'The folder is gone.' }, 30)).toBe(
      '2 files changed in notes could not be applied (The folder is gone): review.',
    );
  });

  it('opens the review from the link an inbox item gives', () => {
    expect(hrefOf({ page: 'task', id: 'ses_1', review: true })).toBe('#/task/ses_1/review');
    expect(parseRoute('#/task/ses_1/review')).toEqual({ page: 'task', id: 'ses_1', review: true });
    expect(parseRoute('#/task/ses_1')).toEqual({ page: 'task', id: 'ses_1' });
    expect(hrefOf({ page: 'task', id: 'ses_1' })).toBe('#/task/ses_1');
  });
});

describe('migration 0008: automations made before review keep writing directly', () => {
  let home: { dir: string; cleanup(): void } | undefined;
  let store: Store | undefined;
  afterEach(() => {
    store?.dispose();
    store = undefined;
    home?.cleanup();
  });

  it('marks stored read-write folders direct, leaves read-only ones, and defaults to review', () => {
    home = tempDir('paddock-m8-');
    const db = databaseAtSchema(home.dir, 7);
    const folders = [
      { hostPath: '/work/notes', name: 'notes', readOnly: false },
      { hostPath: '/work/refs', name: 'refs', readOnly: true },
    ];
    db.prepare(
      `INSERT INTO automations (id, name, prompt, rrule, missed_policy, enabled, folders,
         created_at, updated_at)
       VALUES ('auto_old', 'Digest', 'p', 'RRULE:FREQ=DAILY', 'once', 1, ?, 0, 0)`,
    ).run(JSON.stringify(folders));
    db.close();

    store = Store.open(home.dir);
    const old = store.automations.get('auto_old')!;
    expect(old.folders).toEqual([
      { hostPath: '/work/notes', name: 'notes', readOnly: false, review: false },
      { hostPath: '/work/refs', name: 'refs', readOnly: true },
    ]);
    expect(old.applyChanges).toBe('review');
    expect(() => store!.db.prepare("UPDATE automations SET apply_changes = 'maybe'").run()).toThrow(
      /CHECK/,
    );
  });
});

describe('an automation run with a review folder', () => {
  let api: MockMessagesApi;
  let t: { dir: string; cleanup(): void };
  let folder: string;
  let dataDir: string;
  let overlay: FakeOverlay;
  /** Called during staging, after the folder's state was read: the person editing meanwhile. */
  let duringStaging: (() => void) | null;
  let cores: Core[];

  beforeAll(async () => {
    api = await startMessagesApi({ apiKey: KEY });
  });
  afterAll(() => api.close());
  beforeEach(() => {
    t = tempDir('paddock-auto-review-');
    fs.mkdirSync(path.join(t.dir, 'notes'));
    folder = fs.realpathSync(path.join(t.dir, 'notes'));
    writeTree(folder, { 'a.txt': 'a\n', 'old.txt': 'old\n' });
    dataDir = path.join(t.dir, 'data');
    overlay = new FakeOverlay('notes', folder, path.join(t.dir, 'upper'))
      .write('a.txt', 'A\n')
      .write('b.txt', 'b\n')
      .remove('old.txt');
    duringStaging = null;
    cores = [];
  });
  afterEach(async () => {
    for (const c of cores) await c.close();
    expect(api.problems).toEqual([]);
    t.cleanup();
  });

  /** A core whose runs read what they staged from the fake overlay, where no VM can run. */
  const open = (staged: boolean = true) => {
    const core = new Core({
      dataDir,
      host: 'web',
      env: { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: KEY },
      runScheduler: false,
      ...(staged
        ? {
            runStagedSource: ({ names }): StagedSource => {
              expect(names).toEqual(['notes']);
              const src = overlay.source();
              return {
                list: src.list,
                read: async (...args) => {
                  duringStaging?.();
                  duringStaging = null;
                  return src.read(...args);
                },
              };
            },
          }
        : {}),
    });
    cores.push(core);
    return core;
  };

  const runOnce = async (core: Core, id: string) => {
    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Tidied the notes.' }], stop_reason: 'end_turn' },
    });
    const run = await rpc(core, 'automations:runNow', { id });
    await until(() => core.store.runs.get(run.id)!.status !== 'running');
    const item = (await rpc(core, 'inbox:list', {})).items.find((i) => i.runId === run.id)!;
    return { run: core.store.runs.get(run.id)!, item };
  };

  const create = async (core: Core, extra: Partial<Req<'automations:create'>> = {}) => {
    const grant = core.grantFolder(folder, false);
    return rpc(core, 'automations:create', {
      name: 'Tidy notes',
      prompt: 'Tidy my notes',
      schedule: 'every day at 9:00',
      folders: [{ id: grant.id, readOnly: false }],
      ...extra,
    });
  };

  it('stages the changes for review: the inbox says so, and they wait across a restart', async () => {
    const core = open();
    const a = await create(core);
    // A new automation's read-write folder is reviewed; its changes wait for the person.
    expect(a.folders).toEqual([{ hostPath: folder, readOnly: false, review: true }]);
    expect(a.applyChanges).toBe('review');

    const { run, item } = await runOnce(core, a.id);
    expect(run.status).toBe('succeeded');
    expect(core.store.sessions.get(run.sessionId!)!.folders).toEqual([
      { hostPath: folder, name: 'notes', readOnly: false, review: true },
    ]);
    expect(item).toMatchObject({
      kind: 'succeeded',
      summary: '3 files changed in notes: review. Tidied the notes.',
      sessionId: run.sessionId,
      reviewWaiting: 3,
    });
    expect(inboxItemSchema.parse(item)).toEqual(item);
    const [cs] = (await rpc(core, 'changes:list', { taskId: run.sessionId! })).changesets;
    expect(cs).toMatchObject({ status: 'pending', name: 'notes', taskId: run.sessionId });
    // Nothing reached the folder.
    expect(read(folder, 'a.txt')).toBe('a\n');
    expect(fs.existsSync(path.join(folder, 'b.txt'))).toBe(false);

    await core.close();
    cores = [];
    // The inbox item's changeset is still there after the store is opened again…
    const store = Store.open(dataDir);
    try {
      const again = store.inbox.list().find((i) => i.runId === run.id)!;
      const sessionId = store.runs.get(again.runId)!.sessionId!;
      expect(store.changes.list({ sessionId })).toEqual([
        expect.objectContaining({ id: cs!.id, status: 'pending' }),
      ]);
      expect(store.changes.waitingFiles(sessionId)).toBe(3);
    } finally {
      store.dispose();
    }
    // …and the app lists it, the inbox item pointing at it, until it is applied.
    const next = open();
    expect((await rpc(next, 'changes:list', {})).changesets.map((c) => c.id)).toEqual([cs!.id]);
    const shown = (await rpc(next, 'inbox:list', {})).items[0]!;
    expect(shown.reviewWaiting).toBe(3);
    await rpc(next, 'changes:apply', { id: cs!.id });
    expect(read(folder, 'b.txt')).toBe('b\n');
    expect((await rpc(next, 'inbox:list', {})).items[0]!.reviewWaiting).toBe(0);
  });

  it('applies them automatically when asked, journalled so they can be undone', async () => {
    const core = open();
    const before = treeOf(folder);
    const a = await create(core, { applyChanges: 'auto' });
    expect(a.applyChanges).toBe('auto');
    const { run, item } = await runOnce(core, a.id);
    expect(item).toMatchObject({
      summary: 'Applied 3 files to notes (undo within 30 days). Tidied the notes.',
      reviewWaiting: 0,
    });
    expect(read(folder, 'a.txt')).toBe('A\n');
    expect(read(folder, 'b.txt')).toBe('b\n');
    expect(fs.existsSync(path.join(folder, 'old.txt'))).toBe(false);
    const [cs] = (await rpc(core, 'changes:list', { taskId: run.sessionId! })).changesets;
    expect(cs!.status).toBe('applied');
    const undone = await rpc(core, 'changes:undo', { id: cs!.id });
    expect(undone.refused).toEqual([]);
    expect(treeOf(folder)).toEqual(before);
  });

  it('applies what it can and leaves a conflict for review', async () => {
    const core = open();
    const a = await create(core, { applyChanges: 'auto' });
    // The person edits a.txt after the run's changes were read, before they are applied.
    duringStaging = () => fs.writeFileSync(path.join(folder, 'a.txt'), 'my own edit\n');
    const { run, item } = await runOnce(core, a.id);
    expect(item).toMatchObject({
      summary: '2 applied, 1 conflict in notes: review. Tidied the notes.',
      reviewWaiting: 1,
    });
    expect(read(folder, 'a.txt')).toBe('my own edit\n');
    expect(read(folder, 'b.txt')).toBe('b\n');
    const [cs] = (await rpc(core, 'changes:list', { taskId: run.sessionId! })).changesets;
    const files = (await rpc(core, 'changes:get', { id: cs!.id })).files;
    expect(files.map((f) => [f.path, f.status])).toEqual([
      ['a.txt', 'conflict'],
      ['b.txt', 'applied'],
      ['old.txt', 'applied'],
    ]);
  });

  it('stages nothing when the run booted no VM, and a direct folder is shared as such', async () => {
    const core = open(false);
    const grant = core.grantFolder(folder, false);
    const a = await rpc(core, 'automations:create', {
      name: 'Direct',
      prompt: 'Tidy',
      schedule: 'every day at 9:00',
      folders: [{ id: grant.id, readOnly: false, review: false }],
    });
    expect(a.folders).toEqual([{ hostPath: folder, readOnly: false, review: false }]);
    const direct = await runOnce(core, a.id);
    expect(core.store.sessions.get(direct.run.sessionId!)!.folders).toEqual([
      { hostPath: folder, name: 'notes', readOnly: false },
    ]);
    expect(direct.item).toMatchObject({ summary: 'Tidied the notes.', reviewWaiting: 0 });

    // Reviewed, but the reply used no tool: no VM booted, so nothing was written.
    await rpc(core, 'automations:update', {
      id: a.id,
      keepFolders: [{ hostPath: folder, readOnly: false, review: true }],
    });
    const reviewed = await runOnce(core, a.id);
    expect(core.store.sessions.get(reviewed.run.sessionId!)!.folders).toEqual([
      { hostPath: folder, name: 'notes', readOnly: false, review: true },
    ]);
    expect(reviewed.item).toMatchObject({ summary: 'Tidied the notes.', reviewWaiting: 0 });
    expect((await rpc(core, 'changes:list', {})).changesets).toEqual([]);
  });

  it('keeps each folder’s mode and the apply setting through the contract', async () => {
    const core = open(false);
    fs.mkdirSync(path.join(t.dir, 'refs'));
    fs.mkdirSync(path.join(t.dir, 'drafts'));
    const notes = core.grantFolder(folder, false);
    const refs = core.grantFolder(path.join(t.dir, 'refs'), true);
    const drafts = core.grantFolder(path.join(t.dir, 'drafts'), false);
    const a = await rpc(core, 'automations:create', {
      name: 'Modes',
      prompt: 'p',
      schedule: 'every day at 9:00',
      folders: [
        { id: notes.id, readOnly: false },
        { id: refs.id, readOnly: true },
        { id: drafts.id, readOnly: false, review: false },
      ],
      applyChanges: 'auto',
    });
    expect(automationSchema.parse(a)).toEqual(a);
    expect(a.folders.map((f) => [path.basename(f.hostPath), f.readOnly, f.review])).toEqual([
      ['notes', false, true],
      ['refs', true, false],
      ['drafts', false, false],
    ]);
    expect(a.applyChanges).toBe('auto');

    // A kept folder without a mode keeps its own; one given a mode takes it.
    const b = await rpc(core, 'automations:update', {
      id: a.id,
      keepFolders: [
        { hostPath: a.folders[0]!.hostPath, readOnly: false, review: false },
        { hostPath: a.folders[2]!.hostPath, readOnly: false },
      ],
      applyChanges: 'review',
    });
    expect(b.folders.map((f) => [path.basename(f.hostPath), f.review])).toEqual([
      ['notes', false],
      ['drafts', false],
    ]);
    expect(b.applyChanges).toBe('review');
    const listed = (await rpc(core, 'automations:list', {})).automations[0]!;
    expect(listed).toEqual(b);

    const bad = await dispatch(core.handlers, 'automations:update', {
      id: a.id,
      applyChanges: 'sometimes',
    });
    expect(bad).toMatchObject({ ok: false, error: { code: 'BAD_REQUEST' } });
    const items: InboxItem[] = (await rpc(core, 'inbox:list', {})).items;
    expect(items).toEqual([]);
  });
});
