/**
 * Warm VMs (issue 3 points 7 and 8): a VM booted ahead for a known spec and handed to the next
 * session, in one process (WarmPool) and across processes (`paddock exec --keep-warm`).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecHandle, Vm } from '../../src/main/vm/backend.js';
import { QemuBackend, type QemuVm } from '../../src/main/vm/qemu/backend.js';
import type { WarmRecord } from '../../src/main/vm/qemu/warm-handoff.js';
import { Sandbox } from '../../src/main/vm/sandbox.js';
import { WarmPool, warmKey, type WarmSpec } from '../../src/main/vm/warm-pool.js';
import { repoRoot } from '../helpers/cli.js';
import { ensureTestImage, vmTestHome } from '../helpers/vm-image.js';

async function output(h: ExecHandle): Promise<string> {
  let out = '';
  h.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  h.stderr.resume();
  h.stdin.end();
  await h.result;
  return out;
}

const bootId = async (vm: Vm): Promise<string> =>
  (await output(vm.exec({ argv: ['cat', '/proc/sys/kernel/random/boot_id'] }))).trim();

/** `paddock exec` from source, timed; stdout as text. */
function pexec(
  args: string[],
): Promise<{ code: number | null; out: string; err: string; ms: number }> {
  const t0 = performance.now();
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/main/cli/entry.ts'), 'exec', ...args],
    {
      cwd: repoRoot,
      env: { ...process.env, PADDOCK_HOME: vmTestHome },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  let err = '';
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve) =>
    proc.on('close', (code) => resolve({ code, out, err, ms: performance.now() - t0 })),
  );
}

describe('warm VMs (real VM)', () => {
  let imageDir: string;
  let work: string;
  beforeAll(async () => {
    imageDir = (await ensureTestImage()).dir;
    work = await mkdtemp(path.join(os.tmpdir(), 'pdk-warm-'));
  });
  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('keys on everything fixed at QEMU start, shares and their modes included', () => {
    const base: WarmSpec = { imageDir: '/i', shares: [], cpus: 2, memoryMb: 512, accel: 'auto' };
    const rw = { ...base, shares: [{ hostPath: '/d', name: 'd', readOnly: false }] };
    const ro = { ...base, shares: [{ hostPath: '/d', name: 'd', readOnly: true }] };
    expect(warmKey(rw)).not.toBe(warmKey(ro));
    expect(warmKey(base)).not.toBe(warmKey(rw));
    expect(warmKey({ ...base, memoryMb: 1024 })).not.toBe(warmKey(base));
    expect(warmKey({ ...base })).toBe(warmKey(base));
  });

  it('take() after prewarm hands over a ready VM, never the previous session one, and refills', async () => {
    const pool = new WarmPool({ backend: new QemuBackend(), dir: path.join(work, 'pool') });
    const spec: WarmSpec = { imageDir, shares: [], cpus: 2, memoryMb: 512, accel: 'auto' };
    const taken: Vm[] = [];
    try {
      expect(await pool.take(spec)).toBeNull();
      pool.prewarm(spec);
      pool.prewarm(spec); // at most one per spec
      expect(pool.size).toBe(1);
      // It boots while the person types the prompt.
      expect(await pool.whenWarm(spec)).toBe(true);
      let t0 = performance.now();
      const first = (await pool.take(spec))!;
      taken.push(first);
      await first.ping();
      const firstMs = performance.now() - t0;
      expect(firstMs).toBeLessThan(100);
      const firstBoot = await bootId(first);
      // The session leaves something behind; the next session must not see it.
      await output(first.exec({ shell: 'echo secret > /root/left-over' }));
      expect(pool.size).toBe(1); // take() started warming the next one
      await first.stop();

      expect(await pool.whenWarm(spec)).toBe(true);
      t0 = performance.now();
      const second = (await pool.take(spec))!;
      taken.push(second);
      await second.ping();
      const secondMs = performance.now() - t0;
      console.log(`take to first reply: ${firstMs.toFixed(1)} ms, ${secondMs.toFixed(1)} ms`);
      expect(secondMs).toBeLessThan(100);
      expect(second.id).not.toBe(first.id);
      expect((second as QemuVm).pid).not.toBe((first as QemuVm).pid);
      expect(await bootId(second)).not.toBe(firstBoot);
      expect(await output(second.exec({ shell: 'cat /root/left-over 2>&1 || echo none' }))).toMatch(
        /No such file/,
      );
    } finally {
      await pool.dispose();
      await Promise.allSettled(taken.map((v) => v.stop()));
    }
    expect(pool.size).toBe(0);
  }, 300_000);

  it('a Sandbox with a pool takes the warm VM and moves its layer into the session', async () => {
    const backend = new QemuBackend();
    const pool = new WarmPool({
      backend,
      dir: path.join(work, 'pool2'),
      refill: false,
    });
    const spec: WarmSpec = { imageDir, shares: [], cpus: 2, memoryMb: 512, accel: 'auto' };
    pool.prewarm(spec);
    const started: string[] = [];
    const sessionDir = path.join(work, 'session2');
    const sandbox = new Sandbox({
      backend: {
        name: 'qemu',
        start: (s) => {
          started.push(s.overlayPath);
          return backend.start(s);
        },
      },
      pool,
      imageDir,
      sessionDir,
      runDir: work,
      shares: [],
      allowHosts: [],
      memoryMb: 512,
      cpus: 2,
    });
    try {
      expect(
        (await output(await sandbox.exec({ shell: 'echo hi > /root/f; echo ok' }))).trim(),
      ).toBe('ok');
      expect(started).toHaveLength(0); // no cold boot
      expect(existsSync(path.join(sessionDir, 'overlay.qcow2'))).toBe(true);
      // The layer is the session's: a checkpoint lands next to it.
      await sandbox.checkpoint('c1');
      expect(existsSync(path.join(sessionDir, 'overlay.qcow2.checkpoints', 'c1.qcow2'))).toBe(true);
    } finally {
      await sandbox.stop();
      await pool.dispose();
    }
  }, 300_000);

  it('paddock exec --keep-warm leaves a VM that the next exec with the same spec uses', async () => {
    const warmDir = path.join(vmTestHome, 'warm');
    const cold = await pexec(['--keep-warm', '--', 'cat', '/proc/sys/kernel/random/boot_id']);
    expect(cold.code, cold.err).toBe(0);
    const records = readdirSync(warmDir).filter(
      (n) => n.endsWith('.json') && !n.startsWith('claimed'),
    );
    expect(records).toHaveLength(1);
    const record = JSON.parse(readFileSync(path.join(warmDir, records[0]!), 'utf8')) as WarmRecord;
    // The warm QEMU outlived the process that started it.
    expect(existsSync(`/proc/${record.vm.pid}`)).toBe(true);
    // Let it boot (as the time between two commands would).
    await new Promise((r) => setTimeout(r, 12_000));
    const warm = await pexec([
      '--',
      'sh',
      '-c',
      'cat /proc/sys/kernel/random/boot_id; cut -d" " -f1 /proc/uptime',
    ]);
    expect(warm.code, warm.err).toBe(0);
    const [warmBoot, uptime] = warm.out.trim().split('\n');
    // A fresh VM (not the first exec's), up since before this exec started: the warm one.
    expect(warmBoot).not.toBe(cold.out.trim());
    expect(Number(uptime)).toBeGreaterThan(10);
    // Used once, then stopped; nothing left behind.
    expect(
      existsSync(`/proc/${record.vm.pid}`) &&
        !readFileSync(`/proc/${record.vm.pid}/stat`, 'utf8').includes(') Z'),
    ).toBe(false);
    expect(readdirSync(warmDir)).toEqual([]);
    console.log(
      `paddock exec wall time: cold ${cold.ms.toFixed(0)} ms, warm ${warm.ms.toFixed(0)} ms`,
    );
    expect(warm.ms).toBeLessThan(cold.ms);
  }, 300_000);
});
