import { spawn, execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeFileAtomic } from '../image.js';
import { buildQemuArgs } from './args.js';

const execFileP = promisify(execFile);

/** The outcome of probing KVM: which accelerator to use and why. */
export interface AccelProbe {
  accel: 'kvm' | 'tcg';
  /** A sentence for `paddock doctor`. */
  reason: string;
  /** How long the probe boot took (0 when answered from the cache or without booting). */
  probeMs: number;
  cached: boolean;
}

export interface ProbeOptions {
  qemuBinary: string;
  kernel: string;
  initrd: string;
  /** Where to keep the answer between processes (accel-probe.json); none = no file cache. */
  cacheDir?: string;
  /** How long the probe boot may take. A working KVM reaches /init in well under a second. */
  deadlineMs?: number;
}

const PROBE_MARKER = 'PADDOCK-PROBE-OK';
const memo = new Map<string, Promise<AccelProbe>>();
const versionMemo = new Map<string, Promise<string>>();

/** `qemu-system-x86_64 --version`, first line; part of the probe cache key. */
export function qemuVersion(qemuBinary: string): Promise<string> {
  let v = versionMemo.get(qemuBinary);
  if (!v) {
    v = execFileP(qemuBinary, ['--version']).then((r) => r.stdout.split('\n')[0]?.trim() ?? '');
    versionMemo.set(qemuBinary, v);
  }
  return v;
}

async function cacheKey(opts: ProbeOptions): Promise<string> {
  const k = await stat(opts.kernel);
  // KVM's usability depends on the host kernel, QEMU and the guest kernel.
  return [
    release(),
    await qemuVersion(opts.qemuBinary),
    opts.kernel,
    k.size,
    Math.floor(k.mtimeMs),
  ].join('|');
}

/**
 * Decides between KVM and TCG. `/dev/kvm` existing proves nothing (nested KVM can be present and
 * broken, as on our build machines), so KVM is tried with a real boot of the image's kernel and
 * initramfs to a marker within a short deadline; anything else means TCG. The answer is kept per
 * process and in `cacheDir/accel-probe.json`, keyed by host kernel, QEMU version and guest kernel.
 */
export function probeAccel(opts: ProbeOptions): Promise<AccelProbe> {
  const run = async (): Promise<AccelProbe> => {
    const key = await cacheKey(opts);
    const cacheFile = opts.cacheDir ? join(opts.cacheDir, 'accel-probe.json') : null;
    if (cacheFile) {
      try {
        const c = JSON.parse(await readFile(cacheFile, 'utf8')) as {
          key?: string;
          accel?: 'kvm' | 'tcg';
          reason?: string;
        };
        if (c.key === key && (c.accel === 'kvm' || c.accel === 'tcg')) {
          return { accel: c.accel, reason: c.reason ?? '', probeMs: 0, cached: true };
        }
      } catch {
        // no cache yet
      }
    }
    const result = await probeKvmBoot(opts);
    if (cacheFile) {
      await mkdir(opts.cacheDir!, { recursive: true });
      await writeFileAtomic(
        cacheFile,
        JSON.stringify({
          key,
          accel: result.accel,
          reason: result.reason,
          probedAt: new Date().toISOString(),
        }) + '\n',
      );
    }
    return result;
  };
  const memoKey = `${opts.qemuBinary}|${opts.kernel}|${opts.cacheDir ?? ''}`;
  let p = memo.get(memoKey);
  if (!p) {
    p = run();
    memo.set(memoKey, p);
    p.catch(() => memo.delete(memoKey));
  }
  return p;
}

/** Forgets the in-process answers (tests). */
export function resetAccelProbeMemo(): void {
  memo.clear();
}

async function probeKvmBoot(opts: ProbeOptions): Promise<AccelProbe> {
  const t0 = Date.now();
  try {
    await access('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch {
    return {
      accel: 'tcg',
      reason: 'KVM is not available (/dev/kvm missing or not accessible): using TCG.',
      probeMs: 0,
      cached: false,
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'paddock-kvm-probe-'));
  const consoleLog = join(dir, 'console.log');
  const args = buildQemuArgs({
    kernel: opts.kernel,
    initrd: opts.initrd,
    shares: [],
    cpus: 1,
    memoryMb: 256,
    accel: 'kvm',
    consoleLog,
    probe: true,
  });
  const deadline = opts.deadlineMs ?? 6000;
  try {
    const outcome = await new Promise<{ ok: boolean; detail: string }>((resolve) => {
      const child = spawn(opts.qemuBinary, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      let done = false;
      child.stderr
        .setEncoding('utf8')
        .on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));
      const finish = (ok: boolean, detail: string): void => {
        if (done) return;
        done = true;
        clearInterval(poll);
        clearTimeout(timer);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        resolve({ ok, detail });
      };
      const check = async (): Promise<boolean> => {
        const text = await readFile(consoleLog, 'utf8').catch(() => '');
        return text.includes(PROBE_MARKER);
      };
      const poll = setInterval(() => {
        void check().then((ok) => ok && finish(true, ''));
      }, 50);
      const timer = setTimeout(() => finish(false, `no marker within ${deadline} ms`), deadline);
      child.on('error', (e) => finish(false, e.message));
      child.on('exit', () => {
        // /init powers off right after the marker, so check the log once more.
        void check().then((ok) =>
          finish(
            ok,
            ok ? '' : stderr.trim().split('\n').slice(-1)[0] || 'QEMU exited before the marker',
          ),
        );
      });
    });
    const ms = Date.now() - t0;
    return outcome.ok
      ? { accel: 'kvm', reason: `KVM works (probe boot ${ms} ms).`, probeMs: ms, cached: false }
      : {
          accel: 'tcg',
          reason: `KVM is present but a test boot failed (${outcome.detail}): using TCG, which is several times slower.`,
          probeMs: ms,
          cached: false,
        };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
