import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import { Duplex } from 'node:stream';
import type { Vm, VmBackend, VmSpec } from '../backend.js';
import { CAPPED_LOG_MAX_BYTES, CappedLog } from '../capped-log.js';
import { GuestClient } from '../guest/client.js';
import { VmBootError } from '../qemu/backend.js';
import {
  distroName,
  execArgv,
  exportArgv,
  importArgv,
  launchScript,
  setupScript,
  terminateArgv,
  unregisterArgv,
  wslConf,
} from './commands.js';
import { RELAY_SOURCE } from './relay.js';
import { checkpointsDir } from '../guest-vm.js';
import { LifecycleVm, startVm, type InstanceDriver, type VmExit } from '../vm-lifecycle.js';

/** Where the WSL backend finds wsl.exe and the published root filesystem. */
export interface WslBackendOptions {
  /** Default: wsl.exe from PATH. */
  wslExe?: string;
  /** The published rootfs.tar (same root filesystem as the QEMU image), downloaded on first run. */
  rootfsTar: string;
  /** Spawn to agent HELLO. Default 60 s (the first start of a distro boots the WSL VM). */
  bootTimeoutMs?: number;
  /** After closing the channel, how long before wsl.exe is killed. Default 3 s. */
  stopGraceMs?: number;
  log?: (line: string) => void;
}

/** One agent launch: the wsl.exe process whose stdio is the channel. */
interface Launch {
  child: ChildProcess;
  client: GuestClient;
  exited: Promise<VmExit>;
}

/**
 * The Windows backend: one WSL2 distro per session, imported from the same root filesystem as
 * the QEMU image. The session's writable layer is the distro's own disk, kept in
 * `spec.overlayPath` (a folder here); checkpoints are `wsl --export` tars. See commands.ts for
 * why its isolation is weaker than the QEMU and Apple backends'.
 */
export class WslBackend implements VmBackend, InstanceDriver<Launch> {
  readonly name = 'wsl' as const;
  readonly wslExe: string;
  readonly stopGraceMs: number;

  constructor(private readonly opts: WslBackendOptions) {
    this.wslExe = opts.wslExe ?? 'wsl.exe';
    this.stopGraceMs = opts.stopGraceMs ?? 3000;
  }

  log(line: string): void {
    this.opts.log?.(line);
  }

  /** Runs wsl.exe to completion; rejects with its stderr (UTF-16 from wsl.exe is tolerated). */
  run(args: string[], input?: Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(this.wslExe, args, { stdio: ['pipe', 'ignore', 'pipe'] });
      let err = '';
      child.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8').replaceAll('\0', '')));
      child.once('error', (e) => reject(new Error(`Could not run ${this.wslExe}: ${e.message}`)));
      child.once('exit', (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`wsl ${args[0]} failed (${code}): ${err.trim().slice(-500)}`)),
      );
      child.stdin!.on('error', () => {}); // EPIPE if wsl.exe is missing or exits early
      child.stdin!.end(input);
    });
  }

  /** The session's distro, stable for its layer path so a session finds its distro again. */
  distroFor(spec: VmSpec): string {
    const h = createHash('sha256').update(resolvePath(spec.overlayPath)).digest('hex');
    return distroName(h.slice(0, 16));
  }

  /** Imports and configures the session's distro unless its disk exists. */
  async ensureDistro(spec: VmSpec, fromTar = this.opts.rootfsTar): Promise<void> {
    const dir = resolvePath(spec.overlayPath);
    if (existsSync(join(dir, 'ext4.vhdx'))) return;
    const distro = this.distroFor(spec);
    await mkdir(dir, { recursive: true });
    await this.run(importArgv(distro, dir, fromTar));
    const input = Buffer.concat([
      Buffer.from(wslConf()),
      Buffer.from([0]),
      Buffer.from(RELAY_SOURCE),
    ]);
    await this.run(execArgv(distro, ['/bin/sh', '-c', setupScript()]), input);
    // wsl.conf applies from the next start (the setup run itself still saw automount).
    await this.run(terminateArgv(distro));
  }

  /** Mounts the grants and starts the agent; resolves at its HELLO. */
  async boot(spec: VmSpec, onTunnel: (s: Duplex) => void): Promise<Launch> {
    const distro = this.distroFor(spec);
    const runDir = resolvePath(spec.runDir);
    await mkdir(runDir, { recursive: true });
    const child = spawn(
      this.wslExe,
      execArgv(distro, ['/bin/sh', '-c', launchScript(spec.shares)]),
      {
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      },
    );
    // SECURITY: the guest can write to this stream without end; the log file is capped.
    const agentLog = new CappedLog(join(runDir, 'agent.log'), CAPPED_LOG_MAX_BYTES, true);
    child.stderr!.on('data', (d: Buffer) => agentLog.write(d));
    child.stderr!.once('close', () => agentLog.close());
    const exited = new Promise<VmExit>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', () => resolve({ code: null, signal: null }));
    });
    // The channel is wsl.exe's stdout (guest -> host) and stdin (host -> guest).
    const client = new GuestClient(
      Duplex.from({ readable: child.stdout!, writable: child.stdin! }),
    );
    client.onTunnel(onTunnel);
    const timeout = this.opts.bootTimeoutMs ?? 60_000;
    try {
      await Promise.race([
        client.hello(timeout),
        exited.then((e) => {
          throw new Error(`wsl.exe exited (${e.code ?? e.signal}) before the agent answered`);
        }),
      ]);
    } catch (e) {
      client.close();
      child.kill('SIGKILL');
      await this.run(terminateArgv(distro)).catch(() => {});
      throw new VmBootError(`The WSL sandbox did not start: ${(e as Error).message}.`, '');
    }
    return { child, client, exited };
  }

  /**
   * Ends a launch: EOF on the channel (the agent kills its commands), wsl.exe killed after the
   * grace period, then terminate.
   */
  async halt(l: Launch, spec: VmSpec): Promise<VmExit> {
    l.client.close();
    l.child.stdin!.end();
    const timer = setTimeout(() => l.child.kill('SIGKILL'), this.stopGraceMs);
    const how = await l.exited;
    clearTimeout(timer);
    // SECURITY: terminating drops the distro's drvfs mounts of the person's folders.
    await this.run(terminateArgv(this.distroFor(spec))).catch((e: Error) => this.log(e.message));
    return how;
  }

  /** Deletes a session's distro and disk (when the session is deleted). */
  async remove(spec: VmSpec): Promise<void> {
    await this.run(unregisterArgv(this.distroFor(spec))).catch(() => {});
    await rm(resolvePath(spec.overlayPath), { recursive: true, force: true });
  }

  async start(spec: VmSpec): Promise<Vm> {
    await this.ensureDistro(spec);
    return startVm(this, spec, (l) => new WslVm(spec, this, l));
  }
}

/** A running WSL sandbox. */
class WslVm extends LifecycleVm<Launch, WslBackend> implements Vm {
  /** Hyper-V hardware virtualization; the interface calls that 'kvm'. */
  readonly accel = 'kvm' as const;

  protected lost(): void {
    this.backend.log(`WSL sandbox ${this.id} exited unexpectedly`);
  }

  /** A failed relaunch leaves runDir (stop() removes it) and reports the halted launch's exit. */
  protected override async replacementFailed(oldExit: VmExit): Promise<VmExit> {
    return oldExit;
  }

  protected readonly checkpointExt = 'tar';

  /**
   * Saves the distro's filesystem under `name` with `wsl --export`. WSL cannot pause a distro,
   * so the sandbox is stopped for the export and started again: running commands end.
   */
  async checkpoint(name: string): Promise<void> {
    const dest = this.checkpointPath(name);
    await this.replace(async () => {
      await mkdir(checkpointsDir(this.spec.overlayPath), { recursive: true });
      await this.backend.run(exportArgv(this.backend.distroFor(this.spec), dest));
    });
  }

  /** Replaces the distro with checkpoint `name` (unregister, import) and starts it again. */
  async restore(name: string): Promise<void> {
    const src = await this.existingCheckpoint(name);
    await this.replace(async () => {
      await this.backend.run(unregisterArgv(this.backend.distroFor(this.spec)));
      await this.backend.ensureDistro(this.spec, src);
    });
  }
}
