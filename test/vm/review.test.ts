/**
 * Review grants in a real VM: the guest writes /mnt/<name> as usual, its writes are staged on the
 * session's disk, the person's folder stays byte-for-byte untouched (even against root in the
 * guest), and readStagedChanges reports exactly what changed, links included, never followed.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, statfsSync } from 'node:fs';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Vm } from '../../src/main/vm/backend.js';
import type { BoundaryFinding } from '../../src/main/vm/protected-paths.js';
import { QemuBackend } from '../../src/main/vm/qemu/backend.js';
import { readStagedChanges, readStagedFile, type StagedEntry } from '../../src/main/vm/review.js';
import { Sandbox } from '../../src/main/vm/sandbox.js';
import { ChangeService } from '../../src/main/core/changes/service.js';
import { vmStagedSource } from '../../src/main/core/changes/vm-source.js';
import { EventBus } from '../../src/main/core/events.js';
import { Store } from '../../src/main/store/store.js';
import { treeOf } from '../helpers/changes-fake.js';
import { execOutput as run } from '../helpers/exec-output.js';
import { ensureTestImage } from '../helpers/vm-image.js';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** Every path of a host folder with its type, mode, size, mtime and content hash (or target). */
async function treeDigest(root: string): Promise<string> {
  const lines: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const names = (await readdir(path.join(root, rel))).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const p = path.join(root, r);
      const st = await lstat(p);
      const what = st.isSymbolicLink()
        ? `link ${await readlink(p)}`
        : st.isDirectory()
          ? 'dir'
          : st.isFile()
            ? `file ${sha(await readFile(p))}`
            : 'other';
      lines.push(`${r} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${what}`);
      if (st.isDirectory()) await walk(r);
    }
  };
  await walk('');
  const top = await lstat(root);
  return `${top.mode.toString(8)} ${top.mtimeMs}\n${lines.join('\n')}`;
}

describe('review grants (real VM)', () => {
  let work: string;
  let folder: string;
  let sandbox: Sandbox;
  let vm: Vm;
  let before: string;
  let contentAtStart: Record<string, string>;
  const boundary: BoundaryFinding[] = [];

  beforeAll(async () => {
    const imageDir = (await ensureTestImage()).dir;
    work = await mkdtemp(path.join(os.tmpdir(), 'pdk-review-'));
    folder = path.join(work, 'folder');
    await mkdir(path.join(folder, 'sub'), { recursive: true });
    await mkdir(path.join(folder, '.git'));
    await writeFile(path.join(folder, 'edit.txt'), 'original\n');
    await writeFile(path.join(folder, 'gone.txt'), 'to be deleted\n');
    await writeFile(path.join(folder, 'old-name.txt'), 'moving\n');
    await writeFile(path.join(folder, 'script.sh'), '#!/bin/sh\necho hi\n');
    await chmod(path.join(folder, 'script.sh'), 0o644);
    await writeFile(path.join(folder, 'sub', 'keep.txt'), 'untouched\n');
    await writeFile(path.join(folder, '.git', 'config'), '[core]\n');
    before = await treeDigest(folder);
    contentAtStart = treeOf(folder);
    sandbox = new Sandbox({
      backend: new QemuBackend(),
      imageDir,
      sessionDir: path.join(work, 'session'),
      runDir: work,
      shares: [{ hostPath: folder, name: 'w', readOnly: false, review: true }],
      allowHosts: [],
      memoryMb: 512,
      cpus: 2,
      onBoundary: (f) => boundary.push(...f),
    });
    vm = await sandbox.ready();
  });
  afterAll(async () => {
    await sandbox?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('stages edits, new files, deletions, renames, mode changes and links; the folder is untouched', async () => {
    const { out, code } = await run(
      await sandbox.exec({
        cwd: '/mnt/w',
        shell: [
          'set -e',
          "printf 'changed\\n' >> edit.txt",
          "printf 'brand new\\n' > created.txt",
          'rm gone.txt',
          'mv old-name.txt new-name.txt',
          'chmod 755 script.sh',
          'ln -s /etc/passwd link-out',
          // Files host tools run are staged like any other: nothing reaches the folder.
          "printf '[core]\\n\\tfsmonitor = touch /tmp/pwned\\n' >> .git/config",
          'cat edit.txt; ls -A; stat -c %a script.sh',
        ].join('\n'),
      }),
    );
    expect(code).toBe(0);
    expect(out).toBe(
      'original\nchanged\n.git\ncreated.txt\nedit.txt\nlink-out\nnew-name.txt\nscript.sh\nsub\n755\n',
    );
    expect(await treeDigest(folder)).toBe(before);
    expect(boundary).toEqual([]);

    const t0 = performance.now();
    const listing = await readStagedChanges(vm, ['w']);
    const ms = performance.now() - t0;
    console.log(`readStagedChanges: ${Math.round(ms)} ms`);
    expect(listing.truncated).toBe(false);
    expect(listing.shares).toHaveLength(1);
    const share = listing.shares[0]!;
    expect(share).toMatchObject({ name: 'w', truncated: false, skipped: 0 });
    const file = (text: string, mode = 0o644) => ({
      type: 'file',
      mode,
      size: Buffer.byteLength(text),
      sha256: sha(text),
    });
    const byPath = Object.fromEntries(share.entries.map((e) => [e.path, e]));
    const dir = { type: 'dir', mode: 0o755 };
    const expected: Record<string, Record<string, unknown>> = {
      '.git': { ...dir, lower: { ...dir, size: 0 } },
      '.git/config': {
        ...file('[core]\n[core]\n\tfsmonitor = touch /tmp/pwned\n'),
        lower: file('[core]\n'),
      },
      'created.txt': { ...file('brand new\n'), lower: null },
      'edit.txt': { ...file('original\nchanged\n'), lower: file('original\n') },
      'gone.txt': { type: 'whiteout', lower: file('to be deleted\n') },
      'link-out': { type: 'symlink', size: 11, target: '/etc/passwd', lower: null },
      'new-name.txt': { ...file('moving\n'), lower: null },
      'old-name.txt': { type: 'whiteout', lower: file('moving\n') },
      'script.sh': { ...file('#!/bin/sh\necho hi\n', 0o755), lower: file('#!/bin/sh\necho hi\n') },
    };
    expect(byPath).toEqual(
      Object.fromEntries(Object.entries(expected).map(([p, e]) => [p, { path: p, ...e }])),
    );

    // One staged file, checked against the listing's hash; links and wrong hashes are refused.
    const edit = byPath['edit.txt'] as Extract<StagedEntry, { type: 'file' }>;
    const data = await readStagedFile(vm, 'w', 'edit.txt', 1024, edit.sha256);
    expect(data.toString()).toBe('original\nchanged\n');
    await expect(readStagedFile(vm, 'w', 'edit.txt', 1024, sha('other'))).rejects.toThrow(
      /changed since/,
    );
    await expect(readStagedFile(vm, 'w', 'edit.txt', 4)).rejects.toThrow(/larger than 4 bytes/);
    await expect(readStagedFile(vm, 'w', 'link-out', 1024)).rejects.toThrow(/not a regular file/);
    await expect(readStagedFile(vm, 'w', '../lower/edit.txt', 1024)).rejects.toThrow(/"\.\."/);
    await expect(readStagedChanges(vm, ['nope'])).rejects.toMatchObject({
      code: 'STAGED_LISTING_FAILED',
    });
    expect(await treeDigest(folder)).toBe(before);
  });

  it('keeps what was staged when the VM dies and a new one boots on the same disk', async () => {
    // Listing syncs the session disk; later writes are written back within about 2 s.
    const first = await readStagedChanges(vm, ['w']);
    await run(await sandbox.exec({ shell: 'printf late > /mnt/w/late.txt' }));
    await new Promise((r) => setTimeout(r, 5000));
    process.kill(vm.pid!, 'SIGKILL');
    await vm.exited;
    const { out } = await run(await sandbox.exec({ shell: 'cat /mnt/w/created.txt' }));
    expect(out).toBe('brand new\n');
    vm = await sandbox.ready();
    const again = await readStagedChanges(vm, ['w']);
    const late = again.shares[0]!.entries.find((e) => e.path === 'late.txt');
    expect(late).toMatchObject({ type: 'file', sha256: sha('late'), lower: null });
    expect(again.shares[0]!.entries.filter((e) => e !== late)).toEqual(first.shares[0]!.entries);
    expect(await treeDigest(folder)).toBe(before);
  });

  it('fails with ENOSPC inside the guest when the session disk is full', async () => {
    const free = () => {
      const st = statfsSync(work);
      return st.bavail * st.bsize;
    };
    const freeBefore = free();
    const t0 = performance.now();
    const { err } = await run(
      await sandbox.exec({
        shell: 'df -k / >&2; dd if=/dev/zero of=/mnt/w/fill bs=1M; df -k / >&2; rm /mnt/w/fill',
        timeoutMs: 170_000,
      }),
    );
    console.log(`filling the session disk: ${Math.round(performance.now() - t0)} ms\n${err}`);
    expect(err).toContain('No space left on device');
    // The host gave no more than the session disk's size (its qcow2 layer's virtual size).
    const layers = readdirSync(path.join(work, 'session'), { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.qcow2'));
    expect(layers.length).toBeGreaterThan(0);
    const cap = Math.max(
      ...layers.map(
        (f) =>
          (
            JSON.parse(
              execFileSync(
                'qemu-img',
                ['info', '--output=json', '-U', path.join(work, 'session', f)],
                {
                  encoding: 'utf8',
                },
              ),
            ) as { 'virtual-size': number }
          )['virtual-size'],
      ),
    );
    const used = freeBefore - free();
    console.log(
      `host space used by filling the guest: ${used} bytes; the session disk's cap: ${cap}`,
    );
    expect(used).toBeLessThanOrEqual(cap + 64 * 1024 * 1024); // qcow2 metadata
    expect(await treeDigest(folder)).toBe(before);
    const listing = await readStagedChanges(vm, ['w']);
    expect(listing.shares[0]!.entries.map((e) => e.path)).not.toContain('fill');
  });

  // After this, the folder's times differ from `before` (applying and undoing touch them).
  it('stages through the core, applies so the folder matches, refuses what leaves it, and undoes byte for byte', async () => {
    const data = path.join(work, 'data');
    const canary = path.join(work, 'outside.txt');
    await writeFile(canary, 'not yours\n');
    const passwd = await readFile('/etc/passwd');
    const contentBefore = treeOf(folder);
    const store = Store.open(data);
    const events = new EventBus();
    const changes = new ChangeService({ store, events, dataDir: data, pruneOnStart: false });
    try {
      const share = { hostPath: folder, name: 'w', readOnly: false, review: true };
      const task = store.sessions.create({
        title: 'review',
        model: 'claude-opus-5-5',
        approvalMode: 'auto',
        folders: [share],
      });
      const staged = await changes.stage(
        task.id,
        vmStagedSource(() => Promise.resolve(vm), ['w']),
        [share],
      );
      expect(staged.changesets).toHaveLength(1);
      const cs = changes.get(staged.changesets[0]!.id);
      const kinds = Object.fromEntries(cs.files.map((f) => [f.path, f.kind]));
      expect(kinds).toEqual({
        '.git/config': 'modified',
        'created.txt': 'added',
        'edit.txt': 'modified',
        'gone.txt': 'deleted',
        'late.txt': 'added',
        'link-out': 'added',
        'new-name.txt': 'renamed',
        'script.sh': 'mode',
      });
      // Nothing reached the folder by staging.
      expect(await treeDigest(folder)).toBe(before);

      const applied = await changes.apply(cs.id);
      const refused = Object.fromEntries(applied.refused.map((r) => [r.path, r.reason]));
      expect(Object.keys(refused).sort()).toEqual(['.git/config', 'link-out']);
      expect(refused['link-out']).toMatch(/points outside the folder/);
      expect(await readFile(path.join(folder, 'edit.txt'), 'utf8')).toBe('original\nchanged\n');
      expect(await readFile(path.join(folder, 'created.txt'), 'utf8')).toBe('brand new\n');
      expect(await readFile(path.join(folder, 'late.txt'), 'utf8')).toBe('late');
      expect(await readFile(path.join(folder, 'new-name.txt'), 'utf8')).toBe('moving\n');
      expect((await lstat(path.join(folder, 'script.sh'))).mode & 0o777).toBe(0o755);
      for (const gone of ['gone.txt', 'old-name.txt', 'link-out'])
        await expect(lstat(path.join(folder, gone))).rejects.toThrow(/ENOENT/);
      expect(await readFile(path.join(folder, '.git', 'config'), 'utf8')).toBe('[core]\n');
      // Nothing outside the folder was read through the link or written.
      expect(await readFile(canary, 'utf8')).toBe('not yours\n');
      expect(await readFile('/etc/passwd')).toEqual(passwd);

      const undone = await changes.undo(cs.id);
      expect(undone.refused).toEqual([]);
      expect(treeOf(folder)).toEqual(contentBefore);
    } finally {
      changes.dispose();
      store.dispose();
      events.dispose();
    }
  });

  it('root in the guest cannot write the folder: not by remounting, nor around the overlay', async () => {
    const lower = '/var/lib/paddock/review/w/lower';
    const { out } = await run(
      await sandbox.exec({
        shell: [
          `echo x > ${lower}/edit.txt; echo direct=$?`,
          `mount -o remount,rw ${lower}; echo remount=$?`,
          `echo x > ${lower}/edit.txt; echo after-remount=$?`,
          `touch ${lower}/planted; echo create=$?`,
          `chmod 777 ${lower}/script.sh; echo chmod=$?`,
          `rm ${lower}/gone.txt; echo unlink=$?`,
          // A fresh read-write mount of the share's tag, with the overlay out of the way.
          `umount /mnt/w && umount ${lower}; echo umount=$?`,
          'mkdir -p /tmp/again && mount -t 9p -o trans=virtio,version=9p2000.L p0 /tmp/again; echo mount9p=$?',
          'echo x > /tmp/again/edit.txt; echo fresh-mount=$?',
          'touch /tmp/again/planted; echo fresh-create=$?',
        ].join('\n'),
      }),
    );
    expect(out).toMatch(/^remount=0$/m);
    expect(out).toMatch(/^mount9p=0$/m);
    for (const k of [
      'direct',
      'after-remount',
      'create',
      'chmod',
      'unlink',
      'fresh-mount',
      'fresh-create',
    ]) {
      expect(out).toMatch(new RegExp(`^${k}=[1-9]`, 'm'));
    }
    expect(treeOf(folder)).toEqual(contentAtStart);
  });
});
