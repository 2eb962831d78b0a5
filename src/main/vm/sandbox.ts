import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { newId } from '../../shared/ids.js';
import type {
  ExecHandle,
  ExecRequest,
  FileStat,
  ShareSpec,
  Vm,
  VmBackend,
  VmSpec,
} from './backend.js';
import { Allowlist } from './egress/allowlist.js';
import { EgressProxy, type EgressDecision, type EgressProxyOptions } from './egress/proxy.js';
import type { WarmSource } from './warm-pool.js';

export interface SandboxOptions {
  backend: VmBackend;
  imageDir: string;
  /** Holds this session's writable layer and checkpoints; kept across VM restarts. */
  sessionDir: string;
  /** Short folder for sockets (unix socket paths are limited to ~100 bytes). */
  runDir: string;
  shares: ShareSpec[];
  allowHosts: string[];
  memoryMb: number;
  cpus: number;
  accel?: 'auto' | 'kvm' | 'tcg';
  onEgress?: (d: EgressDecision) => void;
  askPerson?: EgressProxyOptions['askPerson'];
  /** Where a booted VM for this spec may be waiting; tried before a cold boot of a new layer. */
  pool?: WarmSource;
  log?: (line: string) => void;
}

/**
 * One session's sandbox: a VM with the granted folders and an egress proxy with the session's
 * allowlist, joined by the guest's tunnels. If the VM dies, the command that was running fails
 * with VmGoneError and the next command boots a fresh VM on the same writable layer.
 */
export class Sandbox {
  readonly id = newId('sbx');
  readonly allowlist: Allowlist;
  private readonly proxy: EgressProxy;
  private vm: Vm | null = null;
  private booting: Promise<Vm> | null = null;
  private disposed = false;

  constructor(private readonly opts: SandboxOptions) {
    this.allowlist = new Allowlist(opts.allowHosts);
    this.proxy = new EgressProxy({
      allowlist: this.allowlist,
      onDecision: (d) => opts.onEgress?.(d),
      ...(opts.askPerson ? { askPerson: opts.askPerson } : {}),
    });
  }

  /** The running VM, booting one if there is none (first use, or after the last one died). */
  async ready(): Promise<Vm> {
    if (this.disposed) throw new Error('This sandbox was stopped.');
    if (this.vm && this.vm.alive === false) {
      // Its channel is gone but its exit is not reported yet: do not hand out a dead VM.
      const dead = this.vm;
      this.vm = null;
      await dead.stop().catch(() => undefined);
    }
    if (this.vm) return this.vm;
    this.booting ??= this.boot().finally(() => (this.booting = null));
    return this.booting;
  }

  private async boot(): Promise<Vm> {
    await fs.mkdir(this.opts.sessionDir, { recursive: true });
    const spec = {
      imageDir: this.opts.imageDir,
      overlayPath: path.join(this.opts.sessionDir, 'overlay.qcow2'),
      runDir: path.join(this.opts.runDir, newId('vm')),
      shares: this.opts.shares,
      cpus: this.opts.cpus,
      memoryMb: this.opts.memoryMb,
      accel: this.opts.accel ?? 'auto',
    };
    const vm = (await this.takeWarm(spec)) ?? (await this.opts.backend.start(spec));
    // SECURITY: the guest's only way out is this proxy, which applies the allowlist.
    vm.onTunnel((stream) => this.proxy.handleSocket(stream));
    void vm.exited.then(() => {
      if (this.vm === vm) this.vm = null;
    });
    this.vm = vm;
    return vm;
  }

  /**
   * A warm VM from the pool with its fresh layer moved into this session's folder, or null.
   * Only for a session without a layer yet: a resumed session or a restart after the VM died
   * must boot on the layer it has.
   */
  private async takeWarm(spec: VmSpec): Promise<Vm | null> {
    if (!this.opts.pool || existsSync(spec.overlayPath)) return null;
    const { overlayPath, runDir: _runDir, ...warmSpec } = spec;
    const vm = await this.opts.pool.take(warmSpec).catch(() => null);
    if (!vm) return null;
    try {
      if (!vm.moveLayer) throw new Error('this backend cannot move a layer');
      await vm.moveLayer(overlayPath);
      this.opts.log?.(`sandbox ${this.id}: took warm VM ${vm.id}`);
      return vm;
    } catch (e) {
      this.opts.log?.(`sandbox ${this.id}: warm VM not used (${(e as Error).message})`);
      await vm.stop().catch(() => undefined);
      return null;
    }
  }

  async exec(req: ExecRequest): Promise<ExecHandle> {
    const vm = await this.ready();
    return vm.exec(req);
  }

  async readFile(p: string): Promise<Buffer> {
    return (await this.ready()).readFile(p);
  }

  async writeFile(p: string, data: Buffer, opts?: { mode?: number }): Promise<void> {
    return (await this.ready()).writeFile(p, data, opts);
  }

  async stat(p: string): Promise<FileStat> {
    return (await this.ready()).stat(p);
  }

  async list(p: string): Promise<FileStat[]> {
    return (await this.ready()).list(p);
  }

  /** Whether a VM is running now (no boot is started by asking). */
  get running(): boolean {
    return this.vm !== null;
  }

  async checkpoint(name: string): Promise<void> {
    await (await this.ready()).checkpoint(name);
  }

  async restore(name: string): Promise<void> {
    await (await this.ready()).restore(name);
  }

  async stop(): Promise<void> {
    this.disposed = true;
    const vm = this.vm ?? (await this.booting?.catch(() => null)) ?? null;
    this.vm = null;
    await Promise.allSettled([vm?.stop(), this.proxy.close()]);
  }
}
