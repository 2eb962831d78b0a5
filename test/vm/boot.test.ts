import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VmGoneError, type ExecHandle, type Vm, type VmSpec } from '../../src/main/vm/backend.js';
import { packageRoot as repoRoot } from '../../src/main/platform/app-paths.js';
import { imageVersion, type ImageInfo } from '../../src/main/vm/image.js';
import { ensureTestImage, vmTestHome } from '../helpers/vm-image.js';
import { QemuBackend, type QemuVm } from '../../src/main/vm/qemu/backend.js';

// Reruns reuse the image built in the VM tests' shared data folder.
const dataDir = vmTestHome;

async function run(vm: Vm, shell: string): Promise<{ out: string; err: string; code: number }> {
  const h: ExecHandle = vm.exec({ shell, timeoutMs: 60_000 });
  let out = '';
  let err = '';
  h.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  h.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const r = await h.result;
  return { out, err, code: r.exitCode };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** True when this CPU cannot run a KVM guest (no vmx/svm), as on the nested-PVM build machines. */
function hostLacksVirtExtensions(): boolean {
  return !/\b(vmx|svm)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
}

describe('QEMU backend (real VM)', () => {
  let image: ImageInfo;
  let sessionRoot: string;
  let rwDir: string;
  let roDir: string;
  let backend: QemuBackend;
  let vm: QemuVm;
  let spec: VmSpec;
  const logs: string[] = [];

  beforeAll(async () => {
    image = await ensureTestImage();
    await mkdir(join(dataDir, 'test-sessions'), { recursive: true });
    sessionRoot = await mkdtemp(join(dataDir, 'test-sessions', 's-'));
    rwDir = join(sessionRoot, 'work');
    roDir = join(sessionRoot, 'ref');
    await mkdir(rwDir);
    await mkdir(roDir);
    await writeFile(join(roDir, 'keep.txt'), 'original\n');
    backend = new QemuBackend({ log: (l) => logs.push(l) });
    spec = {
      imageDir: image.dir,
      overlayPath: join(sessionRoot, 'disk.qcow2'),
      runDir: join(sessionRoot, 'run'),
      shares: [
        { hostPath: rwDir, name: 'work', readOnly: false },
        { hostPath: roDir, name: 'ref', readOnly: true },
      ],
      cpus: 2,
      memoryMb: 1024,
      accel: 'auto',
    };
  });

  afterAll(async () => {
    await vm?.stop();
    if (sessionRoot) await rm(sessionRoot, { recursive: true, force: true });
    console.log(logs.join('\n'));
  });

  it('the recipe and image.ts agree on the image version', async () => {
    const sh = spawnSync('bash', [join(repoRoot(), 'vm-images', 'build.sh'), '--print-version'], {
      encoding: 'utf8',
    });
    expect(sh.status).toBe(0);
    expect(sh.stdout.trim()).toBe(await imageVersion());
  });

  it('the image has the agent and the promised tools', () => {
    expect(image.manifest.agent).toBe(true);
    for (const p of [
      'bash',
      'coreutils',
      'python3',
      'nodejs',
      'git',
      'curl',
      'ca-certificates',
      'ripgrep',
      'jq',
      'sqlite3',
      'zip',
      'unzip',
      'file',
    ]) {
      expect(image.manifest.packages, p).toHaveProperty(p);
    }
  });

  it('boots to agent-ready (auto picks TCG where KVM cannot run Debian kernels)', async () => {
    const t0 = Date.now();
    vm = (await backend.start(spec)) as QemuVm;
    const ms = Date.now() - t0;
    console.log(`boot to agent-ready: ${ms} ms (${vm.accel}); ${backend.accelProbe?.reason}`);
    if (hostLacksVirtExtensions()) expect(vm.accel).toBe('tcg');
    expect(backend.accelProbe?.accel).toBe(vm.accel);
    expect(vm.timings.bootToReadyMs).toBeGreaterThan(0);
    expect(existsSync(spec.overlayPath)).toBe(true);
  });

  it('runs uname -a through the guest agent', async () => {
    const r = await run(vm, 'uname -a');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Linux paddock .*x86_64/);
    expect(await vm.ping()).toBeGreaterThanOrEqual(0);
  });

  it('has no network interface but loopback', async () => {
    const r = await run(vm, 'ls /sys/class/net');
    expect(r.out.trim().split(/\s+/)).toEqual(['lo']);
  });

  it('a file written in a read-write share appears on the host', async () => {
    const r = await run(
      vm,
      'echo "from the guest" > /mnt/work/hello.txt && cat /mnt/work/hello.txt',
    );
    expect(r.code).toBe(0);
    expect(await readFile(join(rwDir, 'hello.txt'), 'utf8')).toBe('from the guest\n');
    await writeFile(join(rwDir, 'from-host.txt'), 'host says hi\n');
    expect((await run(vm, 'cat /mnt/work/from-host.txt')).out).toBe('host says hi\n');
  });

  it('a read-only share refuses writes (EROFS) and the host file stays unchanged', async () => {
    const overwrite = await run(vm, 'echo changed > /mnt/ref/keep.txt');
    expect(overwrite.code).not.toBe(0);
    expect(overwrite.err).toMatch(/Read-only file system/);
    const create = await run(vm, 'touch /mnt/ref/new.txt');
    expect(create.err).toMatch(/Read-only file system/);
    const remove = await run(vm, 'rm -f /mnt/ref/keep.txt');
    expect(remove.err).toMatch(/Read-only file system/);
    // The agent's own file API goes through the same kernel and QEMU checks.
    await expect(vm.writeFile('/mnt/ref/keep.txt', Buffer.from('changed'))).rejects.toThrow();
    expect(await readFile(join(roDir, 'keep.txt'), 'utf8')).toBe('original\n');
    expect(existsSync(join(roDir, 'new.txt'))).toBe(false);
  });

  it('a symlink made in the guest is not a host symlink (mapped-xattr)', async () => {
    const r = await run(vm, 'ln -s /etc/passwd /mnt/work/evil && readlink /mnt/work/evil');
    expect(r.out.trim()).toBe('/etc/passwd');
    const st = await lstat(join(rwDir, 'evil'));
    expect(st.isSymbolicLink()).toBe(false);
    expect(st.isFile()).toBe(true);
  });

  it('checkpoint and restore bring the session disk back', async () => {
    await run(vm, 'echo one > /root/one.txt');
    await vm.checkpoint('c1');
    await run(vm, 'echo two > /root/two.txt; rm /root/one.txt');
    await vm.restore('c1');
    const r = await run(vm, 'ls /root');
    expect(r.out.split(/\s+/)).toContain('one.txt');
    expect(r.out).not.toContain('two.txt');
    // Shares stay as they were (they are host folders, not part of the checkpoint).
    expect((await run(vm, 'cat /mnt/work/hello.txt')).out).toBe('from the guest\n');
    console.log(
      `checkpoint ${vm.timings.lastCheckpointMs} ms, restore ${vm.timings.lastRestoreMs} ms`,
    );
  });

  it('stop removes the run folder and ends QEMU', async () => {
    const pid = vm.pid!;
    expect(alive(pid)).toBe(true);
    await vm.stop();
    const how = await vm.exited;
    expect(how.signal === null || how.signal === 'SIGKILL').toBe(true);
    expect(existsSync(spec.runDir)).toBe(false);
    expect(alive(pid)).toBe(false);
    await expect(vm.ping()).rejects.toBeInstanceOf(VmGoneError);
  });

  it('a VM dying mid-command fails pending operations with VmGoneError', async () => {
    const spec2: VmSpec = {
      ...spec,
      overlayPath: join(sessionRoot, 'disk2.qcow2'),
      runDir: join(sessionRoot, 'run2'),
      shares: [],
    };
    const vm2 = (await backend.start(spec2)) as QemuVm;
    try {
      const pending = vm2.exec({ argv: ['sleep', '60'] });
      pending.stdout.resume();
      pending.stderr.resume();
      // Guest kernel panic: panic=-1 reboots, -no-reboot turns that into QEMU exiting.
      const crash = vm2.exec({ shell: 'echo c > /proc/sysrq-trigger' });
      crash.stdout.resume();
      crash.stderr.resume();
      await expect(pending.result).rejects.toBeInstanceOf(VmGoneError);
      await vm2.exited;
      await expect(vm2.ping()).rejects.toBeInstanceOf(VmGoneError);
      const late = vm2.exec({ argv: ['true'] });
      await expect(late.result).rejects.toBeInstanceOf(VmGoneError);
      expect(existsSync(spec2.runDir)).toBe(false);
    } finally {
      await vm2.stop();
    }
  });
});
