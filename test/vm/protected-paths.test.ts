/**
 * The attack of "The boundary, hardened": a read-write grant of a git repository, and a guest
 * (root in the VM) that plants a command in files host tools run on sight. The host's own `git
 * status` (which editors and shell prompts run by themselves) must not run it, every plant must
 * be refused or moved aside, and each must be reported to the model and the person.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chmod,
  link,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { QemuBackend } from '../../src/main/vm/qemu/backend.js';
import { Sandbox } from '../../src/main/vm/sandbox.js';
import { WarmPool } from '../../src/main/vm/warm-pool.js';
import type { BoundaryFinding } from '../../src/main/vm/protected-paths.js';
import { execOutput as run } from '../helpers/exec-output.js';
import { ensureTestImage } from '../helpers/vm-image.js';

/** Host git with no global or system config, as a person's editor would run it in the repo. */
function hostGit(cwd: string, args: string[], home: string): string {
  return execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

describe('protected paths in a read-write grant (real VM)', () => {
  let imageDir: string;
  let work: string;
  let repo: string;
  let marker: string;
  let sandbox: Sandbox;
  const reported: BoundaryFinding[] = [];

  beforeAll(async () => {
    imageDir = (await ensureTestImage()).dir;
    work = await mkdtemp(path.join(os.tmpdir(), 'pdk-prot-'));
    repo = path.join(work, 'repo');
    marker = path.join(work, 'PWNED');
    await mkdir(repo);
    hostGit(repo, ['init', '-q'], work);
    await writeFile(path.join(repo, 'README.md'), 'hello\n');
    // The person's own .envrc: a single file, bound read-only like the .git folder.
    await writeFile(path.join(repo, '.envrc'), 'export A=1\n');
    await mkdir(path.join(repo, 'scripts'));
    await writeFile(path.join(repo, 'scripts', 'build.sh'), '#!/bin/sh\necho build\n');
    await chmod(path.join(repo, 'scripts', 'build.sh'), 0o755);
    await writeFile(path.join(repo, 'scripts', 'deploy.sh'), '#!/bin/sh\necho deploy\n');
    await chmod(path.join(repo, 'scripts', 'deploy.sh'), 0o755);
    // A hard link the person made before the session keeps its mode: it is theirs.
    await link(path.join(repo, 'scripts', 'build.sh'), path.join(repo, 'scripts', 'b.sh'));
    sandbox = new Sandbox({
      backend: new QemuBackend(),
      imageDir,
      sessionDir: path.join(work, 'session'),
      runDir: work,
      shares: [{ hostPath: repo, name: 'repo', readOnly: false }],
      allowHosts: [],
      memoryMb: 512,
      cpus: 2,
      onBoundary: (f) => reported.push(...f),
    });
  });
  afterAll(async () => {
    await sandbox?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the guest cannot make host git run its command (core.fsmonitor, hooks)', async () => {
    // The attack: plant core.fsmonitor in .git/config and turn a hook sample into a hook.
    const { out, r } = await run(
      await sandbox.exec({
        cwd: '/mnt/repo',
        shell: [
          `printf '[core]\\n\\tfsmonitor = "touch ${marker}; false"\\n' >> .git/config; echo config=$?`,
          'mv .git/hooks/pre-commit.sample .git/hooks/pre-commit; echo hook=$?',
          `echo 'touch ${marker}' >> .envrc; echo envrc=$?`,
        ].join('\n'),
      }),
    );
    // What an editor does on its own a moment later:
    hostGit(repo, ['status', '--porcelain'], work);
    expect(existsSync(marker)).toBe(false);
    expect(() => hostGit(repo, ['config', '--get', 'core.fsmonitor'], work)).toThrow();
    expect(existsSync(path.join(repo, '.git', 'hooks', 'pre-commit'))).toBe(false);
    expect(existsSync(path.join(repo, '.git', 'hooks', 'pre-commit.sample'))).toBe(true);
    expect(out).toMatch(/config=[1-9]/);
    expect(out).toMatch(/hook=[1-9]/);
    expect(out).toMatch(/envrc=[1-9]/);
    expect(await readFile(path.join(repo, '.envrc'), 'utf8')).toBe('export A=1\n');

    // Nor by putting a .git of its own in place of the person's.
    const again = await run(
      await sandbox.exec({ cwd: '/mnt/repo', shell: 'mv .git .git-old; echo movegit=$?' }),
    );
    expect(again.out).toMatch(/movegit=[1-9]/);
    expect(existsSync(path.join(repo, '.git', 'config'))).toBe(true);

    // Reported to the model (in the result) and to the person (the callback).
    const mine = r.boundary ?? [];
    expect(mine.some((f) => f.kind === 'write-refused' && f.path.includes('.git'))).toBe(true);
    expect(reported.some((f) => f.kind === 'write-refused')).toBe(true);
  });

  it('moves aside protected files the guest creates (.envrc, .vscode/tasks.json, a .git file)', async () => {
    const evilGitdir = [
      'mkdir -p sub gd/objects gd/refs',
      "printf 'ref: refs/heads/main\\n' > gd/HEAD",
      `printf '[core]\\n\\trepositoryformatversion = 0\\n\\tbare = false\\n\\tworktree = ../sub\\n\\tfsmonitor = "touch ${marker}; false"\\n' > gd/config`,
      "printf 'gitdir: ../gd\\n' > sub/.git",
    ];
    const { r } = await run(
      await sandbox.exec({
        cwd: '/mnt/repo',
        shell: [
          'mkdir -p .vscode',
          `printf '{"version":"2.0.0","tasks":[{"label":"x","type":"shell","command":"touch ${marker}","runOptions":{"runOn":"folderOpen"}}]}' > .vscode/tasks.json`,
          ...evilGitdir,
          `printf 'touch ${marker}\\n' > sub/.envrc`,
        ].join('\n'),
      }),
    );
    expect(r.exitCode).toBe(0);
    for (const p of ['sub/.envrc', '.vscode', 'sub/.git', 'gd/HEAD'])
      expect(existsSync(path.join(repo, p)), p).toBe(false);
    // Host git in the subfolder now finds the parent repo, never the guest's gitdir.
    hostGit(path.join(repo, 'sub'), ['status', '--porcelain'], work);
    expect(existsSync(marker)).toBe(false);
    // Quarantined in the session folder, not deleted.
    const q = path.join(work, 'session', 'quarantine');
    const kept = await readdir(q, { recursive: true });
    expect(kept.some((n) => n.endsWith('.envrc'))).toBe(true);
    expect(kept.some((n) => n.endsWith('tasks.json'))).toBe(true);
    const kinds = (r.boundary ?? []).map((f) => `${f.kind}:${f.path}`);
    expect(kinds).toEqual(
      expect.arrayContaining([
        'quarantined:sub/.envrc',
        'quarantined:.vscode',
        'quarantined:sub/.git',
        'quarantined:gd/HEAD',
      ]),
    );
  });

  it('no file gains an exec bit on the host: renamed, hard-linked or chmod-ed', async () => {
    const { r } = await run(
      await sandbox.exec({
        cwd: '/mnt/repo',
        shell: [
          'mv scripts/deploy.sh run-me',
          'ln scripts/build.sh linked',
          "printf '#!/bin/sh\\necho new\\n' > made.sh && chmod 755 made.sh",
          // Writing into a script that was executable before keeps it executable (its own path).
          "printf '#!/bin/sh\\necho edited\\n' > scripts/build.sh",
        ].join('\n'),
      }),
    );
    expect(r.exitCode).toBe(0);
    const mode = async (p: string) => (await stat(path.join(repo, p))).mode & 0o7777;
    expect(await mode('run-me')).toBe(0o644);
    expect(await mode('linked')).toBe(0o644);
    // mapped-xattr: a file the guest makes is 0600 on the host, whatever mode the guest gives it.
    expect(await mode('made.sh')).toBe(0o600);
    expect(await mode('scripts/build.sh')).toBe(0o755);
    expect(await mode('scripts/b.sh')).toBe(0o755);
    const kinds = (r.boundary ?? []).map((f) => `${f.kind}:${f.path}`);
    expect(kinds).toEqual(expect.arrayContaining(['exec-cleared:run-me', 'exec-cleared:linked']));
  });

  it('a warm VM booted before the repo existed is not used: its QEMU lacks the binds', async () => {
    const late = path.join(work, 'late');
    await mkdir(late);
    const shares = [{ hostPath: late, name: 'late', readOnly: false }];
    const spec = { imageDir, shares, cpus: 2, memoryMb: 512, accel: 'auto' as const };
    const backend = new QemuBackend();
    const pool = new WarmPool({ backend, dir: path.join(work, 'warm'), refill: false });
    const logs: string[] = [];
    const sb = new Sandbox({
      backend,
      pool,
      imageDir,
      sessionDir: path.join(work, 'session-late'),
      runDir: work,
      shares,
      allowHosts: [],
      memoryMb: 512,
      cpus: 2,
      log: (l) => logs.push(l),
    });
    try {
      pool.prewarm(spec);
      expect(await pool.whenWarm(spec)).toBe(true);
      // The person makes the folder a repository after the VM was warmed for it.
      hostGit(late, ['init', '-q'], work);
      const { out } = await run(
        await sb.exec({
          cwd: '/mnt/late',
          shell: `printf '[core]\\n\\tfsmonitor = "touch ${marker}; false"\\n' >> .git/config; echo config=$?`,
        }),
      );
      expect(out).toMatch(/config=[1-9]/);
      expect(logs.join('\n')).toMatch(/lacks the read-only binds; cold boot/);
      hostGit(late, ['status', '--porcelain'], work);
      expect(existsSync(marker)).toBe(false);
    } finally {
      await sb.stop();
      await pool.dispose();
    }
  });
});
