import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Duplex } from 'node:stream';
import { VmGoneError, type VmSpec } from './backend.js';
import type { GuestClient } from './guest/client.js';
import { bootWithTunnels, checkpointFile, GuestVm } from './guest-vm.js';

/** How a VM's host process ended (a process that could not be spawned: both null). */
export type VmExit = { code: number | null; signal: string | null };

/** One boot of a backend's VM: the guest channel and the exit of the process behind it. */
export interface LiveInstance {
  client: GuestClient;
  exited: Promise<VmExit>;
}

/** How a backend boots and ends one instance of a VM: what a {@link LifecycleVm} drives. */
export interface InstanceDriver<I> {
  /** Boots an instance for `spec`; the guest's tunnels go to `onTunnel`. */
  boot(spec: VmSpec, onTunnel: (stream: Duplex) => void): Promise<I>;
  /** Ends an instance and releases its channels; resolves with how its process exited. */
  halt(inst: I, spec: VmSpec): Promise<VmExit>;
}

/** Boots the backend's first instance for `spec` and wraps it in its Vm (tunnels held till then). */
export function startVm<I, V extends GuestVm>(
  backend: InstanceDriver<I>,
  spec: VmSpec,
  wrap: (inst: I) => V,
): Promise<V> {
  return bootWithTunnels((onTunnel) => backend.boot(spec, onTunnel), wrap);
}

/** How a backend whose writable layer is one disk file checkpoints it while the VM runs. */
export interface PausableDisk<I> {
  /** Stops guest writes to the disk (the guest has synced its page cache first). */
  pause(inst: I): Promise<unknown>;
  /** Lets the VM run again after the copy, whether it succeeded or not. */
  resume(inst: I): Promise<unknown>;
  /** Copies the disk file `src` to `dest`. */
  copy(src: string, dest: string): Promise<void>;
}

/** An instance's run folder (console log, its sockets by default) and where its sockets are. */
export interface RunDirs {
  /** spec.runDir, absolute. */
  runDir: string;
  /** runDir, or a private temporary folder when a socket path in runDir would be too long. */
  sockDir: string;
  /** sockDir is that temporary folder: remove it with the instance. */
  ownSockDir: boolean;
}

/**
 * Creates spec.runDir and picks the folder for the instance's Unix sockets: runDir, unless
 * `agent.sock` there would be longer than `maxSockPath` (sun_path is 104 bytes on macOS, 108 on
 * Linux); then a fresh temporary folder.
 */
export async function makeRunDirs(spec: VmSpec, maxSockPath: number): Promise<RunDirs> {
  const runDir = resolvePath(spec.runDir);
  await mkdir(runDir, { recursive: true });
  if (join(runDir, 'agent.sock').length <= maxSockPath)
    return { runDir, sockDir: runDir, ownSockDir: false };
  return { runDir, sockDir: await mkdtemp(join(tmpdir(), 'pdk-')), ownSockDir: true };
}

/** Removes an instance's own socket folder, if it has one. */
export async function removeSockDir(d: Pick<RunDirs, 'sockDir' | 'ownSockDir'>): Promise<void> {
  if (d.ownSockDir) await rm(d.sockDir, { recursive: true, force: true });
}

/** Connects to a Unix socket; rejects while nobody listens there. */
export function connectUnix(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(path);
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', reject);
  });
}

/**
 * The lifecycle every backend's Vm shares: one instance at a time, replaced on restore; `exited`
 * resolves once, when the current instance dies on its own or when stop() has ended it; stop() is
 * idempotent and removes runDir last. The backend boots and halts instances; its Vm says what it
 * closes and removes when one ends, where its checkpoints live and how they are made.
 */
export abstract class LifecycleVm<
  I extends LiveInstance,
  B extends InstanceDriver<I> = InstanceDriver<I>,
> extends GuestVm {
  readonly id = randomBytes(6).toString('hex');
  readonly exited: Promise<VmExit>;
  private resolveExited!: (v: VmExit) => void;
  private cur: I | null;
  private stoppingNow = false;
  private stopped: Promise<void> | null = null;

  /** The extension of this backend's checkpoint files (`<name>.<ext>` next to the layer). */
  protected abstract readonly checkpointExt: string;

  constructor(
    protected spec: VmSpec,
    protected readonly backend: B,
    inst: I,
  ) {
    super();
    this.cur = inst;
    this.exited = new Promise((r) => (this.resolveExited = r));
    this.watch(inst);
  }

  /** Boots a fresh instance on the same spec (restore, and checkpoint where the VM cannot pause). */
  protected boot(): Promise<I> {
    return this.backend.boot(this.spec, this.dispatchTunnel);
  }

  protected halt(inst: I): Promise<VmExit> {
    return this.backend.halt(inst, this.spec);
  }

  /** The current instance died without stop(): say so and remove what it left. */
  protected abstract lost(inst: I, how: VmExit): Promise<void> | void;

  /** Closes the host's ends of a dead instance's channels. */
  protected closeChannels(inst: I): void {
    inst.client.close();
  }

  /**
   * A replacement instance did not boot, so the VM is over: what to remove, and the exit that
   * `exited` reports. Default: runDir removed, no exit code.
   */
  protected async replacementFailed(_oldExit: VmExit): Promise<VmExit> {
    await rm(this.spec.runDir, { recursive: true, force: true });
    return { code: null, signal: null };
  }

  /** stop() was called while a replacement was booting: end it; its exit is `exited`'s. */
  protected stoppedWhileBooting(inst: I): Promise<VmExit> {
    return this.halt(inst);
  }

  /** The current instance, or null between a replacement's halt and boot, and after exit. */
  protected get instance(): I | null {
    return this.cur;
  }

  /** stop() has been called (or a replacement failed): the VM takes no more calls. */
  protected get stopping(): boolean {
    return this.stoppingNow;
  }

  /** False once the VM can take no more commands: stopping, exited, or its channel lost. */
  get alive(): boolean {
    const inst = this.cur;
    return inst !== null && !this.stoppingNow && !inst.client.isGone;
  }

  protected liveClient(): GuestClient | null {
    return this.cur && !this.stoppingNow ? this.cur.client : null;
  }

  /** Resolves `exited` when the current instance dies on its own (not when it is replaced). */
  private watch(inst: I): void {
    void inst.exited.then(async (how) => {
      if (this.cur !== inst) return; // replaced by restore
      this.cur = null;
      this.closeChannels(inst);
      if (!this.stoppingNow) await this.lost(inst, how);
      this.resolveExited(how);
    });
  }

  protected checkpointPath(name: string): string {
    return checkpointFile(this.spec.overlayPath, name, this.checkpointExt);
  }

  /** The file of checkpoint `name`; fails with a sentence when there is none. */
  protected async existingCheckpoint(name: string): Promise<string> {
    const src = this.checkpointPath(name);
    await stat(src).catch(() => {
      throw new Error(`No checkpoint named "${name}" for this session`);
    });
    return src;
  }

  /**
   * Halts the current instance, runs `between` (with no instance running) and boots a new one,
   * which becomes current. From the start calls fail with VmGoneError, and the old instance's
   * exit is not `exited`. Resolves with the new instance.
   */
  protected async replace(between: () => Promise<void>): Promise<I> {
    const old = this.cur;
    if (!old || this.stoppingNow) throw new VmGoneError();
    this.cur = null; // from here on, calls fail and the old instance's exit is not "exited"
    const oldExit = await this.halt(old);
    await between();
    let inst: I;
    try {
      inst = await this.boot();
    } catch (e) {
      this.stoppingNow = true;
      this.resolveExited(await this.replacementFailed(oldExit));
      throw e;
    }
    if (this.stoppingNow) {
      // stop() was called while this instance was booting.
      this.resolveExited(await this.stoppedWhileBooting(inst));
      throw new VmGoneError();
    }
    this.cur = inst;
    this.watch(inst);
    return inst;
  }

  /**
   * Saves the disk under checkpoint `name` while the VM runs: the guest syncs, the VM pauses (no
   * guest writes while paused), the disk is copied beside the checkpoint, the VM resumes, and
   * the copy is renamed into place, so a checkpoint's file is never half written.
   */
  protected async checkpointDisk(name: string, disk: PausableDisk<I>): Promise<void> {
    const dest = this.checkpointPath(name);
    const inst = this.cur;
    if (!inst || this.stoppingNow) throw new VmGoneError();
    const sync = inst.client.exec({ argv: ['sync'], timeoutMs: 60_000 });
    sync.stdout.resume();
    sync.stderr.resume();
    await sync.result;
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.tmp-${randomBytes(3).toString('hex')}`;
    await disk.pause(inst);
    try {
      await disk.copy(resolvePath(this.spec.overlayPath), tmp);
    } finally {
      await disk.resume(inst);
    }
    await rename(tmp, dest);
  }

  /** Puts the disk back to checkpoint `name` and boots a fresh instance on it. */
  protected async restoreDisk(
    name: string,
    copy: (src: string, dest: string) => Promise<void>,
  ): Promise<I> {
    const src = await this.existingCheckpoint(name);
    return this.replace(() => copy(src, resolvePath(this.spec.overlayPath)));
  }

  /** Halts the current instance, if any, waits for `exited`, removes runDir. Idempotent. */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stoppingNow = true;
      this.stopped = (async () => {
        const inst = this.cur;
        if (inst) {
          await this.halt(inst);
          await this.exited;
        }
        await rm(this.spec.runDir, { recursive: true, force: true });
      })();
    }
    return this.stopped;
  }
}
