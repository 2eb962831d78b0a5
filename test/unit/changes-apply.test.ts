import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChangeService } from '../../src/main/core/changes/service.js';
import type { ChangeFile } from '../../src/shared/changes-contract.js';
import { repoRoot } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';
import {
  dirsOf,
  FakeOverlay,
  mergedTree,
  setup,
  treeOf,
  writeTree,
} from '../helpers/changes-fake.js';

const byPath = (files: ChangeFile[]) => Object.fromEntries(files.map((f) => [f.path, f]));

describe('applying, undoing and discarding staged changes', () => {
  let t: { dir: string; cleanup(): void };
  let lower: string;
  let outside: string;
  let o: FakeOverlay;
  let env: ReturnType<typeof setup>;
  let clock: number;

  beforeEach(() => {
    t = tempDir('paddock-changes-');
    fs.mkdirSync(path.join(t.dir, 'folder'));
    lower = fs.realpathSync(path.join(t.dir, 'folder'));
    outside = path.join(t.dir, 'outside');
    writeTree(outside, { 'canary.txt': 'canary\n' });
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
      'gone-dir/file.txt': 'replaced by a file\n',
    });
    fs.symlinkSync('src/a.txt', path.join(lower, 'to-a'));
    o = new FakeOverlay('work', lower, path.join(t.dir, 'upper'));
    clock = Date.UTC(2026, 10, 1);
    env = setup(path.join(t.dir, 'data'), lower, { now: () => clock });
  });
  afterEach(() => {
    env.close();
    t.cleanup();
  });

  /** Every kind of change at once. */
  function stageEverything() {
    o.write('src/a.txt', 'ALPHA\n')
      .write('new/dir/c.txt', 'gamma\n')
      .remove('src/b.txt')
      .rename('old/name.txt', 'new/name.txt')
      .chmod('run.sh', 0o755)
      .remove('build')
      .replaceDir('docs')
      .write('docs/keep.md', 'kept\n')
      .write('docs/new.md', 'new\n')
      .remove('gone-dir')
      .write('gone-dir', 'a file now\n')
      .symlink('to-a', 'src/b.txt')
      .symlink('new/link', '../README.md');
    return env.service.stage(env.task, o.source());
  }

  it('makes the folder match the staged state, and undo puts back every byte', async () => {
    const original = treeOf(lower);
    const originalDirs = dirsOf(lower);
    const staged = await stageEverything();
    const id = staged.changesets[0]!.id;
    expect(treeOf(lower)).toEqual(original); // staging writes nothing
    const applied = await env.service.apply(id);
    expect(applied.refused).toEqual([]);
    expect(applied.changeset.status).toBe('applied');
    expect(applied.changeset.files.every((f) => f.status === 'applied')).toBe(true);
    expect(treeOf(lower)).toEqual(mergedTree(o));
    // The folders the session removed are gone too.
    expect(fs.existsSync(path.join(lower, 'build'))).toBe(false);
    expect(fs.existsSync(path.join(lower, 'docs/sub'))).toBe(false);

    const undone = await env.service.undo(id);
    expect(undone.refused).toEqual([]);
    expect(undone.changeset.status).toBe('undone');
    expect(treeOf(lower)).toEqual(original);
    expect(dirsOf(lower)).toEqual(originalDirs);
  });

  it('applies and undoes single paths, and says which are not in the changeset', async () => {
    const original = treeOf(lower);
    const id = (await stageEverything()).changesets[0]!.id;
    const r = await env.service.apply(id, ['src/a.txt', 'new/name.txt']);
    expect(r.refused).toEqual([]);
    expect(r.changeset.status).toBe('partial');
    expect(fs.readFileSync(path.join(lower, 'src/a.txt'), 'utf8')).toBe('ALPHA\n');
    expect(fs.existsSync(path.join(lower, 'old/name.txt'))).toBe(false);
    expect(fs.readFileSync(path.join(lower, 'src/b.txt'), 'utf8')).toBe('beta\n');
    // Before comes from the journal once applied, after from the stored copy.
    expect(env.service.file(id, 'src/a.txt')).toEqual({ before: 'alpha\n', after: 'ALPHA\n' });
    const again = await env.service.apply(id, ['src/a.txt']);
    expect(again.refused).toEqual([{ path: 'src/a.txt', reason: 'src/a.txt is already applied.' }]);
    await expect(env.service.apply(id, ['nope.txt'])).rejects.toThrow(
      `Changeset ${id} has no file nope.txt.`,
    );
    await expect(env.service.apply('chg_nope')).rejects.toThrow('There is no changeset chg_nope.');
    const u = await env.service.undo(id, ['new/name.txt', 'src/a.txt']);
    expect(u.refused).toEqual([]);
    expect(treeOf(lower)).toEqual(original);
    const d = await env.service.discard(id);
    expect(d.changeset.status).toBe('undone'); // the discarded files do not count
    expect(byPath(d.changeset.files)['src/b.txt']!.status).toBe('discarded');
    expect(treeOf(lower)).toEqual(original);
  });

  it('asks for a folder’s files to go first when a file replaces the folder', async () => {
    const id = (await stageEverything()).changesets[0]!.id;
    const first = await env.service.apply(id, ['gone-dir']);
    expect(first.refused).toEqual([
      {
        path: 'gone-dir',
        reason:
          'gone-dir is a folder with files in it on this computer; apply the deletion of its files first.',
      },
    ]);
    expect(byPath(first.changeset.files)['gone-dir']).toMatchObject({
      status: 'pending',
      note: first.refused[0]!.reason,
    });
    const both = await env.service.apply(id, ['gone-dir', 'gone-dir/file.txt']);
    expect(both.refused).toEqual([]);
    expect(fs.readFileSync(path.join(lower, 'gone-dir'), 'utf8')).toBe('a file now\n');
  });

  it('turns a change made on this computer since staging into a conflict and never overwrites it', async () => {
    o.write('src/a.txt', 'ALPHA\n').write('src/b.txt', 'BETA\n').write('README.md', '# Mine\n');
    const id = (await env.service.stage(env.task, o.source())).changesets[0]!.id;
    // The person edits a.txt (same size, time put back: only its hash tells) and deletes b.txt.
    const a = path.join(lower, 'src/a.txt');
    const st = fs.statSync(a);
    fs.writeFileSync(a, 'aLPHa\n');
    fs.utimesSync(a, st.atime, st.mtime);
    fs.rmSync(path.join(lower, 'src/b.txt'));
    const r = await env.service.apply(id);
    expect(r.refused.map((x) => x.path).sort()).toEqual(['src/a.txt', 'src/b.txt']);
    expect(r.refused.find((x) => x.path === 'src/a.txt')!.reason).toMatch(
      /changed on this computer since/,
    );
    expect(r.refused.find((x) => x.path === 'src/b.txt')!.reason).toMatch(
      /was deleted on this computer/,
    );
    expect(fs.readFileSync(a, 'utf8')).toBe('aLPHa\n');
    expect(fs.existsSync(path.join(lower, 'src/b.txt'))).toBe(false);
    expect(fs.readFileSync(path.join(lower, 'README.md'), 'utf8')).toBe('# Mine\n');
    const f = byPath(r.changeset.files);
    expect(f['src/a.txt']).toMatchObject({
      status: 'conflict',
      before: { size: 6 },
      after: { size: 6 },
      current: { size: 6 },
    });
    expect(
      new Set([
        f['src/a.txt']!.before!.sha256,
        f['src/a.txt']!.after!.sha256,
        f['src/a.txt']!.current!.sha256,
      ]).size,
    ).toBe(3);
    expect(f['src/b.txt']).toMatchObject({
      status: 'conflict',
      note: expect.stringMatching(/deleted/),
    });
    expect(f['src/b.txt']!.current).toBeUndefined();
    expect(f['README.md']!.status).toBe('applied');
    expect(r.changeset.status).toBe('partial');
    // A conflict is not applied even when asked by name; discarding keeps the person's copy.
    const again = await env.service.apply(id, ['src/a.txt']);
    expect(again.refused[0]!.reason).toMatch(/a conflict/);
    expect(fs.readFileSync(a, 'utf8')).toBe('aLPHa\n');
    await env.service.discard(id, ['src/a.txt', 'src/b.txt']);
    expect(env.service.get(id).status).toBe('applied');
  });

  it('does not undo a file changed since it was applied', async () => {
    o.write('src/a.txt', 'ALPHA\n');
    const id = (await env.service.stage(env.task, o.source())).changesets[0]!.id;
    await env.service.apply(id);
    fs.writeFileSync(path.join(lower, 'src/a.txt'), 'edited after\n');
    const r = await env.service.undo(id);
    expect(r.refused).toEqual([
      {
        path: 'src/a.txt',
        reason:
          'src/a.txt changed on this computer since it was applied; Paddock kept your copy and did not undo it.',
      },
    ]);
    expect(fs.readFileSync(path.join(lower, 'src/a.txt'), 'utf8')).toBe('edited after\n');
    expect(byPath(r.changeset.files)['src/a.txt']).toMatchObject({
      status: 'applied',
      current: { size: 13 },
    });
  });

  it('refuses links that point outside the folder, and touches nothing outside it', async () => {
    const before = treeOf(outside);
    o.symlink('evil', '/etc/passwd')
      .symlink('sub/up', '../../outside/canary.txt')
      .symlink('sub/in', '../src/a.txt')
      .symlink('dot', '.');
    const id = (await env.service.stage(env.task, o.source())).changesets[0]!.id;
    const r = await env.service.apply(id);
    expect(r.refused.map((x) => x.path).sort()).toEqual(['evil', 'sub/up']);
    for (const x of r.refused) expect(x.reason).toMatch(/points outside the folder/);
    expect(fs.existsSync(path.join(lower, 'evil'))).toBe(false);
    expect(fs.existsSync(path.join(lower, 'sub/up'))).toBe(false);
    expect(fs.readlinkSync(path.join(lower, 'sub/in'))).toBe('../src/a.txt');
    expect(fs.readlinkSync(path.join(lower, 'dot'))).toBe('.');
    expect(treeOf(outside)).toEqual(before);
    expect(fs.readdirSync(t.dir).sort()).toEqual(['data', 'folder', 'outside', 'upper']);
  });

  it('refuses to write through a folder that became a link, or into one that is a link', async () => {
    o.write('src/a.txt', 'ALPHA\n').write('ln/canary.txt', 'overwritten\n');
    fs.symlinkSync(outside, path.join(lower, 'ln'));
    // A listing that writes into the link without replacing it (the guest's walk never says so).
    const source = o.source();
    const id = (
      await env.service.stage(env.task, {
        ...source,
        list: async () => {
          const l = await source.list();
          l.shares[0]!.entries = l.shares[0]!.entries.filter((e) => e.path !== 'ln');
          return l;
        },
      })
    ).changesets[0]!.id;
    // After staging, the person's src folder is swapped for a link to a lookalike outside.
    fs.mkdirSync(path.join(outside, 'src'));
    fs.copyFileSync(
      path.join(lower, 'src/a.txt'),
      path.join(outside, 'src/a.txt'),
      fs.constants.COPYFILE_FICLONE,
    );
    const st = fs.statSync(path.join(lower, 'src/a.txt'));
    fs.utimesSync(path.join(outside, 'src/a.txt'), st.atime, st.mtime);
    fs.renameSync(path.join(lower, 'src'), path.join(t.dir, 'src-moved'));
    fs.symlinkSync(path.join(outside, 'src'), path.join(lower, 'src'));
    const before = treeOf(outside);
    const r = await env.service.apply(id);
    expect(r.refused).toEqual([
      {
        path: 'ln/canary.txt',
        reason: 'ln is a link on this computer; Paddock does not write through links.',
      },
      {
        path: 'src/a.txt',
        reason: 'src is a link on this computer; Paddock does not write through links.',
      },
    ]);
    expect(treeOf(outside)).toEqual(before);
    expect(fs.readFileSync(path.join(outside, 'canary.txt'), 'utf8')).toBe('canary\n');
  });

  it('does not apply files that host tools run by themselves unless the grant allows it', async () => {
    o.write('.git/hooks/pre-commit', '#!/bin/sh\ncurl evil\n', 0o755)
      .write('.envrc', 'eval x\n')
      .write('ok.txt', 'ok\n');
    const id = (await env.service.stage(env.task, o.source())).changesets[0]!.id;
    const r = await env.service.apply(id);
    expect(r.refused.map((x) => x.path).sort()).toEqual(['.envrc', '.git/hooks/pre-commit']);
    expect(r.refused[0]!.reason).toMatch(/tools on this computer run by themselves/);
    expect(fs.existsSync(path.join(lower, '.envrc'))).toBe(false);
    expect(fs.readFileSync(path.join(lower, 'ok.txt'), 'utf8')).toBe('ok\n');

    // The person's explicit choice for the grant lets them through.
    const allowed = setup(path.join(t.dir, 'data2'), lower, { allowProtectedWrites: true });
    try {
      const id2 = (await allowed.service.stage(allowed.task, o.source())).changesets[0]!.id;
      expect((await allowed.service.apply(id2)).refused).toEqual([]);
      expect(fs.statSync(path.join(lower, '.git/hooks/pre-commit')).mode & 0o777).toBe(0o755);
    } finally {
      allowed.close();
    }
  });

  it('finishes a rename that stopped between writing the new path and removing the old', async () => {
    o.rename('old/name.txt', 'moved.txt');
    const id = (await env.service.stage(env.task, o.source())).changesets[0]!.id;
    const stopping = setup(path.join(t.dir, 'data'), lower, {
      step: (_p, at) => {
        if (at === 'journal') {
          // The process "dies" here after the new path was written.
          fs.copyFileSync(path.join(lower, 'old/name.txt'), path.join(lower, 'moved.txt'));
          throw new Error('killed');
        }
      },
    });
    await expect(stopping.service.apply(id)).rejects.toThrow('killed');
    stopping.service.dispose();
    expect(env.store.changes.file(id, 'moved.txt')!.status).toBe('applying');
    const after = new ChangeService({
      store: env.store,
      events: env.events,
      dataDir: path.join(t.dir, 'data'),
      pruneOnStart: false,
    });
    expect(after.get(id).files[0]).toMatchObject({ path: 'moved.txt', status: 'applied' });
    expect(fs.existsSync(path.join(lower, 'old/name.txt'))).toBe(false);
    expect((await after.undo(id)).refused).toEqual([]);
    expect(fs.readFileSync(path.join(lower, 'old/name.txt'), 'utf8')).toBe(
      'the same content, renamed\n',
    );
    expect(fs.existsSync(path.join(lower, 'moved.txt'))).toBe(false);
    after.dispose();
  });

  it('keeps the journal journalDays, then prunes it and the copies only it needed', async () => {
    o.write('src/a.txt', 'ALPHA\n').write('big.txt', 'x'.repeat(100_000));
    const id = (await env.service.stage(env.task, o.source())).changesets[0]!.id;
    await env.service.apply(id, ['src/a.txt']);
    env.store.settings.update({ journalDays: 30 });
    const full = env.service.storage();
    expect(full.journalEntries).toBe(1);
    expect(full.bytes).toBeGreaterThan(100_000);
    clock += 29 * 86_400_000;
    expect(env.service.prune()).toMatchObject({ journalRows: 0 });
    clock += 2 * 86_400_000;
    const pruned = env.service.prune();
    expect(pruned.journalRows).toBe(1);
    expect(pruned.blobs).toBe(2); // a.txt's old and new content; big.txt is still pending
    expect(env.service.storage()).toMatchObject({ journalEntries: 0, blobs: 1 });
    const r = await env.service.undo(id, ['src/a.txt']);
    expect(r.refused[0]!.reason).toBe(
      'src/a.txt was applied more than 30 days ago; its journal is no longer kept, so it cannot be undone.',
    );
    // The pending file's copy survived and still applies.
    expect((await env.service.apply(id, ['big.txt'])).refused).toEqual([]);
    expect(fs.statSync(path.join(lower, 'big.txt')).size).toBe(100_000);
    await env.service.discard(id);
    expect(env.service.get(id).status).toBe('applied');
  });

  it('survives a restart: a pending changeset applies from its stored copies without the VM', async () => {
    o.write('src/a.txt', 'ALPHA\n');
    const id = (await env.service.stage(env.task, o.source())).changesets[0]!.id;
    fs.rmSync(o.upper, { recursive: true });
    const again = new ChangeService({
      store: env.store,
      events: env.events,
      dataDir: path.join(t.dir, 'data'),
      pruneOnStart: false,
    });
    expect((await again.apply(id)).refused).toEqual([]);
    expect(fs.readFileSync(path.join(lower, 'src/a.txt'), 'utf8')).toBe('ALPHA\n');
    again.dispose();
  });

  for (const stopAt of ['written', 'journal'] as const)
    it(`leaves every file old or new when killed mid-apply (${stopAt}), and undo restores the tree`, async () => {
      const files: Record<string, string> = {};
      for (let i = 0; i < 120; i++) files[`many/f${String(i).padStart(3, '0')}.txt`] = `old ${i}\n`;
      writeTree(lower, files);
      const original = treeOf(lower);
      for (let i = 0; i < 120; i++) {
        if (i % 10 === 0) o.remove(`many/f${String(i).padStart(3, '0')}.txt`);
        else o.write(`many/f${String(i).padStart(3, '0')}.txt`, `new ${i} ${'n'.repeat(i)}\n`);
      }
      for (let i = 0; i < 20; i++) o.write(`added/g${i}.txt`, `added ${i}\n`);
      const expected = mergedTree(o);
      const id = (await env.service.stage(env.task, o.source())).changesets[0]!.id;
      const marker = path.join(t.dir, 'marker');
      const child = spawn(
        process.execPath,
        [
          '--import',
          'tsx',
          path.join(repoRoot, 'test/unit/changes-crash-child.ts'),
          path.join(t.dir, 'data'),
          id,
          stopAt,
          '60',
          marker,
        ],
        { cwd: repoRoot, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
      for (let i = 0; i < 600 && !fs.existsSync(marker); i++)
        await new Promise((r) => setTimeout(r, 50));
      expect(fs.existsSync(marker), stderr).toBe(true);
      expect(fs.readFileSync(marker, 'utf8')).not.toBe('finished');
      child.kill('SIGKILL');
      expect(await exited).toBe('SIGKILL');

      // Every path is either as it was or as staged: never partial, never a temp file left over.
      const now = treeOf(lower);
      const known = new Set([...Object.keys(original), ...Object.keys(expected)]);
      for (const p of known) expect([original[p], expected[p]], p).toContain(now[p]);
      expect(Object.keys(now).filter((p) => !known.has(p))).toEqual([]);

      // A new process settles the file that was under way from what the folder holds.
      const after = new ChangeService({
        store: env.store,
        events: env.events,
        dataDir: path.join(t.dir, 'data'),
        pruneOnStart: false,
      });
      const cs = after.get(id);
      const applied = cs.files.filter((f) => f.status === 'applied').length;
      expect(applied).toBe(stopAt === 'written' ? 60 : 59);
      expect(cs.files.filter((f) => f.status === 'pending').length).toBe(cs.files.length - applied);
      expect(Object.keys(treeOf(lower)).some((p) => p.includes('.paddock-'))).toBe(false);
      // The rest applies, and the journal undoes all of it.
      const rest = await after.apply(id);
      expect(rest.refused).toEqual([]);
      expect(treeOf(lower)).toEqual(expected);
      const undone = await after.undo(id);
      expect(undone.refused).toEqual([]);
      expect(treeOf(lower)).toEqual(original);
      after.dispose();
    }, 60_000);
});
