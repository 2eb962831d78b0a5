import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCore, type Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { tempDir } from '../helpers/temp-dir.js';
import { FakeOverlay, writeTree } from '../helpers/changes-fake.js';

describe('the changes channels of the core', () => {
  let t: { dir: string; cleanup(): void };
  let core: Core;
  let lower: string;

  beforeEach(() => {
    t = tempDir('paddock-changes-core-');
    fs.mkdirSync(path.join(t.dir, 'folder'));
    lower = fs.realpathSync(path.join(t.dir, 'folder'));
    writeTree(lower, { 'a.txt': 'a\n' });
    core = createCore({ dataDir: path.join(t.dir, 'home'), host: 'cli', runScheduler: false });
  });
  afterEach(async () => {
    await core.close();
    t.cleanup();
  });

  it('answers list, get, file, storage and refresh, and says when a changeset changed', async () => {
    const task = core.store.sessions.create({
      title: 't',
      model: 'm',
      approvalMode: 'auto',
      folders: [{ hostPath: lower, name: 'work', readOnly: false, review: true }],
    }).id;
    const seen: unknown[] = [];
    core.events.onAny((e, p) => e === 'changes:changed' && seen.push(p));
    const o = new FakeOverlay('work', lower, path.join(t.dir, 'upper')).write('a.txt', 'A\n');
    const { changesets } = await core.changes.stage(task, o.source());
    const id = changesets[0]!.id;
    expect(seen).toEqual([expect.objectContaining({ id, status: 'pending', taskId: task })]);

    const call = (channel: string, req: unknown) => dispatch(core.handlers, channel, req);
    expect(await call('changes:list', { taskId: task })).toMatchObject({
      ok: true,
      value: { changesets: [{ id, counts: { modified: 1 } }] },
    });
    expect(await call('changes:list', {})).toMatchObject({ value: { changesets: [{ id }] } });
    expect(await call('changes:get', { id })).toMatchObject({
      value: { id, files: [{ path: 'a.txt', kind: 'modified', status: 'pending' }] },
    });
    expect(await call('changes:file', { id, path: 'a.txt' })).toEqual({
      ok: true,
      value: { before: 'a\n', after: 'A\n' },
    });
    // The contract refuses a path out of the folder before the core sees it.
    expect(await call('changes:file', { id, path: '../etc/passwd' })).toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    expect(await call('changes:get', { id: 'chg_nope' })).toEqual({
      ok: false,
      error: { code: 'NOT_FOUND', message: 'There is no changeset chg_nope.' },
    });
    expect(await call('changes:storage', {})).toMatchObject({
      ok: true,
      value: { blobs: 1, bytes: 2, journalEntries: 0, journalDays: 30 },
    });
    // No VM runs for the task: refresh has nothing newer and lists what is staged.
    expect(await call('changes:refresh', { taskId: task })).toMatchObject({
      value: { changesets: [{ id }] },
    });
    expect(await call('changes:apply', { id })).toMatchObject({
      ok: true,
      value: { refused: [], changeset: { status: 'applied' } },
    });
    expect(fs.readFileSync(path.join(lower, 'a.txt'), 'utf8')).toBe('A\n');
    expect(await call('changes:list', {})).toMatchObject({ value: { changesets: [] } });
    expect(await call('settings:update', { journalDays: 7 })).toMatchObject({
      value: { journalDays: 7 },
    });
    expect(await call('settings:update', { journalDays: 0 })).toMatchObject({ ok: false });
  });
});
