import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { newId } from '../../../shared/ids.js';
import type { Vm } from '../backend.js';
import { warmKey, type WarmSource, type WarmSpec } from '../warm-pool.js';
import { qemuOptValue } from './args.js';
import { isQemuWithSocket, pidAlive, type DetachedVm, type QemuBackend } from './backend.js';

/** What `warm/<key>.<id>.json` holds: a detached QEMU waiting for the next process with that spec. */
export interface WarmRecord {
  version: 1;
  key: string;
  /** The spec the key was computed from (accel as asked, not as resolved). */
  warmSpec: WarmSpec;
  /** Folder holding the VM's layer, console log and (usually) sockets. */
  dir: string;
  createdAt: number;
  vm: DetachedVm;
  /** The shell that kills this VM when it expires unclaimed; the claimer ends it. */
  reaperPid?: number;
}

/** Options of {@link WarmHandoff}. */
export interface WarmHandoffOptions {
  backend: QemuBackend;
  /** The data folder; records and warm VMs live in `<dataDir>/warm`. */
  dataDir: string;
  /** A warm VM nobody claimed is killed after this long (default 10 min). */
  maxAgeMs?: number;
  log?: (line: string) => void;
}

const KEY_FILE = /^([0-9a-f]{24})\.warm_[a-z0-9]+\.json$/;
const CLAIMED_FILE = /^claimed-(\d+)-[0-9a-f]+\.json$/;

/**
 * The warm VM across processes, for the CLI: `paddock exec --keep-warm` leaves one VM booting
 * for its spec, detached from itself, recorded in `<dataDir>/warm/<key>.<id>.json`; the next
 * `paddock exec` with the same spec claims it by renaming the record (atomic: one claimer wins),
 * connects to its sockets and uses it. Nothing is left running unwatched: an unclaimed VM is
 * killed by a reaper when it expires, a claimed one by a watchdog when its claimer dies, and every
 * take() cleans records whose QEMU or claimer is gone.
 */
export class WarmHandoff implements WarmSource {
  readonly dir: string;
  private readonly maxAgeMs: number;

  constructor(private readonly opts: WarmHandoffOptions) {
    this.dir = path.join(opts.dataDir, 'warm');
    this.maxAgeMs = opts.maxAgeMs ?? 600_000;
  }

  private log(line: string): void {
    this.opts.log?.(`warm: ${line}`);
  }

  private async ensureDir(): Promise<void> {
    // SECURITY: records name pids this process will signal and VMs it will hand folders to;
    // only this user may write them.
    await fs.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fs.chmod(this.dir, 0o700);
  }

  /**
   * Boots one VM for `spec` in the background that outlives this process, unless a live one for
   * that spec is already recorded. Returns its record, or null if there was one already.
   */
  async leave(spec: WarmSpec): Promise<WarmRecord | null> {
    await this.ensureDir();
    await this.clean();
    const key = warmKey(spec);
    if ((await this.recordsFor(key)).length > 0) return null;
    const id = newId('warm');
    const dir = path.join(this.dir, id);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    let vm: DetachedVm;
    try {
      vm = await this.opts.backend.startDetached({
        ...spec,
        overlayPath: path.join(dir, 'overlay.qcow2'),
        runDir: dir,
      });
    } catch (e) {
      await fs.rm(dir, { recursive: true, force: true });
      throw e;
    }
    const record: WarmRecord = { version: 1, key, warmSpec: spec, dir, createdAt: Date.now(), vm };
    const file = path.join(this.dir, `${key}.${id}.json`);
    record.reaperPid = this.startReaper(record, file);
    const tmp = path.join(this.dir, `.${key}.${id}.tmp`);
    await fs.writeFile(tmp, JSON.stringify(record), { mode: 0o600 });
    await fs.rename(tmp, file);
    this.log(`left VM (QEMU ${vm.pid}) warm for ${key}`);
    return record;
  }

  /** Unclaimed record files for a key. */
  private async recordsFor(key: string): Promise<string[]> {
    const names = await fs.readdir(this.dir).catch(() => [] as string[]);
    return names.filter((n) => KEY_FILE.exec(n)?.[1] === key);
  }

  /**
   * An unclaimed warm VM must not outlive its welcome: a detached shell sleeps for the maximum
   * age, then claims the record (rename, so it never races a real claimer) and kills the QEMU.
   * SECURITY: paths and pids travel as arguments, never inside the script text.
   */
  private startReaper(record: WarmRecord, file: string): number | undefined {
    const expired = path.join(this.dir, `expired-${randomBytes(4).toString('hex')}.json`);
    const script = [
      'sleep "$1"',
      'mv "$2" "$3" 2>/dev/null || exit 0',
      'if grep -qF "$5" /proc/"$4"/cmdline 2>/dev/null; then kill -9 "$4"; sleep 1; fi',
      'rm -rf "$6" "$3"',
      '[ -n "$7" ] && rm -rf "$7"',
      'exit 0',
    ].join('\n');
    const child = spawn(
      'sh',
      [
        '-c',
        script,
        'paddock-warm-reaper',
        String(Math.ceil(this.maxAgeMs / 1000)),
        file,
        expired,
        String(record.vm.pid),
        `path=${qemuOptValue(record.vm.agentSocket)},`,
        record.dir,
        record.vm.ownSockDir ? record.vm.sockDir : '',
      ],
      { detached: true, stdio: 'ignore' },
    );
    child.on('error', () => undefined);
    child.unref();
    return child.pid;
  }

  /**
   * Claims and attaches the warm VM recorded for `spec`, or returns null (none, dead, expired, or
   * it would not answer). The returned VM is this process's: stop() ends its QEMU, and a
   * watchdog ends it if this process dies first.
   */
  async take(spec: WarmSpec): Promise<Vm | null> {
    if (!(await exists(this.dir))) return null;
    await this.clean();
    const key = warmKey(spec);
    const claimed = path.join(
      this.dir,
      `claimed-${process.pid}-${randomBytes(4).toString('hex')}.json`,
    );
    let won = false;
    for (const name of await this.recordsFor(key)) {
      try {
        await fs.rename(path.join(this.dir, name), claimed);
        won = true;
        break;
      } catch {
        // another process claimed it first
      }
    }
    if (!won) return null;
    let record: WarmRecord;
    try {
      record = JSON.parse(await fs.readFile(claimed, 'utf8')) as WarmRecord;
    } catch {
      await fs.rm(claimed, { force: true });
      return null;
    }
    // SECURITY: the record must describe exactly the spec asked for (same shares, same modes).
    const fits =
      record.version === 1 &&
      record.key === key &&
      warmKey(record.warmSpec) === key &&
      warmKey({ ...record.vm.spec, accel: record.warmSpec.accel }) === key;
    if (!fits || !isQemuWithSocket(record.vm.pid, record.vm.agentSocket)) {
      this.log(`warm record for ${key} is unusable; removed`);
      await killRecord(record).catch(() => undefined);
      await fs.rm(claimed, { force: true });
      return null;
    }
    // Claimed: the expiry reaper has nothing left to do (it would find no record anyway).
    if (record.reaperPid && cmdlineHas(record.reaperPid, 'paddock-warm-reaper', record.dir)) {
      process.kill(record.reaperPid, 'SIGKILL');
    }
    const watchdog = startWatchdog(record);
    const release = async (): Promise<void> => {
      stopWatchdog(watchdog);
      await fs.rm(claimed, { force: true });
    };
    let vm: Vm;
    try {
      vm = await this.opts.backend.attach(record.vm);
    } catch (e) {
      this.log(`could not attach to the warm VM: ${(e as Error).message.split('\n')[0]}`);
      await killRecord(record);
      await release();
      return null;
    }
    void vm.exited.then(release);
    this.log(
      `claimed warm VM (QEMU ${record.vm.pid}, warm for ${Date.now() - record.createdAt} ms)`,
    );
    return vm;
  }

  /**
   * Removes records whose QEMU died, unclaimed ones older than the maximum age (killing their
   * QEMU), and claimed ones whose claimer is gone. Safe to run from several processes at once:
   * each record is first claimed by a rename.
   */
  async clean(): Promise<void> {
    let names: string[];
    try {
      names = await fs.readdir(this.dir);
    } catch {
      return;
    }
    for (const name of names) {
      const file = path.join(this.dir, name);
      const claimedBy = CLAIMED_FILE.exec(name);
      if (!KEY_FILE.test(name) && !claimedBy) continue;
      let record: WarmRecord;
      try {
        record = JSON.parse(await fs.readFile(file, 'utf8')) as WarmRecord;
      } catch {
        continue; // being renamed or written; its owner handles it
      }
      const qemuAlive = isQemuWithSocket(record.vm.pid, record.vm.agentSocket);
      const stale = claimedBy
        ? !pidAlive(Number(claimedBy[1]))
        : !qemuAlive || Date.now() - record.createdAt > this.maxAgeMs;
      if (!stale) continue;
      const mine = path.join(this.dir, `expired-${randomBytes(4).toString('hex')}.json`);
      try {
        await fs.rename(file, mine);
      } catch {
        continue;
      }
      this.log(`removing stale warm VM record ${name}`);
      await killRecord(record);
      await fs.rm(mine, { force: true });
    }
  }
}

async function exists(p: string): Promise<boolean> {
  return fs.access(p).then(
    () => true,
    () => false,
  );
}

/** Whether a live process's argv contains every one of `parts` (guards signals to read pids). */
function cmdlineHas(pid: number, ...parts: string[]): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || !pidAlive(pid)) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return parts.every((p) => argv.includes(p));
  } catch {
    return false;
  }
}

/** Kills a record's QEMU (only if the pid is still that QEMU) and removes its files. */
async function killRecord(record: WarmRecord): Promise<void> {
  const { pid, agentSocket } = record.vm;
  if (isQemuWithSocket(pid, agentSocket)) {
    process.kill(pid, 'SIGKILL');
    for (let i = 0; i < 50 && pidAlive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  }
  await fs.rm(record.dir, { recursive: true, force: true });
  if (record.vm.ownSockDir) await fs.rm(record.vm.sockDir, { recursive: true, force: true });
}

/**
 * A claimed QEMU is not our child, so the kernel's parent-death signal cannot end it with us. A
 * detached shell holds the read end of a pipe whose write end only this process has: when this
 * process dies in any way, the read returns EOF and the shell kills the QEMU.
 */
function startWatchdog(record: WarmRecord): ChildProcess {
  const script =
    'cat >/dev/null; if grep -qF "$2" /proc/"$1"/cmdline 2>/dev/null; then kill -9 "$1"; fi';
  const child = spawn(
    'sh',
    [
      '-c',
      script,
      'paddock-warm-watchdog',
      String(record.vm.pid),
      `path=${qemuOptValue(record.vm.agentSocket)},`,
    ],
    { detached: true, stdio: ['pipe', 'ignore', 'ignore'] },
  );
  child.on('error', () => undefined);
  child.stdin!.on('error', () => undefined);
  child.unref();
  // The pipe must not keep this process alive on its own.
  (child.stdin as unknown as { unref?: () => void }).unref?.();
  return child;
}

/** Ends a watchdog without tripping it (its whole process group, before its pipe closes). */
function stopWatchdog(child: ChildProcess): void {
  if (child.pid !== undefined) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  child.stdin?.destroy();
}
