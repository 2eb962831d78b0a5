/**
 * The sandbox under stress, as issue 3's acceptance puts it: killing QEMU mid-command gives a
 * clear error and the next command works in a fresh VM; printing 1 GB through `paddock exec`
 * arrives whole while the host process stays under 300 MB.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmGoneError, type ExecHandle, type Vm } from '../../src/main/vm/backend.js';
import { QemuBackend, type QemuVm } from '../../src/main/vm/qemu/backend.js';
import { Sandbox } from '../../src/main/vm/sandbox.js';
import { repoRoot } from '../helpers/cli.js';
import { ensureTestImage, vmTestHome } from '../helpers/vm-image.js';

async function output(h: ExecHandle): Promise<{ out: string; code: number }> {
  let out = '';
  h.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  h.stderr.resume();
  h.stdin.end();
  const r = await h.result;
  return { out, code: r.exitCode };
}

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

describe('Sandbox (real VM)', () => {
  let imageDir: string;
  let work: string;
  beforeAll(async () => {
    imageDir = (await ensureTestImage()).dir;
    work = await mkdtemp(path.join(os.tmpdir(), 'pdk-sbx-'));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('fails a running command with VmGoneError when QEMU is killed, then boots a fresh VM', async () => {
    const booted: Vm[] = [];
    const backend = new QemuBackend();
    const sandbox = new Sandbox({
      backend: {
        name: 'qemu',
        start: async (spec) => {
          const vm = await backend.start(spec);
          booted.push(vm);
          return vm;
        },
      },
      imageDir,
      sessionDir: path.join(work, 'session'),
      runDir: work,
      shares: [],
      allowHosts: [],
      memoryMb: 512,
      cpus: 2,
    });
    try {
      const first = (
        await output(await sandbox.exec({ shell: 'cat /proc/sys/kernel/random/boot_id' }))
      ).out;
      const h = await sandbox.exec({ argv: ['sleep', '60'] });
      h.stdout.resume();
      h.stderr.resume();
      h.stdin.end();
      await new Promise((r) => setTimeout(r, 500));
      const pid = (booted[0] as QemuVm).pid!;
      const t0 = performance.now();
      process.kill(pid, 'SIGKILL');
      const err = await h.result.then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(VmGoneError);
      expect((err as VmGoneError).code).toBe('VM_GONE');
      // A sentence a person can act on, not a socket error.
      expect((err as Error).message).toMatch(/^The sandbox VM stopped unexpectedly; .*\.$/);
      expect(performance.now() - t0).toBeLessThan(5000);

      const next = await output(
        await sandbox.exec({ shell: 'echo ok; cat /proc/sys/kernel/random/boot_id' }),
      );
      expect(next.code).toBe(0);
      expect(next.out.split('\n')[0]).toBe('ok');
      expect(booted).toHaveLength(2);
      expect(next.out.split('\n')[1]).not.toBe(first.trim());
    } finally {
      await sandbox.stop();
    }
  });

  it('paddock exec delivers 1 GiB of stdout exactly, staying under 300 MB RSS', async () => {
    const size = 1024 * 1024 * 1024;
    const proc = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        path.join(repoRoot, 'src/main/cli/entry.ts'),
        'exec',
        '--',
        'head',
        '-c',
        String(size),
        '/dev/zero',
      ],
      {
        cwd: repoRoot,
        env: { ...process.env, PADDOCK_HOME: vmTestHome },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let bytes = 0;
    let nonZero = false;
    proc.stdout.on('data', (d: Buffer) => {
      bytes += d.length;
      if (!nonZero && d.some((b) => b !== 0)) nonZero = true;
    });
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    let maxRss = 0;
    const sampler = setInterval(() => {
      if (proc.pid) maxRss = Math.max(maxRss, rssMb(proc.pid));
    }, 100);
    const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
    clearInterval(sampler);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(bytes).toBe(size);
    expect(nonZero).toBe(false);
    expect(maxRss).toBeGreaterThan(0);
    expect(maxRss).toBeLessThan(300);
    console.log(`1 GiB through paddock exec: max RSS ${maxRss.toFixed(0)} MB`);
  }, 600_000);
});
