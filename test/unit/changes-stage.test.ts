import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChangeFile } from '../../src/shared/changes-contract.js';
import { tempDir } from '../helpers/temp-dir.js';
import { FakeOverlay, setup, writeTree } from '../helpers/changes-fake.js';

describe('staging a review grant’s changes', () => {
  let t: { dir: string; cleanup(): void };
  let lower: string;
  let data: string;
  let o: FakeOverlay;
  let env: ReturnType<typeof setup>;

  beforeEach(() => {
    t = tempDir('paddock-changes-');
    // The grant stores the folder's real path (a temp folder may sit under a link, as on macOS).
    fs.mkdirSync(path.join(t.dir, 'folder'));
    lower = fs.realpathSync(path.join(t.dir, 'folder'));
    data = path.join(t.dir, 'data');
    writeTree(lower, {
      'README.md': '# Notes\n',
      'src/a.txt': 'alpha\n',
      'src/b.txt': 'beta\n',
      'old/name.txt': 'the same content, renamed\n',
      'build/out/x.o': 'object x',
      'build/out/y.o': 'object y',
      'docs/keep.md': 'kept\n',
      'docs/drop.md': 'dropped\n',
      'docs/sub/deep.md': 'deep\n',
      'run.sh': 'echo hi\n',
      'photo.bin': Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]),
    });
    o = new FakeOverlay('work', lower, path.join(t.dir, 'upper'));
    env = setup(data, lower);
  });
  afterEach(() => {
    env.close();
    t.cleanup();
  });

  const byPath = (files: ChangeFile[]) => Object.fromEntries(files.map((f) => [f.path, f]));

  it('records added, modified, deleted, renamed and mode changes against the folder itself', async () => {
    o.write('src/a.txt', 'ALPHA\n')
      .write('new/dir/c.txt', 'gamma\n')
      .remove('src/b.txt')
      .rename('old/name.txt', 'new/name.txt')
      .chmod('run.sh', 0o755)
      .write('photo.bin', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 9, 9, 9]));
    const r = await env.service.stage(env.task, o.source());
    expect(r.changesets).toHaveLength(1);
    const cs = env.service.get(r.changesets[0]!.id);
    expect(cs).toMatchObject({
      taskId: env.task,
      hostPath: lower,
      name: 'work',
      status: 'pending',
    });
    expect(cs.counts).toEqual({ added: 1, modified: 2, deleted: 1, renamed: 1, mode: 1 });
    const f = byPath(cs.files);
    expect(f['src/a.txt']).toMatchObject({
      kind: 'modified',
      status: 'pending',
      binary: false,
      before: { size: 6, mode: 0o644 },
      after: { size: 6, mode: 0o644 },
    });
    expect(f['src/a.txt']!.before!.sha256).not.toBe(f['src/a.txt']!.after!.sha256);
    expect(f['new/dir/c.txt']).toMatchObject({ kind: 'added', after: { size: 6 } });
    expect(f['new/dir/c.txt']!.before).toBeUndefined();
    expect(f['src/b.txt']).toMatchObject({ kind: 'deleted', before: { size: 5 } });
    expect(f['src/b.txt']!.after).toBeUndefined();
    expect(f['new/name.txt']).toMatchObject({ kind: 'renamed', fromPath: 'old/name.txt' });
    expect(f['new/name.txt']!.before!.sha256).toBe(f['new/name.txt']!.after!.sha256);
    expect(f['old/name.txt']).toBeUndefined();
    expect(f['run.sh']).toMatchObject({
      kind: 'mode',
      before: { mode: 0o644 },
      after: { mode: 0o755 },
    });
    expect(f['photo.bin']).toMatchObject({ kind: 'modified', binary: true });
    expect(env.seen).toEqual([cs.id]);
    // The staged content is in the blob store (it survives the VM), not read from the folder.
    expect(env.service.blobs.has(f['src/a.txt']!.after!.sha256)).toBe(true);
    expect(env.service.file(cs.id, 'src/a.txt')).toEqual({ before: 'alpha\n', after: 'ALPHA\n' });
    expect(env.service.file(cs.id, 'photo.bin')).toMatchObject({
      before: null,
      after: null,
      note: expect.stringMatching(/binary/),
    });
  });

  it('keeps what an earlier VM staged when a new VM (empty layer) stages again, and drops only what the same VM undid', async () => {
    const inVm = (id: string) => ({ ...o.source(), identity: async () => id });
    o.write('src/a.txt', 'ALPHA\n').write('first.txt', 'from the first run\n');
    const first = await env.service.stage(env.task, inVm('vm-1'));
    const id = first.changesets[0]!.id;
    // The VM was stopped; the next run's VM starts from the folder and writes one file.
    fs.rmSync(o.upper, { recursive: true, force: true });
    fs.mkdirSync(o.upper);
    o.write('second.txt', 'from the second run\n');
    await env.service.stage(env.task, inVm('vm-2'));
    const paths = () =>
      env.service
        .get(id)
        .files.filter((f) => f.status === 'pending')
        .map((f) => f.path)
        .sort();
    expect(paths()).toEqual(['first.txt', 'second.txt', 'src/a.txt']);
    // The same VM takes back its own file: that one goes, the first VM's stay.
    o.remove('second.txt');
    await env.service.stage(env.task, inVm('vm-2'));
    expect(paths()).toEqual(['first.txt', 'src/a.txt']);
  });

  it('lists what a whiteout over a folder and an opaque folder hide, file by file', async () => {
    o.remove('build')
      .replaceDir('docs')
      .write('docs/keep.md', 'kept\n')
      .write('docs/new.md', 'new\n');
    const r = await env.service.stage(env.task, o.source());
    const f = byPath(env.service.get(r.changesets[0]!.id).files);
    expect(Object.keys(f).sort()).toEqual([
      'build/out/x.o',
      'build/out/y.o',
      'docs/drop.md',
      'docs/new.md',
      'docs/sub/deep.md',
    ]);
    expect(f['build/out/x.o']!.kind).toBe('deleted');
    expect(f['docs/sub/deep.md']!.kind).toBe('deleted');
    expect(f['docs/new.md']!.kind).toBe('added');
    // keep.md is in the new folder with the same content: no change.
  });

  it('takes a file put where a folder was, and a folder put where a file was', async () => {
    o.remove('build').write('build', 'now a file\n');
    o.remove('README.md').replaceDir('README.md').write('README.md/inner.txt', 'inside\n');
    const r = await env.service.stage(env.task, o.source());
    const f = byPath(env.service.get(r.changesets[0]!.id).files);
    expect(f['build']).toMatchObject({ kind: 'added' });
    expect(f['build/out/x.o']).toMatchObject({ kind: 'deleted' });
    expect(f['README.md']).toMatchObject({ kind: 'deleted' });
    expect(f['README.md/inner.txt']).toMatchObject({ kind: 'added' });
  });

  it('records a staged link with its target, never following it', async () => {
    o.symlink('link-in', 'src/a.txt').symlink('link-out', '../../etc/passwd');
    const r = await env.service.stage(env.task, o.source());
    const f = byPath(env.service.get(r.changesets[0]!.id).files);
    expect(f['link-in']).toMatchObject({ kind: 'added', after: { linkTarget: 'src/a.txt' } });
    expect(f['link-out']).toMatchObject({
      kind: 'added',
      after: { linkTarget: '../../etc/passwd' },
    });
    expect(env.service.file(r.changesets[0]!.id, 'link-out').note).toMatch(
      /a link to \.\.\/\.\.\/etc\/passwd/,
    );
  });

  it('refuses hostile paths from the guest and keeps the rest', async () => {
    o.write('ok.txt', 'fine\n');
    const bad = [
      '../escape.txt',
      '/etc/passwd',
      'a//b',
      'a/./b',
      'x/../../y',
      'a\\..\\..\\y',
      'C:/x',
      'nul\0byte',
    ];
    for (const p of bad)
      o.extra.push({
        path: p,
        type: 'file',
        mode: 0o644,
        size: 1,
        sha256: 'a'.repeat(64),
        lower: null,
      });
    o.extra.push({ path: 'ok.txt', type: 'whiteout', lower: null });
    o.extra.push({ path: 'fifo', type: 'other', mode: 0o644, lower: null });
    const r = await env.service.stage(env.task, o.source());
    const f = env.service.get(r.changesets[0]!.id).files;
    expect(f.map((x) => x.path)).toEqual(['ok.txt']);
    expect(r.skipped.map((s) => s.reason)).toEqual([
      ...bad.map(() => expect.stringMatching(/^refused: /)),
      'refused: listed twice',
      expect.stringMatching(/device, pipe or socket/),
    ]);
    // Nothing was read for a refused path, and nothing was made outside the folder.
    expect(o.reads).toEqual(['ok.txt']);
    expect(fs.existsSync(path.join(t.dir, 'escape.txt'))).toBe(false);
  });

  it('refuses a partial listing, a file too large and a changeset too large, saying why', async () => {
    o.write('big.bin', Buffer.alloc(3000, 1));
    o.truncated = true;
    await expect(env.service.stage(env.task, o.source())).rejects.toThrow(/too many paths in work/);
    o.truncated = false;
    await expect(env.service.stage(env.task, o.source(2048))).rejects.toThrow(
      /work\/big\.bin is 2\.9 KiB; Paddock stages files up to 2 KiB, so nothing from work was staged/,
    );
    env.close();
    env = setup(path.join(t.dir, 'data2'), lower, { limits: { maxChangesetBytes: 4000 } });
    o.write('big2.bin', Buffer.alloc(3000, 2));
    await expect(env.service.stage(env.task, o.source())).rejects.toThrow(/hold more than/);
    expect(env.service.list(env.task)).toEqual([]);
  });

  it('refuses to read through a link in the folder: the path is staged as new, never hashed outside', async () => {
    const outside = path.join(t.dir, 'outside');
    writeTree(outside, { 'secret.txt': 'do not read\n' });
    fs.symlinkSync(outside, path.join(lower, 'linked'));
    o.extra.push({ path: 'linked', type: 'opaque', mode: 0o755, lower: null });
    o.extra.push({
      path: 'linked/secret.txt',
      type: 'file',
      mode: 0o644,
      size: 4,
      sha256: 'b'.repeat(64),
      lower: null,
    });
    fs.mkdirSync(path.join(o.upper, 'linked'));
    fs.writeFileSync(path.join(o.upper, 'linked', 'secret.txt'), 'new\n');
    const r = await env.service.stage(env.task, {
      ...o.source(),
      list: async () => ({
        truncated: false,
        shares: [{ name: 'work', truncated: false, skipped: 0, entries: o.extra }],
      }),
    });
    const f = byPath(env.service.get(r.changesets[0]!.id).files);
    expect(f['linked']).toMatchObject({ kind: 'deleted', before: { linkTarget: outside } });
    expect(f['linked/secret.txt']).toMatchObject({ kind: 'added' });
    expect(f['linked/secret.txt']!.before).toBeUndefined();
  });

  it('re-staging replaces pending files and keeps applied or discarded ones unless changed again', async () => {
    o.write('src/a.txt', 'v1\n')
      .write('src/b.txt', 'b1\n')
      .write('c.txt', 'c1\n')
      .write('d.txt', 'd1\n');
    const first = await env.service.stage(env.task, o.source());
    const id = first.changesets[0]!.id;
    await env.service.apply(id, ['src/a.txt', 'c.txt']);
    await env.service.discard(id, ['src/b.txt']);
    // The agent revises: a.txt again, d.txt reverted, a new e.txt; b.txt and c.txt as they were.
    o.write('src/a.txt', 'v2\n').write('e.txt', 'e\n');
    fs.rmSync(path.join(o.upper, 'd.txt'));
    await env.service.stage(env.task, o.source());
    const f = byPath(env.service.get(id).files);
    expect(Object.keys(f).sort()).toEqual(['c.txt', 'e.txt', 'src/a.txt', 'src/b.txt']);
    expect(f['src/a.txt']).toMatchObject({ status: 'pending', kind: 'modified' });
    expect(env.service.file(id, 'src/a.txt')).toEqual({ before: 'v1\n', after: 'v2\n' });
    expect(f['src/b.txt']!.status).toBe('discarded');
    expect(f['c.txt']!.status).toBe('applied');
    expect(f['e.txt']!.status).toBe('pending');
    expect(env.service.get(id).status).toBe('partial');
  });

  it('ignores a copy-up that changed nothing, and the guest’s word on the folder’s files', async () => {
    o.write('src/a.txt', 'alpha\n');
    o.extra.push({
      path: 'docs/keep.md',
      type: 'file',
      mode: 0o644,
      size: 5,
      sha256: 'c'.repeat(64),
      // The guest claims the folder has something else there: ignored, the host looks itself.
      lower: { type: 'file', mode: 0o644, size: 1, sha256: 'd'.repeat(64) },
    });
    fs.mkdirSync(path.join(o.upper, 'docs'));
    fs.copyFileSync(path.join(lower, 'docs/keep.md'), path.join(o.upper, 'docs/keep.md'));
    const r = await env.service.stage(env.task, {
      ...o.source(),
      list: async () => {
        const l = o.listing();
        l.shares[0]!.entries = l.shares[0]!.entries.filter(
          (e) => !(e.path === 'docs/keep.md' && e.type === 'file' && e.sha256 !== 'c'.repeat(64)),
        );
        return l;
      },
    });
    // a.txt is unchanged; keep.md was claimed changed, read, and found the same.
    expect(r.changesets).toEqual([]);
    expect(env.service.list(env.task)).toEqual([]);
  });
});
