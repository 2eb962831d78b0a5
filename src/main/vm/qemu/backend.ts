import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Duplex } from 'node:stream';
import { promisify } from 'node:util';
import { VmGoneError, type Vm, type VmBackend, type VmSpec } from '../backend.js';
import { GuestClient } from '../guest/client.js';
import type { Hello } from '../guest/protocol.js';
import { probeAccel, type AccelProbe } from './accel.js';
import { buildQemuArgs, qemuOptValue } from './args.js';
import { CONSOLE_LOG_MAX_BYTES, ConsoleLog } from './console-log.js';
import { QmpClient } from './qmp.js';
import { bootWithTunnels, checkpointsDir } from '../guest-vm.js';
import { connectUnix, LifecycleVm, makeRunDirs, removeSockDir, startVm } from '../vm-lifecycle.js';
import type { InstanceDriver, PausableDisk, VmExit } from '../vm-lifecycle.js';
import { qemuCommand } from '../mount-namespace.js';
import { readOnlyBindsFor } from '../protected-paths.js';

const execFileP = promisify(execFile);

/** The VM did not come up; the message carries the guest console's last lines. */
export class VmBootError extends Error {
  readonly code = 'VM_BOOT_FAILED';
  constructor(
    message: string,
    readonly consoleTail: string,
  ) {
    super(consoleTail ? `${message}\n--- guest console ---\n${consoleTail}` : message);
    this.name = 'VmBootError';
  }
}

export interface QemuBackendOptions {
  /** Default: qemu-system-x86_64 from PATH. */
  qemuBinary?: string;
  /** Default: qemu-img from PATH. */
  qemuImgBinary?: string;
  /** Where the KVM probe's answer is kept; default: the parent of spec.imageDir (images/). */
  probeCacheDir?: string;
  /** Boot to agent-ready deadline. Default 30 s with KVM, 120 s with TCG (a loaded 2-core host). */
  bootTimeoutMs?: number;
  /** After QMP quit, how long to wait before SIGKILL. Default 3 s. */
  stopGraceMs?: number;
  /** Diagnostic lines (boot times, restarts). */
  log?: (line: string) => void;
  /** Cap on a VM's console log files together (console.log + console.log.1). Default 4 MiB. */
  consoleLogMaxBytes?: number;
}

/** Timings of a VM's last boot, checkpoint and restore, for benchmarks and `paddock doctor`. */
export interface VmTimings {
  /** From spawning QEMU to the agent's HELLO. */
  bootToReadyMs: number;
  lastCheckpointMs?: number;
  /** Stop + disk copy + boot to HELLO. */
  lastRestoreMs?: number;
}

// Unix socket paths are limited to 108 bytes (sun_path); leave room.
const MAX_SOCK_PATH = 100;

let setprivAvailable: boolean | undefined;
function hasSetprivPdeathsig(): boolean {
  if (setprivAvailable === undefined) {
    setprivAvailable = ['/usr/bin/setpriv', '/bin/setpriv'].some((p) => existsSync(p));
  }
  return setprivAvailable;
}

function tailLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

/**
 * The QEMU process behind an instance: our child, or (for a warm VM left by another `paddock`
 * process) a process we only know by pid.
 */
interface QemuProc {
  readonly pid: number | undefined;
  kill(signal: NodeJS.Signals): void;
}

/** One QEMU process and its channels. A Vm has one at a time (restore boots a new one). */
interface Instance {
  proc: QemuProc;
  qmp: QmpClient;
  client: GuestClient;
  sock: Socket;
  sockDir: string;
  ownSockDir: boolean;
  consoleLog: string;
  /** The capped copy of the serial console, if QEMU serves it on a socket. */
  console: ConsoleLog | null;
  exited: Promise<VmExit>;
  bootToReadyMs: number;
  hello: Hello;
}

interface BootContext {
  spec: VmSpec;
  accel: 'kvm' | 'tcg';
  qemuBinary: string;
  bootTimeoutMs: number;
  onTunnel: (stream: Duplex) => void;
  consoleLogMaxBytes: number;
}

/** Where a VM's sockets and console log are, and the QEMU argv that uses them. */
interface QemuLayout {
  runDir: string;
  sockDir: string;
  ownSockDir: boolean;
  agentSocket: string;
  qmpSocket: string;
  consoleLog: string;
  /** QEMU serves the serial console here (absent for a warm VM started by an older version). */
  consoleSocket?: string;
  args: string[];
}

async function prepareLayout(spec: VmSpec, accel: 'kvm' | 'tcg'): Promise<QemuLayout> {
  // Absolute paths throughout: QEMU runs with runDir as its working directory.
  const { runDir, sockDir, ownSockDir } = await makeRunDirs(spec, MAX_SOCK_PATH);
  const agentSocket = join(sockDir, 'agent.sock');
  const qmpSocket = join(sockDir, 'qmp.sock');
  const consoleLog = join(runDir, 'console.log');
  const consoleSocket = join(sockDir, 'console.sock');
  for (const p of [agentSocket, qmpSocket, consoleSocket, consoleLog, `${consoleLog}.1`])
    await unlink(p).catch(() => {});

  const args = buildQemuArgs({
    kernel: resolvePath(spec.imageDir, 'vmlinux'),
    initrd: resolvePath(spec.imageDir, 'initrd.img'),
    overlay: resolvePath(spec.overlayPath),
    shares: spec.shares.map((s) => ({ ...s, hostPath: resolvePath(s.hostPath) })),
    cpus: spec.cpus,
    memoryMb: spec.memoryMb,
    accel,
    consoleLog,
    consoleSocket,
    agentSocket,
    qmpSocket,
    hostTimeSec: Date.now() / 1000,
    tscKhz: hostTscKhz(),
  });
  return { runDir, sockDir, ownSockDir, agentSocket, qmpSocket, consoleLog, consoleSocket, args };
}

async function bootInstance(ctx: BootContext): Promise<Instance> {
  const layout = await prepareLayout(ctx.spec, ctx.accel);
  const { runDir, args } = layout;

  // SECURITY/robustness: setpriv --pdeathsig makes the kernel kill QEMU if this process dies,
  // so a crashed host never leaves a VM (with the person's folders mounted) running.
  // SECURITY: files host tools run (.git, editor tasks) in read-write grants are read-only
  // binds in QEMU's own mount namespace (protected-paths.ts); it throws rather than start without.
  let cmd: string;
  let argv: string[];
  try {
    ({ command: cmd, args: argv } = qemuCommand({
      qemu: ctx.qemuBinary,
      args,
      readOnly: await readOnlyBindsFor(ctx.spec.shares),
      pdeathsig: hasSetprivPdeathsig(),
    }));
  } catch (e) {
    await removeSockDir(layout);
    throw e;
  }
  const t0 = performance.now();
  const child = spawn(cmd, argv, {
    cwd: runDir,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const st = { text: '' };
  child
    .stderr!.setEncoding('utf8')
    .on('data', (d: string) => (st.text = (st.text + d).slice(-4000)));
  const err: { spawn: NodeJS.ErrnoException | null } = { spawn: null };
  const exited = new Promise<VmExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (e) => {
      err.spawn = e;
      resolve({ code: null, signal: null });
    });
  });
  return connectInstance({
    layout,
    proc: { pid: child.pid, kill: (sig) => child.kill(sig) },
    exited,
    stderr: () => st.text,
    spawnError: () => err.spawn,
    qemuBinary: ctx.qemuBinary,
    bootTimeoutMs: ctx.bootTimeoutMs,
    onTunnel: ctx.onTunnel,
    consoleLogMaxBytes: ctx.consoleLogMaxBytes,
    t0,
  });
}

interface ConnectContext {
  layout: QemuLayout;
  proc: QemuProc;
  exited: Promise<VmExit>;
  stderr: () => string;
  spawnError: () => NodeJS.ErrnoException | null;
  qemuBinary: string;
  bootTimeoutMs: number;
  onTunnel: (stream: Duplex) => void;
  consoleLogMaxBytes: number;
  /** When QEMU was started (performance.now()), for bootToReadyMs. */
  t0: number;
}

/** Connects to a started QEMU's agent and QMP sockets and waits for the agent's HELLO. */
async function connectInstance(ctx: ConnectContext): Promise<Instance> {
  const { exited, t0 } = ctx;
  const { sockDir, ownSockDir, agentSocket, qmpSocket, consoleLog, consoleSocket } = ctx.layout;
  let hasExited = false;
  void exited.then(() => (hasExited = true));

  // SECURITY: the console is read into a capped log; QEMU never writes a host file for it.
  const serial = consoleSocket ? new ConsoleLog(consoleLog, ctx.consoleLogMaxBytes) : null;
  const consoleText = async (): Promise<string> =>
    serial ? serial.text() : await readFile(consoleLog, 'utf8').catch(() => '');
  const closers: (() => void)[] = [];
  if (serial) closers.push(() => serial.close());
  const failBoot = async (why: string): Promise<never> => {
    // Let the last console lines (PADDOCK-FAIL) arrive before the reader is closed.
    if (serial && hasExited) await new Promise((r) => setTimeout(r, 50));
    const text = await consoleText();
    for (const close of closers) close();
    if (!hasExited) ctx.proc.kill('SIGKILL');
    await exited;
    await removeSockDir(ctx.layout);
    const se = ctx.spawnError();
    const stderr = ctx.stderr();
    if (se) {
      throw new VmBootError(
        se.code === 'ENOENT'
          ? `QEMU is not installed (${ctx.qemuBinary} not found): apt-get install --no-install-recommends qemu-system-x86 qemu-utils`
          : `Could not start QEMU: ${se.message}`,
        '',
      );
    }
    const fail = /PADDOCK-FAIL (.*)/.exec(text);
    const err = stderr.trim() ? ` QEMU said: ${tailLines(stderr, 3)}` : '';
    throw new VmBootError(
      `The sandbox VM did not start: ${fail ? fail[1] : why}.${err}`,
      tailLines(text, 15),
    );
  };

  const deadline = Date.now() + ctx.bootTimeoutMs;
  // QEMU creates its listening sockets within milliseconds; retry until then.
  const connectRetry = async (path: string): Promise<Socket> => {
    for (;;) {
      if (hasExited) return failBoot('QEMU exited during start-up');
      if (Date.now() > deadline) return failBoot(`no socket ${path}`);
      try {
        return await connectUnix(path);
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  };
  // The console first: what the guest prints before someone listens is lost.
  if (serial && !(await serial.attach(consoleSocket!, () => !hasExited && Date.now() < deadline)))
    return failBoot(`no socket ${consoleSocket}`);
  const sock = await connectRetry(agentSocket);
  const client = new GuestClient(sock);
  client.onTunnel(ctx.onTunnel);
  closers.push(
    () => client.close(),
    () => sock.destroy(),
  );

  let qmp: QmpClient;
  for (;;) {
    if (hasExited) return failBoot('QEMU exited during start-up');
    try {
      qmp = await QmpClient.connect(qmpSocket, Math.max(1000, deadline - Date.now()));
      const q = qmp;
      closers.push(() => q.close());
      break;
    } catch (e) {
      if (Date.now() > deadline) return failBoot(`QMP did not answer (${(e as Error).message})`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  let hello: Hello;
  try {
    hello = await Promise.race([
      client.hello(Math.max(1, deadline - Date.now())),
      exited.then(() => {
        throw new Error('QEMU exited before the guest agent answered');
      }),
    ]);
  } catch (e) {
    return failBoot((e as Error).message);
  }
  return {
    proc: ctx.proc,
    qmp,
    client,
    sock,
    sockDir,
    ownSockDir,
    consoleLog,
    console: serial,
    exited,
    bootToReadyMs: Math.round(performance.now() - t0),
    hello,
  };
}

async function stopInstance(inst: Instance, graceMs: number): Promise<void> {
  let done = false;
  void inst.exited.then(() => (done = true));
  if (!done) {
    // `quit` exits at once and closes the disk cleanly; the guest's state is not needed any more
    // (a checkpoint syncs the guest first). system_powerdown would need ACPI handling in the guest.
    await inst.qmp.execute('quit', undefined, graceMs).catch(() => {});
    const timer = setTimeout(() => {
      if (!done) inst.proc.kill('SIGKILL');
    }, graceMs);
    await inst.exited;
    clearTimeout(timer);
  }
  inst.qmp.close();
  inst.client.close();
  inst.sock.destroy();
  inst.console?.close();
  await removeSockDir(inst);
}

export { checkpointsDir } from '../guest-vm.js';

/** A running QEMU VM; survives restore (which boots a fresh QEMU on the restored disk). */
class QemuVm extends LifecycleVm<Instance, QemuBackend> implements Vm {
  readonly timings: VmTimings;
  protected readonly checkpointExt = 'qcow2';
  /** QEMU pauses (which drains and flushes the qcow2 layer) while the layer is copied. */
  private readonly disk: PausableDisk<Instance> = {
    pause: (inst) => inst.qmp.execute('stop'),
    resume: (inst) => inst.qmp.execute('cont').catch(() => {}),
    copy: copyLayer,
  };

  constructor(
    spec: VmSpec,
    readonly accel: 'kvm' | 'tcg',
    backend: QemuBackend,
    inst: Instance,
  ) {
    super({ ...spec, accel }, backend, inst);
    this.timings = { bootToReadyMs: inst.bootToReadyMs };
  }

  /** The current QEMU process id (undefined between a restore's stop and boot, and after exit). */
  get pid(): number | undefined {
    return this.instance?.proc.pid;
  }

  /** What the guest agent said in its last HELLO (uname, agent version). */
  get hello(): Hello | null {
    return this.instance?.hello ?? null;
  }

  /**
   * Writes the guest's whole memory to `file` (QMP dump-guest-memory, ELF): for looking at what
   * the guest holds (the tests search it for secrets and the proxy CA's key). The path is QEMU's,
   * so it must be writable in QEMU's mount namespace.
   */
  async dumpMemory(file: string, timeoutMs = 120_000): Promise<void> {
    const inst = this.instance;
    if (!inst) throw new VmGoneError('The VM is not running.');
    await inst.qmp.execute(
      'dump-guest-memory',
      { paging: false, protocol: `file:${file}` },
      timeoutMs,
    );
  }

  protected override closeChannels(inst: Instance): void {
    super.closeChannels(inst);
    inst.qmp.close();
    inst.console?.close();
  }

  protected async lost(inst: Instance, how: VmExit): Promise<void> {
    this.backend.log(`VM ${this.id} exited unexpectedly (${how.signal ?? 'code ' + how.code})`);
    await removeSockDir(inst);
    await rm(this.spec.runDir, { recursive: true, force: true });
  }

  /** Also removes runDir, which the new instance made again after stop() had removed it. */
  protected override async stoppedWhileBooting(inst: Instance): Promise<VmExit> {
    const how = await this.halt(inst);
    await rm(this.spec.runDir, { recursive: true, force: true });
    return how;
  }

  /**
   * Saves the session's disk layer under `name`: the guest flushes its page cache (sync), QEMU
   * pauses, the layer is copied, QEMU continues. Memory is not saved: 9p shares block QEMU
   * migration while mounted, and a fresh boot on the restored disk is correct and only a few
   * seconds.
   */
  async checkpoint(name: string): Promise<void> {
    const t0 = performance.now();
    await this.checkpointDisk(name, this.disk);
    this.timings.lastCheckpointMs = Math.round(performance.now() - t0);
    this.backend.log(`VM ${this.id} checkpoint ${name} in ${this.timings.lastCheckpointMs} ms`);
  }

  /**
   * Puts the session's disk back to checkpoint `name` and boots a fresh VM on it (same shares,
   * same runDir). Commands running at that moment fail with VmGoneError.
   */
  async restore(name: string): Promise<void> {
    const t0 = performance.now();
    const inst = await this.restoreDisk(name, this.disk.copy);
    this.timings.bootToReadyMs = inst.bootToReadyMs;
    this.timings.lastRestoreMs = Math.round(performance.now() - t0);
    this.backend.log(`VM ${this.id} restored ${name} in ${this.timings.lastRestoreMs} ms`);
  }

  /**
   * Moves the running VM's writable layer (and its checkpoints) to `overlayPath`, so a warm VM
   * handed to a session keeps its layer in the session's folder. QEMU holds the file open, so a
   * rename does not disturb it; a move across filesystems fails (EXDEV) and nothing changes.
   */
  async moveLayer(overlayPath: string): Promise<void> {
    const from = resolvePath(this.spec.overlayPath);
    const to = resolvePath(overlayPath);
    if (from === to) return;
    if (!this.instance || this.stopping) throw new VmGoneError();
    await mkdir(dirname(to), { recursive: true });
    if (existsSync(to)) throw new Error(`A session layer already exists at ${to}`);
    await rename(from, to);
    await rename(checkpointsDir(from), checkpointsDir(to)).catch(() => {});
    this.spec = { ...this.spec, overlayPath: to };
  }
}

/** A VM left running by {@link QemuBackend.startDetached}: what another process needs to attach. */
export interface DetachedVm {
  pid: number;
  accel: 'kvm' | 'tcg';
  /** The spec it was booted with (paths absolute, accel resolved). */
  spec: VmSpec;
  agentSocket: string;
  qmpSocket: string;
  sockDir: string;
  ownSockDir: boolean;
  consoleLog: string;
  /** QEMU serves the serial console here; whoever attaches reads it into consoleLog (capped). */
  consoleSocket?: string;
  /** Epoch ms. */
  startedAt: number;
}

/** Whether a process runs and is not a zombie (an orphan's zombie may wait for its reaper). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    if (process.platform === 'linux') return false;
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Whether `pid` is a QEMU listening on `agentSocket` (its command line names the socket).
 * SECURITY: guards every signal sent to a pid read from a file, which may have been reused.
 */
export function isQemuWithSocket(pid: number, agentSocket: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || !pidAlive(pid)) return false;
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((a) => a.includes(`path=${qemuOptValue(agentSocket)},`));
  } catch {
    return false;
  }
}

/** Resolves when a process that is not our child has exited (polled; it cannot be waited for). */
function foreignExit(pid: number): Promise<VmExit> {
  return new Promise((resolve) => {
    const timer = setInterval(() => {
      if (!pidAlive(pid)) {
        clearInterval(timer);
        resolve({ code: null, signal: null });
      }
    }, 100);
  });
}

/** Copies a qcow2 layer (reflink where the filesystem can, keeping holes). */
async function copyLayer(src: string, dest: string): Promise<void> {
  try {
    await execFileP('cp', ['--reflink=auto', '--sparse=always', src, dest]);
  } catch {
    await copyFile(src, dest);
  }
}

let tscKhzMemo: number | undefined;
/** The host CPU's clock in kHz from /proc/cpuinfo (the TSC runs at it on current x86). */
export function hostTscKhz(): number | undefined {
  if (tscKhzMemo !== undefined) return tscKhzMemo;
  try {
    const m = /^cpu MHz\s*:\s*([\d.]+)/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) tscKhzMemo = Math.round(Number(m[1]) * 1000);
  } catch {
    // not Linux, or no /proc: QEMU's default stands
  }
  return tscKhzMemo;
}

/** The Linux backend: QEMU `-M microvm`, KVM when a probe boot proves it works, else TCG. */
export class QemuBackend implements VmBackend, InstanceDriver<Instance> {
  readonly name = 'qemu' as const;
  readonly qemuBinary: string;
  readonly qemuImgBinary: string;
  readonly stopGraceMs: number;
  /** Cap on each VM's console log files together. */
  readonly consoleLogMaxBytes: number;
  private lastProbe: AccelProbe | null = null;

  constructor(private readonly opts: QemuBackendOptions = {}) {
    this.qemuBinary = opts.qemuBinary ?? 'qemu-system-x86_64';
    this.qemuImgBinary = opts.qemuImgBinary ?? 'qemu-img';
    this.stopGraceMs = opts.stopGraceMs ?? 3000;
    this.consoleLogMaxBytes = opts.consoleLogMaxBytes ?? CONSOLE_LOG_MAX_BYTES;
  }

  log(line: string): void {
    this.opts.log?.(line);
  }

  bootTimeout(accel: 'kvm' | 'tcg'): number {
    return this.opts.bootTimeoutMs ?? (accel === 'kvm' ? 30_000 : 120_000);
  }

  /** Which accelerator `auto` picks for this image, and why (for `paddock doctor`). */
  async probe(imageDir: string): Promise<AccelProbe> {
    const p = await probeAccel({
      qemuBinary: this.qemuBinary,
      kernel: join(imageDir, 'vmlinux'),
      initrd: join(imageDir, 'initrd.img'),
      cacheDir: this.opts.probeCacheDir ?? dirname(resolvePath(imageDir)),
    });
    this.lastProbe = p;
    return p;
  }

  /** The last probe's answer, if any. */
  get accelProbe(): AccelProbe | null {
    return this.lastProbe;
  }

  /** Creates the session's qcow2 layer over the read-only base unless it exists. */
  async ensureOverlay(spec: VmSpec): Promise<void> {
    const overlay = resolvePath(spec.overlayPath);
    if (existsSync(overlay)) return;
    await mkdir(dirname(overlay), { recursive: true });
    const tmp = `${overlay}.tmp-${randomBytes(3).toString('hex')}`;
    // The base stays read-only: every guest write lands in the overlay.
    await execFileP(this.qemuImgBinary, [
      'create',
      '-q',
      '-f',
      'qcow2',
      '-b',
      resolvePath(spec.imageDir, 'rootfs.img'),
      '-F',
      'raw',
      tmp,
    ]).catch((e: NodeJS.ErrnoException) => {
      throw new Error(
        e.code === 'ENOENT'
          ? `qemu-img is not installed: apt-get install --no-install-recommends qemu-utils`
          : `Could not create the session disk: ${e.message}`,
      );
    });
    await rename(tmp, overlay);
  }

  /**
   * Starts a VM that outlives this process (a warm VM for the next `paddock exec`): QEMU runs in
   * its own session without the parent-death signal, its stderr goes to a file, and nobody is
   * connected to its sockets until {@link attach}. Resolves once QEMU is listening; it is still
   * booting then (attach waits for the agent).
   */
  async startDetached(spec: VmSpec): Promise<DetachedVm> {
    const accel = spec.accel === 'auto' ? (await this.probe(spec.imageDir)).accel : spec.accel;
    await this.ensureOverlay(spec);
    const layout = await prepareLayout(spec, accel);
    const stderrPath = join(layout.runDir, 'qemu.stderr');
    const fd = openSync(stderrPath, 'w', 0o600);
    let child: ChildProcess;
    try {
      // Deliberately no setpriv --pdeathsig here: this QEMU must survive us. What ends it
      // instead: the claimer's stop, the claimer's watchdog, or the warm entry's expiry reaper.
      // SECURITY: the same read-only binds as bootInstance (protected-paths.ts).
      const q = qemuCommand({
        qemu: this.qemuBinary,
        args: layout.args,
        readOnly: await readOnlyBindsFor(spec.shares),
        pdeathsig: false,
      });
      child = spawn(q.command, q.args, {
        cwd: layout.runDir,
        detached: true,
        stdio: ['ignore', 'ignore', fd],
      });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } finally {
      closeSync(fd);
    }
    child.unref();
    const pid = child.pid!;
    const deadline = Date.now() + 5000;
    while (!existsSync(layout.agentSocket) || !existsSync(layout.qmpSocket)) {
      if (!pidAlive(pid) || Date.now() > deadline) {
        if (pidAlive(pid)) process.kill(pid, 'SIGKILL');
        const said = await readFile(stderrPath, 'utf8').catch(() => '');
        await rm(layout.runDir, { recursive: true, force: true });
        await removeSockDir(layout);
        throw new VmBootError(`The warm VM did not start. ${tailLines(said, 3)}`.trim(), '');
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    return {
      pid,
      accel,
      spec: {
        ...spec,
        accel,
        overlayPath: resolvePath(spec.overlayPath),
        runDir: layout.runDir,
      },
      agentSocket: layout.agentSocket,
      qmpSocket: layout.qmpSocket,
      sockDir: layout.sockDir,
      ownSockDir: layout.ownSockDir,
      consoleLog: layout.consoleLog,
      consoleSocket: layout.consoleSocket,
      startedAt: Date.now(),
    };
  }

  /**
   * Takes over a VM started by {@link startDetached} (possibly by another process): connects to
   * its sockets and waits for the guest agent. QEMU's socket chardevs accept a new client
   * whenever none is connected, and the guest agent reopens its port and answers a new HELLO.
   * Stopping the returned Vm ends that QEMU as usual.
   */
  async attach(d: DetachedVm): Promise<QemuVm> {
    // SECURITY: never signal a pid that is no longer this VM's QEMU (pids are reused).
    if (!isQemuWithSocket(d.pid, d.agentSocket)) {
      throw new VmGoneError('The warm VM is no longer running.');
    }
    const layout: QemuLayout = {
      runDir: d.spec.runDir,
      sockDir: d.sockDir,
      ownSockDir: d.ownSockDir,
      agentSocket: d.agentSocket,
      qmpSocket: d.qmpSocket,
      consoleLog: d.consoleLog,
      ...(d.consoleSocket ? { consoleSocket: d.consoleSocket } : {}),
      args: [],
    };
    const proc: QemuProc = {
      pid: d.pid,
      kill: (sig) => {
        if (isQemuWithSocket(d.pid, d.agentSocket)) process.kill(d.pid, sig);
      },
    };
    const vm = await bootWithTunnels(
      (onTunnel) =>
        connectInstance({
          layout,
          proc,
          exited: foreignExit(d.pid),
          stderr: () => {
            try {
              return readFileSync(join(d.spec.runDir, 'qemu.stderr'), 'utf8').slice(-4000);
            } catch {
              return '';
            }
          },
          spawnError: () => null,
          qemuBinary: this.qemuBinary,
          bootTimeoutMs: this.bootTimeout(d.accel),
          onTunnel,
          consoleLogMaxBytes: this.consoleLogMaxBytes,
          t0: performance.now(),
        }),
      (inst) => new QemuVm(d.spec, d.accel, this, inst),
    );
    this.log(`VM ${vm.id} attached to warm QEMU ${d.pid} in ${vm.timings.bootToReadyMs} ms`);
    return vm;
  }

  /** Boots one QEMU for `spec`, whose accelerator is resolved (not 'auto'). */
  boot(spec: VmSpec & { accel: 'kvm' | 'tcg' }, onTunnel: (s: Duplex) => void): Promise<Instance> {
    return bootInstance({
      spec,
      accel: spec.accel,
      qemuBinary: this.qemuBinary,
      bootTimeoutMs: this.bootTimeout(spec.accel),
      onTunnel,
      consoleLogMaxBytes: this.consoleLogMaxBytes,
    });
  }

  /** QMP quit, SIGKILL after the grace period; sockets removed. */
  async halt(inst: Instance): Promise<VmExit> {
    await stopInstance(inst, this.stopGraceMs);
    return inst.exited;
  }

  async start(spec: VmSpec): Promise<Vm> {
    const accel = spec.accel === 'auto' ? (await this.probe(spec.imageDir)).accel : spec.accel;
    await this.ensureOverlay(spec);
    const vm = await startVm(
      this,
      { ...spec, accel },
      (inst) => new QemuVm(spec, accel, this, inst),
    );
    this.log(`VM ${vm.id} ready in ${vm.timings.bootToReadyMs} ms (${accel})`);
    return vm;
  }
}

export type { QemuVm };
