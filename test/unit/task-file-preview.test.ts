import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TaskFile, TaskFolder } from '../../src/shared/app-contract.js';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { resolveGrants } from '../../src/main/vm/grants.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A 1×1 PNG. */
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

/**
 * `tasks:file` through dispatch on a real Core (real SQLite store in a temp data folder): what
 * the preview of a changed file shows, and the boundary around it: only files inside the task's
 * own folders, after every symlink is resolved.
 */
describe('the preview of a file a task changed (tasks:file)', () => {
  let home: { dir: string; cleanup(): void };
  let core: Core;
  /** The task's folder (read-write) and a second one (read-only). */
  let work: string;
  let ref: string;
  /** A folder of nobody's task, next to them, holding a secret. */
  let outside: string;
  /** Another task's folder. */
  let other: string;
  let taskId: string;
  let otherId: string;
  let shares: TaskFolder[];

  const file = (req: unknown) => dispatch(core.handlers, 'tasks:file', req);
  const value = async (req: unknown): Promise<TaskFile> => {
    const r = await file(req);
    if (!r.ok) throw new Error(`${r.error.code}: ${r.error.message}`);
    return r.value as TaskFile;
  };
  const refused = async (p: string, id = taskId) => {
    const r = await file({ id, path: p });
    expect(r.ok, `${JSON.stringify(p)} was not refused`).toBe(false);
    return r.ok ? null : r.error;
  };

  beforeEach(() => {
    home = tempDir('paddock-preview-');
    const mk = (name: string) => {
      const d = path.join(home.dir, name);
      fs.mkdirSync(d, { recursive: true });
      return fs.realpathSync(d);
    };
    work = mk('work');
    ref = mk('reference');
    outside = mk('outside');
    other = mk('otherwork');
    fs.writeFileSync(path.join(outside, 'secret.txt'), 'the secret');
    fs.writeFileSync(path.join(other, 'theirs.txt'), 'another task’s file');
    core = new Core({ dataDir: path.join(home.dir, 'data'), host: 'web', env: {} });
    shares = resolveGrants(
      [
        { path: work, readOnly: false },
        { path: ref, readOnly: true },
      ],
      { dataDir: path.join(home.dir, 'data') },
    );
    taskId = core.sessions.create({ title: 'mine', folders: shares }).id;
    otherId = core.sessions.create({
      title: 'theirs',
      folders: resolveGrants([{ path: other, readOnly: false }], {
        dataDir: path.join(home.dir, 'data'),
      }),
    }).id;
  });
  afterEach(async () => {
    await core.close();
    home.cleanup();
  });

  it('shows a text file with its language, from a read-write or a read-only folder', async () => {
    fs.mkdirSync(path.join(work, 'notes'));
    fs.writeFileSync(path.join(work, 'notes', 'plan.md'), '# Plan\n\n- [ ] one\n');
    fs.writeFileSync(path.join(ref, 'data.json'), '{"a": 1}\n');
    expect(shares.map((s) => s.name)).toEqual(['work', 'reference']);
    await expect(value({ id: taskId, path: 'work/notes/plan.md' })).resolves.toEqual({
      kind: 'text',
      path: 'work/notes/plan.md',
      size: 18,
      content: '# Plan\n\n- [ ] one\n',
      language: 'markdown',
    });
    await expect(value({ id: taskId, path: 'reference/data.json' })).resolves.toMatchObject({
      kind: 'text',
      content: '{"a": 1}\n',
      language: 'json',
    });
  });

  it('shows an image as a data: address, and names binary, too-large and missing files', async () => {
    fs.writeFileSync(path.join(work, 'dot.png'), PNG);
    const img = await value({ id: taskId, path: 'work/dot.png' });
    expect(img).toMatchObject({ kind: 'image', size: PNG.length });
    expect(img.dataUrl).toBe(`data:image/png;base64,${PNG.toString('base64')}`);
    expect(img.content).toBeUndefined();

    fs.writeFileSync(path.join(work, 'blob.bin'), Buffer.from([1, 2, 0, 3, 4]));
    await expect(value({ id: taskId, path: 'work/blob.bin' })).resolves.toEqual({
      kind: 'binary',
      path: 'work/blob.bin',
      size: 5,
    });

    fs.writeFileSync(path.join(work, 'big.log'), 'x'.repeat(1024 * 1024 + 1));
    await expect(value({ id: taskId, path: 'work/big.log' })).resolves.toEqual({
      kind: 'too-large',
      path: 'work/big.log',
      size: 1024 * 1024 + 1,
    });
    fs.writeFileSync(path.join(work, 'huge.png'), Buffer.alloc(5 * 1024 * 1024 + 1, 7));
    await expect(value({ id: taskId, path: 'work/huge.png' })).resolves.toMatchObject({
      kind: 'too-large',
      size: 5 * 1024 * 1024 + 1,
    });
    // Exactly 1 MB of text is still shown.
    fs.writeFileSync(path.join(work, 'edge.txt'), 'y'.repeat(1024 * 1024));
    const edge = await value({ id: taskId, path: 'work/edge.txt' });
    expect(edge.kind).toBe('text');
    expect(edge.content).toHaveLength(1024 * 1024);

    await expect(value({ id: taskId, path: 'work/gone.txt' })).resolves.toEqual({
      kind: 'missing',
      path: 'work/gone.txt',
      size: 0,
    });
  });

  it('refuses names that climb out: .., absolute paths, drives, backslashes, NUL', async () => {
    fs.writeFileSync(path.join(work, 'ok.txt'), 'ok');
    for (const p of [
      'work/../outside/secret.txt',
      '../outside/secret.txt',
      'work/./ok.txt',
      'work/sub/../../outside/secret.txt',
      '/etc/passwd',
      path.join(outside, 'secret.txt'),
      'C:/Windows/win.ini',
      'work\\..\\outside\\secret.txt',
      'work//ok.txt',
      'work',
      'work/',
      'work/ok.txt\0.png',
      'work/\0',
    ]) {
      const e = await refused(p);
      expect(e?.code, p).toBe('BAD_PATH');
    }
    // The schema bounds the request itself.
    await expect(file({ id: taskId, path: '' })).resolves.toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
    await expect(file({ id: taskId, path: 'work/ok.txt', extra: 1 })).resolves.toMatchObject({
      ok: false,
      error: { code: 'BAD_REQUEST' },
    });
  });

  it('refuses a symlink out of the share, to the file or through a folder on the way', async () => {
    fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(work, 'innocent.txt'));
    fs.symlinkSync(outside, path.join(work, 'docs'));
    fs.symlinkSync('../outside/secret.txt', path.join(work, 'relative.txt'));
    fs.symlinkSync('/etc/hostname', path.join(work, 'host.txt'));
    fs.symlinkSync(work, path.join(work, 'self'));
    for (const p of [
      'work/innocent.txt',
      'work/docs/secret.txt',
      'work/relative.txt',
      'work/self',
    ]) {
      const e = await refused(p);
      expect(e?.code, p).toBe('BAD_PATH');
      expect(e?.message).not.toContain('the secret');
    }
    // One share reaching into another of the same task is outside its share too.
    fs.writeFileSync(path.join(ref, 'r.txt'), 'ref');
    fs.symlinkSync(path.join(ref, 'r.txt'), path.join(work, 'to-ref.txt'));
    await expect(refused('work/to-ref.txt')).resolves.toMatchObject({ code: 'BAD_PATH' });
    // A symlink that stays inside the share is followed.
    fs.writeFileSync(path.join(work, 'real.txt'), 'inside');
    fs.symlinkSync('real.txt', path.join(work, 'alias.txt'));
    await expect(value({ id: taskId, path: 'work/alias.txt' })).resolves.toMatchObject({
      kind: 'text',
      content: 'inside',
    });
  });

  it('refuses a share whose folder was swapped for a symlink since (by another task)', async () => {
    // A second task got a folder inside this task's read-write one, which can replace it.
    const inner = path.join(work, 'inner');
    fs.mkdirSync(inner);
    fs.writeFileSync(path.join(inner, 'a.txt'), 'inner file');
    const id = core.sessions.create({
      title: 'nested',
      folders: resolveGrants([{ path: inner, readOnly: true }], {
        dataDir: path.join(home.dir, 'data'),
      }),
    }).id;
    await expect(value({ id, path: 'inner/a.txt' })).resolves.toMatchObject({
      content: 'inner file',
    });
    fs.rmSync(inner, { recursive: true });
    fs.symlinkSync(outside, inner);
    await expect(refused('inner/secret.txt', id)).resolves.toMatchObject({ code: 'BAD_PATH' });
  });

  it("refuses another task's folder, and an unknown task", async () => {
    await expect(value({ id: otherId, path: 'otherwork/theirs.txt' })).resolves.toMatchObject({
      kind: 'text',
    });
    await expect(refused('otherwork/theirs.txt')).resolves.toMatchObject({ code: 'BAD_PATH' });
    await expect(refused('work/ok.txt', 'ses_nope')).resolves.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('never opens a FIFO or a folder (it would hang or mean nothing)', async () => {
    fs.mkdirSync(path.join(work, 'dir'));
    await expect(refused('work/dir')).resolves.toMatchObject({ code: 'BAD_PATH' });
    const made = spawnSync('mkfifo', [path.join(work, 'pipe.txt')]);
    if (made.status !== 0) return;
    const t0 = Date.now();
    await expect(refused('work/pipe.txt')).resolves.toMatchObject({ code: 'BAD_PATH' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('gives the text before the task when its edit_file calls can be undone, else none', async () => {
    const edit = (id: string, input: Record<string, unknown>, isError = false) => {
      core.store.sessions.appendEvent(taskId, 'assistant', {
        content: [{ type: 'tool_use', id, name: input.name, input: input.input }],
        stop_reason: 'tool_use',
      });
      core.store.sessions.appendEvent(taskId, 'tool_result', {
        tool_use_id: id,
        content: isError ? 'failed' : 'ok',
        is_error: isError,
      });
    };
    fs.writeFileSync(path.join(work, 'poem.txt'), 'roses are red\nviolets are purple\n');
    edit('t1', {
      name: 'edit_file',
      input: { path: 'poem.txt', old_string: 'blue', new_string: 'purple' },
    });
    edit('t2', {
      name: 'edit_file',
      input: { path: '/mnt/work/poem.txt', old_string: 'roses', new_string: 'Roses' },
      // a failed call changed nothing and is skipped
    });
    edit(
      't3',
      { name: 'edit_file', input: { path: 'poem.txt', old_string: 'x', new_string: 'y' } },
      true,
    );
    fs.writeFileSync(path.join(work, 'poem.txt'), 'Roses are red\nviolets are purple\n');
    await expect(value({ id: taskId, path: 'work/poem.txt' })).resolves.toMatchObject({
      kind: 'text',
      content: 'Roses are red\nviolets are purple\n',
      before: 'roses are red\nviolets are blue\n',
    });

    // A write_file's previous content is not stored: no `before`.
    fs.writeFileSync(path.join(work, 'new.md'), '# New\n');
    edit('t4', { name: 'write_file', input: { path: 'new.md', content: '# New\n' } });
    const fresh = await value({ id: taskId, path: 'work/new.md' });
    expect(fresh.kind).toBe('text');
    expect(fresh).not.toHaveProperty('before');

    // Text changed since so that an edit no longer matches: no guess.
    fs.writeFileSync(path.join(work, 'poem.txt'), 'changed by hand\n');
    expect(await value({ id: taskId, path: 'work/poem.txt' })).not.toHaveProperty('before');
  });
});
