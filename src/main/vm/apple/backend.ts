import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { constants, existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, rename, rm, unlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Vm, VmBackend, VmSpec } from '../backend.js';
import { GuestClient } from '../guest/client.js';
import { VmBootError } from '../qemu/backend.js';
import { buildVzConfig } from './config.js';
import { HelperLineParser, encodeOp, type HelperEvent, type HelperOp } from './helper-protocol.js';
import { connectUnix, LifecycleVm, makeRunDirs, removeSockDir, startVm } from '../vm-lifecycle.js';
import type { InstanceDriver, PausableDisk, VmExit } from '../vm-lifecycle.js';

/** How to run the Swift helper, and timings. */
export interface AppleBackendOptions {
  /** The built `PaddockVZ` binary (signed with the virtualization entitlement). */
  helperBinary: string;
  /** Arguments for the helper (it takes none; the config goes on stdin). Tests run a stand-in. */
  helperArgs?: string[];
  /** Spawn to agent HELLO. Default 30 s. */
  bootTimeoutMs?: number;
  /** After the stop op, how long before SIGKILL. Default 3 s. */
  stopGraceMs?: number;
  log?: (line: string) => void;
}

// Unix socket paths are limited to 104 bytes on macOS (sun_path); leave room.
const MAX_SOCK_PATH = 96;

/**
 * Copies a disk file as an APFS clone where possible (copy-on-write: instant, no extra space);
 * libuv falls back to a plain copy elsewhere.
 */
async function cloneDisk(src: string, dest: string): Promise<void> {
  await copyFile(src, dest, constants.COPYFILE_FICLONE);
  await chmod(dest, 0o600);
}

/** One helper process: its stdout events, its stdin ops, its exit. */
class Helper {
  private readonly parser = new HelperLineParser();
  private readonly listeners = new Set<(e: HelperEvent) => void>();
  private stderrTail = '';
  readonly exited: Promise<VmExit>;
  hasExited = false;

  constructor(
    readonly child: ChildProcess,
    private readonly log: (line: string) => void,
  ) {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => this.emit(this.parser.push(d)));
    child.stdout!.on('end', () => this.emit(this.parser.end()));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderrTail = (this.stderrTail + d).slice(-4000);
    });
    child.stdin!.on('error', () => {}); // EPIPE after a crash; exit is reported separately
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (e) => {
        this.stderrTail += `\n${e.message}`;
        resolve({ code: null, signal: null });
      });
    });
    void this.exited.then(() => (this.hasExited = true));
  }

  get stderr(): string {
    return this.stderrTail.trim().split('\n').slice(-3).join('\n');
  }

  private emit(events: HelperEvent[]): void {
    for (const e of events) {
      if (e.event === 'garbage') this.log(`vz-helper: ${e.line}`);
      for (const l of this.listeners) l(e);
    }
  }

  send(op: HelperOp): void {
    if (!this.hasExited && this.child.stdin!.writable) this.child.stdin!.write(encodeOp(op));
  }

  /** Resolves with the first event named in `want`; rejects on an error event, exit or timeout. */
  waitFor(want: HelperEvent['event'][], timeoutMs: number): Promise<HelperEvent> {
    return new Promise((resolve, reject) => {
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.listeners.delete(on);
        fn();
      };
      const on = (e: HelperEvent): void => {
        if (want.includes(e.event)) done(() => resolve(e));
        else if (e.event === 'error') done(() => reject(new Error(e.message)));
        else if (e.event === 'stopped')
          done(() => reject(new Error(`the VM stopped (${e.reason})`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`no ${want.join('/')} within ${timeoutMs} ms`))),
        timeoutMs,
      );
      this.listeners.add(on);
      void this.exited.then(() => done(() => reject(new Error('the VM helper exited'))));
    });
  }
}

interface Instance {
  helper: Helper;
  client: GuestClient;
  /** The helper's exit. */
  exited: Promise<VmExit>;
  sock: Socket;
  sockDir: string;
  ownSockDir: boolean;
}

/** The Apple Virtualization.framework backend (macOS): one Swift helper process per VM. */
export class AppleBackend implements VmBackend, InstanceDriver<Instance> {
  readonly name = 'apple' as const;
  readonly stopGraceMs: number;
  readonly bootTimeoutMs: number;

  constructor(private readonly opts: AppleBackendOptions) {
    this.stopGraceMs = opts.stopGraceMs ?? 3000;
    this.bootTimeoutMs = opts.bootTimeoutMs ?? 30_000;
  }

  log(line: string): void {
    this.opts.log?.(line);
  }

  /** Creates the session disk as a clone of the read-only base unless it exists. */
  async ensureDisk(spec: VmSpec): Promise<void> {
    const disk = resolvePath(spec.overlayPath);
    if (existsSync(disk)) return;
    await mkdir(dirname(disk), { recursive: true });
    const tmp = `${disk}.tmp-${randomBytes(3).toString('hex')}`;
    await cloneDisk(resolvePath(spec.imageDir, 'rootfs.img'), tmp);
    await rename(tmp, disk);
  }

  /** Spawns the helper, sends the config, waits for `started`, connects, waits for HELLO. */
  async boot(spec: VmSpec, onTunnel: (s: Duplex) => void): Promise<Instance> {
    const dirs = await makeRunDirs(spec, MAX_SOCK_PATH);
    const { runDir, sockDir, ownSockDir } = dirs;
    const agentSocket = join(sockDir, 'agent.sock');
    const consoleLog = join(runDir, 'console.log');
    await unlink(agentSocket).catch(() => {});
    const config = buildVzConfig(
      spec,
      { disk: resolvePath(spec.overlayPath), agentSocket, consoleLog },
      Date.now() / 1000,
    );
    const child = spawn(this.opts.helperBinary, this.opts.helperArgs ?? [], {
      cwd: runDir,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const helper = new Helper(child, (l) => this.log(l));
    // SECURITY: the helper stops the VM when its stdin closes, so a crashed host never leaves
    // a VM with the person's folders mounted (the role setpriv --pdeathsig plays for QEMU).
    child.stdin!.write(JSON.stringify(config) + '\n');

    const deadline = Date.now() + this.bootTimeoutMs;
    const closers: (() => void)[] = [];
    const fail = async (why: string): Promise<never> => {
      for (const c of closers) c();
      if (!helper.hasExited) child.kill('SIGKILL');
      await helper.exited;
      await removeSockDir(dirs);
      const tail = await readFile(consoleLog, 'utf8').catch(() => '');
      const said = helper.stderr ? ` The helper said: ${helper.stderr}` : '';
      throw new VmBootError(
        `The sandbox VM did not start: ${why}.${said}`,
        tail.trimEnd().split('\n').slice(-15).join('\n'),
      );
    };
    try {
      await helper.waitFor(['started'], this.bootTimeoutMs);
    } catch (e) {
      return fail((e as Error).message);
    }
    let sock: Socket | null = null;
    while (!sock) {
      if (helper.hasExited) return fail('the VM helper exited during start-up');
      if (Date.now() > deadline) return fail(`no socket ${agentSocket}`);
      sock = await connectUnix(agentSocket).catch(() => null);
      if (!sock) await new Promise((r) => setTimeout(r, 20));
    }
    const s = sock;
    const client = new GuestClient(s);
    client.onTunnel(onTunnel);
    closers.push(
      () => client.close(),
      () => s.destroy(),
    );
    try {
      await Promise.race([
        client.hello(Math.max(1, deadline - Date.now())),
        helper.exited.then(() => {
          throw new Error('the VM helper exited before the guest agent answered');
        }),
      ]);
    } catch (e) {
      return fail((e as Error).message);
    }
    return { helper, client, exited: helper.exited, sock: s, sockDir, ownSockDir };
  }

  /** The stop op, SIGKILL after the grace period. */
  async halt(inst: Instance): Promise<VmExit> {
    const { helper } = inst;
    if (!helper.hasExited) {
      helper.send({ op: 'stop' });
      const timer = setTimeout(() => {
        if (!helper.hasExited) helper.child.kill('SIGKILL');
      }, this.stopGraceMs);
      await helper.exited;
      clearTimeout(timer);
    }
    inst.client.close();
    inst.sock.destroy();
    await removeSockDir(inst);
    return helper.exited;
  }

  async start(spec: VmSpec): Promise<Vm> {
    await this.ensureDisk(spec);
    return startVm(this, spec, (inst) => new AppleVm(spec, this, inst));
  }
}

/** A running Apple VM; restore boots a fresh helper on the restored disk. */
class AppleVm extends LifecycleVm<Instance, AppleBackend> implements Vm {
  /** Hardware virtualization (Hypervisor.framework); the interface calls that 'kvm'. */
  readonly accel = 'kvm' as const;
  /**
   * The helper pauses the VM (no guest writes while paused) and the disk is cloned (APFS
   * copy-on-write, instant).
   */
  private readonly disk: PausableDisk<Instance> = {
    pause: async (inst) => {
      inst.helper.send({ op: 'pause' });
      await inst.helper.waitFor(['paused'], 10_000);
    },
    resume: async (inst) => {
      inst.helper.send({ op: 'resume' });
      await inst.helper.waitFor(['resumed'], 10_000).catch(() => {});
    },
    copy: cloneDisk,
  };

  protected async lost(inst: Instance, how: VmExit): Promise<void> {
    this.backend.log(`VM ${this.id} exited unexpectedly (${how.signal ?? 'code ' + how.code})`);
    await removeSockDir(inst);
    await rm(this.spec.runDir, { recursive: true, force: true });
  }

  protected readonly checkpointExt = 'img';

  /**
   * Saves the session disk under `name`: the guest syncs, the helper pauses the VM, the disk is
   * cloned, the VM resumes. Memory is not saved; restore boots fresh on the saved disk, as the
   * QEMU backend does.
   */
  async checkpoint(name: string): Promise<void> {
    await this.checkpointDisk(name, this.disk);
  }

  /** Stops the VM, puts the disk back to checkpoint `name` and boots again (same shares). */
  async restore(name: string): Promise<void> {
    await this.restoreDisk(name, this.disk.copy);
  }
}
