/**
 * Resource limits in the guest (src/guest/agent.c, cgroup v2): a fork bomb, a memory hog and a
 * full disk harm only the guest. Each command ends within its timeout, the agent keeps
 * answering, the next command works, and the host (this process's event loop, QEMU's memory)
 * is unaffected. One VM for the whole file; runs on TCG on the build machines.
 */
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExecRequest, ExecResult } from '../../src/main/vm/backend.js';
import { QemuBackend, type QemuVm } from '../../src/main/vm/qemu/backend.js';
import { ensureTestImage, vmTestHome } from '../helpers/vm-image.js';

const MEMORY_MB = 512;

interface Ran extends ExecResult {
  out: string;
  err: string;
  /** Wall time on the host from the request to the result. */
  wallMs: number;
}

/** Runs a command, keeping at most 64 KiB of each stream (a fork bomb's stderr is endless). */
async function run(vm: QemuVm, req: ExecRequest): Promise<Ran> {
  const t0 = performance.now();
  const h = vm.exec(req);
  let out = '';
  let err = '';
  h.stdout.setEncoding('utf8').on('data', (d: string) => {
    if (out.length < 65536) out += d;
  });
  h.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (err.length < 65536) err += d;
  });
  const r = await h.result;
  return { ...r, out, err, wallMs: performance.now() - t0 };
}

const sh = (vm: QemuVm, shell: string, timeoutMs = 30_000) => run(vm, { shell, timeoutMs });

function vmRssMb(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

interface HostWatch {
  maxLagMs: number;
  maxPingMs: number;
  pings: number;
  pingFailures: string[];
  maxRssMb: number;
}

/**
 * Measures the host while something runs in the guest: the event loop's lag (a 50 ms interval
 * that fires late), the agent's ping round trip (one at a time, every 250 ms) and QEMU's RSS.
 */
function watchHost(vm: QemuVm): { stop(): Promise<HostWatch> } {
  const w: HostWatch = { maxLagMs: 0, maxPingMs: 0, pings: 0, pingFailures: [], maxRssMb: 0 };
  let last = performance.now();
  const tick = setInterval(() => {
    const now = performance.now();
    w.maxLagMs = Math.max(w.maxLagMs, now - last - 50);
    last = now;
    w.maxRssMb = Math.max(w.maxRssMb, vmRssMb(vm.pid));
  }, 50);
  let running = true;
  const pinger = (async () => {
    while (running) {
      const t0 = performance.now();
      try {
        await vm.ping();
        w.pings++;
      } catch (e) {
        w.pingFailures.push((e as Error).message);
      }
      w.maxPingMs = Math.max(w.maxPingMs, performance.now() - t0);
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    async stop() {
      running = false;
      await pinger;
      clearInterval(tick);
      return w;
    },
  };
}

/** The host was not harmed and the agent kept answering. */
function expectHostFine(w: HostWatch, label: string): void {
  console.log(
    `${label}: host lag max ${Math.round(w.maxLagMs)} ms; ${w.pings} pings, max ${Math.round(w.maxPingMs)} ms; QEMU RSS max ${Math.round(w.maxRssMb)} MB`,
  );
  expect(w.maxLagMs).toBeLessThan(1000);
  expect(w.pingFailures).toEqual([]);
  expect(w.pings).toBeGreaterThan(0);
  // TCG is slow, and the guest is busy: a few seconds is still "answering".
  expect(w.maxPingMs).toBeLessThan(5000);
  expect(w.maxRssMb).toBeLessThan(MEMORY_MB + 300);
}

/**
 * The next command works, promptly. Right after a fork bomb's EXIT, ~2000 SIGKILLed processes
 * may still be exiting and take most of a TCG guest's CPU for a few seconds: allow 5 s there.
 */
async function expectNextExecWorks(vm: QemuVm, withinMs = 3000): Promise<void> {
  const r = await run(vm, { argv: ['echo', 'ok'], timeoutMs: 10_000 });
  expect(r.exitCode).toBe(0);
  expect(r.out).toBe('ok\n');
  expect(r.wallMs).toBeLessThan(withinMs);
}

/**
 * Processes in the commands' cgroup, read by the agent itself (a file read starts no process,
 * and does not compete with the commands for CPU).
 */
async function commandPids(vm: QemuVm): Promise<number> {
  return Number((await vm.readFile('/sys/fs/cgroup/paddock/pids.current')).toString().trim());
}

/**
 * Polls the commands' cgroup until no process is left; returns the largest count seen and when
 * (ms after t0) it became empty, or Infinity if not within limitMs of t0.
 */
async function waitAllGone(vm: QemuVm, t0: number, limitMs: number) {
  let peak = 0;
  for (;;) {
    const pids = await commandPids(vm);
    peak = Math.max(peak, pids);
    const at = performance.now() - t0;
    if (pids === 0) return { peak, goneMs: at };
    if (at > limitMs) return { peak, goneMs: Infinity };
    await new Promise((res) => setTimeout(res, 200));
  }
}

/**
 * Slack after a fork bomb's timeout, for TCG: SIGKILLed processes still have to exit, and ~2000
 * of them take a few seconds of emulated CPU; and the guest's clock (jiffies here) falls behind
 * the host's while the guest is that busy, so its timer fires late.
 */
const BOMB_SLACK_MS = 8000;

describe('resource limits in the guest (real VM)', () => {
  let sessionRoot: string;
  let vm: QemuVm;

  beforeAll(async () => {
    const image = await ensureTestImage();
    await mkdir(join(vmTestHome, 'test-sessions'), { recursive: true });
    sessionRoot = await mkdtemp(join(vmTestHome, 'test-sessions', 'limits-'));
    const backend = new QemuBackend();
    vm = (await backend.start({
      imageDir: image.dir,
      overlayPath: join(sessionRoot, 'disk.qcow2'),
      runDir: join(sessionRoot, 'run'),
      shares: [],
      cpus: 2,
      memoryMb: MEMORY_MB,
      accel: 'auto',
    })) as QemuVm;
  });

  afterAll(async () => {
    await vm?.stop();
    if (sessionRoot) await rm(sessionRoot, { recursive: true, force: true });
  });

  it('runs commands under cgroup limits it reports in HELLO', async () => {
    const limits = vm.hello?.limits;
    expect(limits).toBeTruthy();
    expect(limits!.cgroup).toBe('/sys/fs/cgroup/paddock');
    // RAM minus a reserve for the agent and the kernel.
    expect(limits!.memoryMaxBytes).toBeGreaterThan(200 * 2 ** 20);
    expect(limits!.memoryMaxBytes).toBeLessThan((MEMORY_MB - 90) * 2 ** 20);
    expect(limits!.pidsMax).toBe(1024);
    const r = await sh(vm, 'cat /proc/self/cgroup; cat /sys/fs/cgroup/paddock/memory.max');
    expect(r.exitCode).toBe(0);
    const [cg, max] = r.out.trim().split('\n');
    expect(cg).toMatch(/^0::\/paddock\/x\d+$/);
    expect(Number(max)).toBe(limits!.memoryMaxBytes);
  });

  it('ends `sleep 60` at a 2 s timeout with 124 in under 5 s', async () => {
    const r = await run(vm, { argv: ['sleep', '60'], timeoutMs: 2000 });
    console.log(`sleep 60, timeout 2 s: exit ${r.exitCode} after ${Math.round(r.wallMs)} ms`);
    expect(r.exitCode).toBe(124);
    expect(r.timedOut).toBe(true);
    expect(r.wallMs).toBeLessThan(5000);
    await expectNextExecWorks(vm);
  });

  it('kills what a timed-out command started in a new session (setsid) too', async () => {
    const r = await sh(
      vm,
      'setsid sh -c "sleep 300" </dev/null >/dev/null 2>&1 & echo started; sleep 60',
      2000,
    );
    expect(r.exitCode).toBe(124);
    expect(r.out).toBe('started\n');
    // cgroup.kill is immediate, but the processes need a moment to exit.
    let left = '';
    for (let i = 0; i < 20; i++) {
      left = (await sh(vm, 'pgrep -x sleep || true')).out;
      if (left === '') break;
      await new Promise((res) => setTimeout(res, 100));
    }
    expect(left).toBe('');
  });

  it('survives a fork bomb: it ends by its timeout, the agent answers, the next exec works', async () => {
    const w = watchHost(vm);
    const t0 = performance.now();
    // bash returns at once and leaves the bomb running in the background; the command's
    // timeout bounds everything it started, so the bomb dies at 10 s.
    const r = await run(vm, { argv: ['bash', '-c', ':(){ :|:& };:'], timeoutMs: 10_000 });
    console.log(`fork bomb: exit ${r.exitCode} after ${Math.round(r.wallMs)} ms`);
    expect(r.wallMs).toBeLessThan(15_000);
    // While it runs, commands still start (a command does not need to fork to echo).
    const during = await run(vm, { argv: ['echo', 'ok'], timeoutMs: 10_000 });
    expect(during.out).toBe('ok\n');
    const { peak, goneMs } = await waitAllGone(vm, t0, 30_000);
    console.log(`fork bomb: peak ${peak} processes; all gone after ${Math.round(goneMs)} ms`);
    expect(peak).toBeGreaterThan(100); // it did run
    expect(peak).toBeLessThanOrEqual(1024);
    expect(goneMs).toBeLessThan(10_000 + BOMB_SLACK_MS);
    expectHostFine(await w.stop(), 'fork bomb');
    await expectNextExecWorks(vm);
  });

  it('ends a fork bomb that keeps its shell alive with 124 at its timeout', async () => {
    const w = watchHost(vm);
    const t0 = performance.now();
    const r = await run(vm, { argv: ['bash', '-c', ':(){ :|:& };:; sleep 60'], timeoutMs: 8000 });
    console.log(`fork bomb + sleep: exit ${r.exitCode} after ${Math.round(r.wallMs)} ms`);
    expect(r.exitCode).toBe(124);
    expect(r.timedOut).toBe(true);
    // The host's own deadline (timeoutMs + 500 ms) bounds this whatever the guest's clock does.
    expect(r.wallMs).toBeLessThan(8000 + 2000);
    await expectNextExecWorks(vm, 5000);
    const { peak, goneMs } = await waitAllGone(vm, t0, 30_000);
    console.log(
      `fork bomb + sleep: ${peak} processes after EXIT; all gone after ${Math.round(goneMs)} ms`,
    );
    expect(goneMs).toBeLessThan(8000 + BOMB_SLACK_MS);
    expectHostFine(await w.stop(), 'fork bomb + sleep');
  });

  it('refuses a 10 GB allocation without harm', async () => {
    const w = watchHost(vm);
    const r = await run(vm, {
      argv: ['python3', '-c', 'b = bytearray(10 * 1024**3)'],
      timeoutMs: 60_000,
    });
    console.log(`10 GB bytearray: exit ${r.exitCode} after ${Math.round(r.wallMs)} ms`);
    expect(r.exitCode).not.toBe(0);
    expect(r.timedOut).toBe(false);
    expectHostFine(await w.stop(), '10 GB bytearray');
    await expectNextExecWorks(vm);
  });

  it('OOM-kills a command that keeps allocating (137, oomKilled) and the next exec works', async () => {
    const w = watchHost(vm);
    const r = await run(vm, {
      argv: ['python3', '-c', 'b = []\nwhile True: b.append(b"x" * (100 << 20))'],
      timeoutMs: 60_000,
    });
    console.log(`100 MB chunks: exit ${r.exitCode} after ${Math.round(r.wallMs)} ms`);
    expect(r.exitCode).toBe(137);
    expect(r.signal).toBe('SIGKILL');
    expect(r.oomKilled).toBe(true);
    expect(r.timedOut).toBe(false);
    expectHostFine(await w.stop(), '100 MB chunks');
    await expectNextExecWorks(vm);
  });

  it('fills the disk: the command fails with ENOSPC, then rm and the next exec work', async () => {
    const w = watchHost(vm);
    const r = await sh(vm, 'dd if=/dev/zero of=/fill bs=1M', 170_000);
    console.log(`dd until full: exit ${r.exitCode} after ${Math.round(r.wallMs)} ms`);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode).not.toBe(0);
    expect(r.err).toMatch(/No space left on device/);
    expectHostFine(await w.stop(), 'disk full');
    const again = await sh(vm, 'rm /fill; echo ok');
    expect(again.out).toBe('ok\n');
    expect(again.exitCode).toBe(0);
  }, 240_000);
});
