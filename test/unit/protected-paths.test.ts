/**
 * The list, the walk and the sweep of protected-paths.ts on real folders (no VM): what counts as
 * a file host tools run, what git config points at, and what a sweep moves aside or un-executes.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  bindTargets,
  BoundaryGuard,
  boundaryNote,
  gitConfigRefs,
  gitFileTarget,
  isProtectedName,
  readOnlyBindsFor,
  scanShare,
} from '../../src/main/vm/protected-paths.js';
import {
  parseMountInfo,
  qemuCommand,
  readOnlyBindOptions,
} from '../../src/main/vm/mount-namespace.js';
import { tempDir } from '../helpers/temp-dir.js';

function write(root: string, rel: string, text = '', mode = 0o644): void {
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.writeFileSync(path.join(root, rel), text);
  fs.chmodSync(path.join(root, rel), mode);
}
const modeOf = (root: string, rel: string) => fs.statSync(path.join(root, rel)).mode & 0o7777;

describe('the protected list', () => {
  it('names what host tools run on sight, without regard to case', () => {
    for (const n of [
      '.git',
      '.GIT',
      '.envrc',
      '.vscode',
      '.idea',
      '.devcontainer',
      'team.code-workspace',
      '.claude',
      '.mcp.json',
      '.cargo',
      '.husky',
      '.gitmodules',
      '.zshrc',
    ])
      expect(isProtectedName(n), n).toBe(true);
    for (const n of ['.github', '.gitignore', 'src', '.env', 'package.json', '.code-workspace'])
      expect(isProtectedName(n), n).toBe(false);
  });

  it('reads the paths a git config names: hooks, includes, command programs', () => {
    const refs = gitConfigRefs(
      [
        '[core]',
        '\trepositoryformatversion = 0',
        '\thooksPath = .githooks-custom ; a comment',
        // git's quotes go; the shell's (escaped) stay and group the program's name.
        '\tfsmonitor = "\\"tools/fs monitor.sh\\" --flag"',
        '\tpager = less',
        '[include]',
        '\tpath = ../shared.gitconfig',
        '[includeIf "gitdir:~/work/"]',
        '\tpath = ../work.gitconfig',
        '[filter "x"]',
        '\tclean = ./scripts/clean.sh %f',
        '[alias]',
        '\tst = status',
        '\tup = !./bin/up \\',
        '   --all',
        '[remote "origin"]',
        '\turl = ../upstream/repo.git',
      ].join('\n'),
    );
    expect(refs.hookDirs).toEqual(['.githooks-custom']);
    expect(refs.includes).toEqual(['../shared.gitconfig', '../work.gitconfig']);
    expect(refs.commands).toEqual(['tools/fs monitor.sh', './scripts/clean.sh', './bin/up']);
    expect(gitFileTarget('gitdir: ../.git/modules/sub\n')).toBe('../.git/modules/sub');
    expect(gitFileTarget('not a gitfile')).toBeNull();
  });
});

describe('scan and sweep of a grant', () => {
  let t: { dir: string; cleanup(): void };
  let root: string;
  let q: string;
  beforeEach(() => {
    t = tempDir();
    root = path.join(t.dir, 'proj');
    q = path.join(t.dir, 'quarantine');
    fs.mkdirSync(root);
    execFileSync('git', ['init', '-q'], { cwd: root });
    execFileSync('git', ['config', 'core.hooksPath', 'hooks-here'], { cwd: root });
    write(root, 'src/a.txt', 'a');
    write(root, 'bin/tool.sh', '#!/bin/sh\n', 0o755);
    write(root, '.vscode/settings.json', '{}');
    write(root, 'sub/.git', 'gitdir: ../gitdirs/sub\n');
    fs.mkdirSync(path.join(root, 'gitdirs', 'sub'), { recursive: true });
  });
  afterEach(() => t.cleanup());

  const guard = () =>
    new BoundaryGuard({
      shares: [{ hostPath: root, name: 'proj', readOnly: false }],
      quarantineDir: q,
    });

  it('finds the protected paths that exist and what git config points at', async () => {
    const inv = await scanShare('proj', root, { modes: true });
    expect([...inv.protected.keys()].sort()).toEqual([
      '.git',
      '.vscode',
      'gitdirs/sub',
      'sub/.git',
    ]);
    expect([...inv.watch]).toEqual(['hooks-here']);
    expect([...inv.exec]).toEqual(['bin/tool.sh']);
    expect(bindTargets(inv)).toEqual(
      ['.git', '.vscode', 'sub/.git', 'gitdirs/sub'].map((r) => path.join(root, r)),
    );
    // The bind walk (no per-file lstat) gives the same list.
    expect(await readOnlyBindsFor([{ hostPath: root, name: 'proj', readOnly: false }])).toEqual(
      bindTargets(inv),
    );
    // Read-only grants, review grants (read-only on the host) and grants where the person
    // allowed it get no binds.
    expect(await readOnlyBindsFor([{ hostPath: root, name: 'proj', readOnly: true }])).toEqual([]);
    expect(
      await readOnlyBindsFor([{ hostPath: root, name: 'proj', readOnly: false, review: true }]),
    ).toEqual([]);
    expect(
      new BoundaryGuard({
        shares: [{ hostPath: root, name: 'proj', readOnly: false, review: true }],
        quarantineDir: q,
      }).active,
    ).toBe(false);
    expect(
      await readOnlyBindsFor([
        { hostPath: root, name: 'proj', readOnly: false, allowProtectedWrites: true },
      ]),
    ).toEqual([]);
  });

  it('moves aside what the guest creates and leaves the person’s own', async () => {
    const g = guard();
    await g.inventory();
    expect(await g.sweep()).toEqual([]);
    write(root, '.envrc', 'evil');
    write(root, 'deep/er/.idea/workspace.xml', '<x/>');
    write(root, 'hooks-here/pre-commit', 'evil');
    write(root, 'bare/HEAD', 'ref: refs/heads/main\n');
    fs.mkdirSync(path.join(root, 'bare', 'objects'));
    fs.mkdirSync(path.join(root, 'bare', 'refs'));
    write(root, 'bare/config', '[core]\n\tfsmonitor = evil\n');
    const found = await g.sweep();
    expect(found.map((f) => `${f.kind}:${f.path}`).sort()).toEqual([
      'quarantined:.envrc',
      'quarantined:bare/HEAD',
      'quarantined:deep/er/.idea',
      'quarantined:hooks-here',
    ]);
    for (const p of ['.envrc', 'deep/er/.idea', 'hooks-here', 'bare/HEAD'])
      expect(fs.existsSync(path.join(root, p)), p).toBe(false);
    expect(fs.readFileSync(path.join(q, 'proj', '.envrc'), 'utf8')).toBe('evil');
    expect(fs.existsSync(path.join(q, 'proj', 'deep/er/.idea/workspace.xml'))).toBe(true);
    expect(fs.existsSync(path.join(root, '.vscode', 'settings.json'))).toBe(true);
    expect(fs.existsSync(path.join(root, '.git', 'config'))).toBe(true);
    // A protected folder that moves with its parent is still the person's.
    fs.renameSync(path.join(root, 'sub'), path.join(root, 'sub2'));
    expect(await g.sweep()).toEqual([]);
    // The same name made again is the guest's; a second one does not overwrite the first.
    write(root, '.envrc', 'evil 2');
    expect((await g.sweep()).map((f) => f.path)).toEqual(['.envrc']);
    expect(fs.readFileSync(path.join(q, 'proj', '.envrc.1'), 'utf8')).toBe('evil 2');
  });

  it('takes exec bits a path did not have, and splits a hard link from its original', async () => {
    write(root, 'bin/keep.sh', '#!/bin/sh\n', 0o755);
    const g = guard();
    await g.inventory();
    fs.renameSync(path.join(root, 'bin', 'keep.sh'), path.join(root, 'src', 'moved.sh'));
    fs.linkSync(path.join(root, 'bin', 'tool.sh'), path.join(root, 'src', 'linked.sh'));
    fs.mkdirSync(path.join(root, 'newdir'));
    fs.linkSync(path.join(root, 'bin', 'tool.sh'), path.join(root, 'newdir', 'x'));
    fs.writeFileSync(path.join(root, 'bin', 'tool.sh'), '#!/bin/sh\necho edited\n');
    const found = await g.sweep();
    expect(found.map((f) => `${f.kind}:${f.path}`).sort()).toEqual([
      'exec-cleared:newdir/x',
      'exec-cleared:src/linked.sh',
      'exec-cleared:src/moved.sh',
    ]);
    expect(modeOf(root, 'src/moved.sh')).toBe(0o644);
    expect(modeOf(root, 'src/linked.sh')).toBe(0o644);
    expect(fs.readFileSync(path.join(root, 'src/linked.sh'), 'utf8')).toContain('edited');
    // The original keeps its bit (its path had it), and is no longer linked to the copy.
    expect(modeOf(root, 'bin/tool.sh')).toBe(0o755);
    expect(fs.statSync(path.join(root, 'bin/tool.sh')).nlink).toBe(1);
    expect(await g.sweep()).toEqual([]);
  });

  it('still finds changes in folders it skips while their ctime stays put', async () => {
    write(root, 'src/deep/keep.txt');
    // An hour on, every folder counts as settled, so unchanged ones are not listed again.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 3_600_000 });
    try {
      const g = guard();
      await g.inventory();
      expect(await g.sweep()).toEqual([]);
      fs.renameSync(path.join(root, 'bin', 'tool.sh'), path.join(root, 'src', 'deep', 't'));
      write(root, 'src/deep/.envrc', 'evil');
      expect((await g.sweep()).map((f) => `${f.kind}:${f.path}`)).toEqual([
        'quarantined:src/deep/.envrc',
        'exec-cleared:src/deep/t',
      ]);
      expect(await g.sweep()).toEqual([]);
      write(root, 'src/deep/.envrc', 'again');
      expect((await g.sweep()).map((f) => f.path)).toEqual(['src/deep/.envrc']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('checks only the first entries of a huge grant, and says so', async () => {
    for (let i = 0; i < 30; i++) write(root, `many/f${i}`);
    write(root, 'many/deeper/tool', '', 0o755);
    const g = new BoundaryGuard({
      shares: [{ hostPath: root, name: 'proj', readOnly: false }],
      quarantineDir: q,
      maxEntries: 20,
    });
    const inv = (await g.inventory())[0]!;
    expect(inv.complete).toBe(false);
    expect((await g.notes()).map((f) => f.kind)).toEqual(['unchecked']);
    expect(await g.notes()).toEqual([]);
    // Past the limit nothing is known, so nothing is touched.
    fs.renameSync(path.join(root, 'many/deeper/tool'), path.join(root, 'many/deeper/tool2'));
    expect(await g.sweep()).toEqual([]);
  });

  it('refuses a file write to a protected path before it is tried', async () => {
    const g = guard();
    expect((await g.refuseWrite('/mnt/proj/.vscode/tasks.json'))?.kind).toBe('write-refused');
    expect((await g.refuseWrite('/mnt/proj/hooks-here/pre-push'))?.path).toBe(
      'hooks-here/pre-push',
    );
    expect(await g.refuseWrite('/mnt/proj/src/b.txt')).toBeNull();
    expect(await g.refuseWrite('/root/.vscode/x')).toBeNull();
  });

  it('notes refused writes in command output and passes the output on unchanged', async () => {
    const tap = guard().outputTap();
    const text = [
      '/bin/sh: 1: cannot create .git/config: Read-only file system',
      "mv: cannot move '.git/hooks/pre-commit.sample' to '.git/hooks/pre-commit': Read-only file system",
      "mv: cannot move '/mnt/proj/.envrc' to 'x': Device or resource busy",
      'touch: cannot touch /mnt/other/.git/x: Read-only file system',
      'my.git: Read-only file system',
      'plain line about .git',
    ].join('\n');
    let out = '';
    const s = tap.pipe(
      Readable.from([Buffer.from(text.slice(0, 50)), Buffer.from(text.slice(50))]),
    );
    for await (const c of s) out += String(c);
    expect(out).toBe(text);
    expect(tap.findings().map((f) => f.path)).toEqual([
      '.git/config',
      '.git/hooks/pre-commit.sample',
      '.git/hooks/pre-commit',
      '.envrc',
    ]);
    expect(boundaryNote(tap.findings())).toMatch(
      /^\[Paddock boundary\] In read-write folders.*\n- A write to/,
    );
  });
});

describe('QEMU in a mount namespace', () => {
  it('keeps the flags of the mount holding a path (a user namespace may not drop them)', () => {
    const mounts = parseMountInfo(
      [
        '21 1 254:0 / / rw,relatime - ext4 /dev/vda rw',
        '22 21 0:30 / /tmp rw,nosuid,nodev,noatime - tmpfs tmpfs rw',
        '23 21 0:31 / /home/a\\040b rw,nosuid - ext4 /dev/vdb rw',
      ].join('\n'),
    );
    expect(readOnlyBindOptions('/tmp/x/.git', mounts)).toBe('ro,nosuid,nodev,noatime');
    expect(readOnlyBindOptions('/home/a b/p/.git', mounts)).toBe('ro,nosuid');
    expect(readOnlyBindOptions('/home/a/.git', mounts)).toBe('ro,relatime');
  });

  it('starts QEMU as before when nothing is protected', () => {
    expect(qemuCommand({ qemu: 'qemu', args: ['-m', '1'], readOnly: [], pdeathsig: true })).toEqual(
      { command: 'setpriv', args: ['--pdeathsig', 'KILL', '--', 'qemu', '-m', '1'] },
    );
    expect(
      qemuCommand({ qemu: 'qemu', args: ['-m', '1'], readOnly: [], pdeathsig: false }),
    ).toEqual({ command: 'qemu', args: ['-m', '1'] });
  });

  it('binds each protected path read-only before QEMU, paths as arguments', () => {
    const c = qemuCommand({
      qemu: 'qemu',
      args: ['-m', '1'],
      readOnly: ["/tmp/it's here/.git"],
      pdeathsig: true,
    });
    expect(c.command).toBe('setpriv');
    expect(c.args.slice(0, 4)).toEqual(['--pdeathsig', 'KILL', '--', 'unshare']);
    const script = c.args[c.args.indexOf('-c') + 1]!;
    expect(script).not.toContain("it's here");
    expect(c.args.slice(-6)).toEqual([
      '1',
      "/tmp/it's here/.git",
      expect.stringMatching(/^ro(,|$)/),
      'qemu',
      '-m',
      '1',
    ]);
  });
});
