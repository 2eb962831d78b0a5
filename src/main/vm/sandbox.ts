import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { finished } from 'node:stream/promises';
import { newId } from '../../shared/ids.js';
import { PaddockError } from '../../shared/result.js';
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
import { readOnlyMountPoints } from './mount-namespace.js';
import { BoundaryGuard, boundaryNote, type BoundaryFinding } from './protected-paths.js';

export interface SandboxOptions {
  backend: VmBackend;
  imageDir: string;
  /** Holds this session's writable layer and checkpoints; kept across VM restarts. */
  sessionDir: string;
  /** Short folder for sockets (unix socket paths are limited to ~100 bytes). */
  runDir: string;
  shares: ShareSpec[];
  /** Hosts a person configured (Settings, a form, `--allow-host`). */
  allowHosts: string[];
  /** Hosts from answers to a prompt ("always allow"); they never open internal addresses. */
  promptHosts?: string[];
  memoryMb: number;
  cpus: number;
  accel?: 'auto' | 'kvm' | 'tcg';
  onEgress?: (d: EgressDecision) => void;
  askPerson?: EgressProxyOptions['askPerson'];
  /**
   * Secrets and pinned hosts: the proxy terminates TLS for their hosts only, with the per-install
   * CA, whose certificate (never its key) is put in the guest's trust stores at every boot.
   */
  intercept?: EgressProxyOptions['intercept'];
  /** Variables every command gets (the secrets' placeholders); a command's own env wins. */
  guestEnv?: Record<string, string>;
  /** Where a booted VM for this spec may be waiting; tried before a cold boot of a new layer. */
  pool?: WarmSource;
  /**
   * Tells the person what the boundary refused or undid in read-write grants (protected-paths.ts);
   * the model gets the same in each command's result.
   */
  onBoundary?: (findings: readonly BoundaryFinding[]) => void;
  log?: (line: string) => void;
}

/** Where the proxy CA's certificate is put in the guest (Debian's place for local CAs). */
export const GUEST_PROXY_CA_PATH = '/usr/local/share/ca-certificates/paddock-proxy-ca.crt';
/** The bundle that OpenSSL, curl, git, Python (Debian's requests) read. */
const GUEST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

/** The variables that make each TLS client in the guest trust the bundle with the proxy CA. */
export const PROXY_CA_ENV: Readonly<Record<string, string>> = {
  NODE_EXTRA_CA_CERTS: GUEST_PROXY_CA_PATH,
  SSL_CERT_FILE: GUEST_CA_BUNDLE,
  REQUESTS_CA_BUNDLE: GUEST_CA_BUNDLE,
  CURL_CA_BUNDLE: GUEST_CA_BUNDLE,
  GIT_SSL_CAINFO: GUEST_CA_BUNDLE,
};

/**
 * Puts the proxy CA's certificate in the guest's trust stores: its own file (Node's extra CAs,
 * and `update-ca-certificates` keeps it) and appended to the system bundle once. Only the
 * certificate: SECURITY: the CA's key never enters the VM.
 */
export async function installProxyCa(vm: Vm, certPem: string): Promise<void> {
  const cert = certPem.endsWith('\n') ? certPem : `${certPem}\n`;
  await vm.writeFile(GUEST_PROXY_CA_PATH, Buffer.from(cert), { mode: 0o644 });
  const bundle = await vm.readFile(GUEST_CA_BUNDLE).catch(() => Buffer.alloc(0));
  if (bundle.includes(cert.trim())) return;
  const sep = bundle.length === 0 || bundle.at(-1) === 0x0a ? '' : '\n';
  await vm.writeFile(GUEST_CA_BUNDLE, Buffer.concat([bundle, Buffer.from(sep + cert)]), {
    mode: 0o644,
  });
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
  private readonly guard: BoundaryGuard;
  private bootedOnce = false;

  constructor(private readonly opts: SandboxOptions) {
    // SECURITY: prompt answers keep their provenance, so they never open internal addresses.
    this.allowlist = new Allowlist(opts.allowHosts, opts.promptHosts ?? []);
    this.proxy = new EgressProxy({
      allowlist: this.allowlist,
      onDecision: (d) => opts.onEgress?.(d),
      ...(opts.askPerson ? { askPerson: opts.askPerson } : {}),
      ...(opts.intercept ? { intercept: opts.intercept } : {}),
    });
    this.guard = new BoundaryGuard({
      shares: opts.shares,
      // The default walk limit, as the backend's bind walk: both see the same protected paths.
      quarantineDir: path.join(opts.sessionDir, 'quarantine'),
    });
  }

  private report(findings: readonly BoundaryFinding[]): void {
    if (findings.length === 0) return;
    if (this.opts.onBoundary) this.opts.onBoundary(findings);
    else this.opts.log?.(`sandbox ${this.id}: ${boundaryNote(findings)}`);
  }

  /**
   * Whether the VM's QEMU really sees every protected path of the grants read-only (its mount
   * namespace, read from /proc): a warm VM booted before the person made a `.git`, or a boot that
   * raced a change, would not.
   */
  private async bindsHold(vm: Vm): Promise<boolean> {
    if (!this.guard.active || this.opts.backend.name !== 'qemu') return true;
    const need = await this.guard.bindTargets();
    if (need.length === 0) return true;
    if (!vm.pid) return false;
    try {
      const ro = readOnlyMountPoints(vm.pid);
      return need.every((p) => ro.has(p));
    } catch {
      return false;
    }
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
    // The inventory is taken while the VM boots: the guest runs nothing before our first command.
    const inventory = this.guard.inventory();
    // SECURITY: a VM that died mid-command may have left protected paths; undo before a new boot.
    if (this.bootedOnce) this.report(await this.guard.sweep());
    this.bootedOnce = true;
    let vm = await this.takeWarm(spec);
    await inventory;
    // SECURITY: files host tools run must be read-only binds in QEMU's namespace, or no VM.
    if (vm && !(await this.bindsHold(vm))) {
      this.opts.log?.(`sandbox ${this.id}: warm VM ${vm.id} lacks the read-only binds; cold boot`);
      await vm.stop().catch(() => undefined);
      vm = null;
    }
    if (!vm) {
      vm = await this.opts.backend.start(spec);
      if (!(await this.bindsHold(vm))) {
        await vm.stop().catch(() => undefined);
        throw new PaddockError(
          'PROTECT_FAILED',
          'The sandbox VM started without the read-only protection of files that host tools run (a folder changed while it started?); try again.',
        );
      }
    }
    this.report(await this.guard.notes());
    if (this.opts.intercept) {
      try {
        await installProxyCa(vm, this.opts.intercept.ca.certPem);
      } catch (e) {
        await vm.stop().catch(() => undefined);
        throw new PaddockError(
          'PROXY_CA_INSTALL',
          `The sandbox VM could not be made to trust Paddock's proxy for this task's secrets (${(e as Error).message}); try again.`,
        );
      }
    }
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

  /**
   * Runs a command. In guarded grants, its output is watched for refused writes to protected
   * paths, and once it ends the grants are swept (protected-paths.ts); what was found is in the
   * result's `boundary` and goes to the person.
   */
  async exec(req: ExecRequest): Promise<ExecHandle> {
    const vm = await this.ready();
    const env = this.opts.intercept
      ? { ...PROXY_CA_ENV, ...this.opts.guestEnv }
      : this.opts.guestEnv;
    const h = vm.exec(env ? { ...req, env: { ...env, ...req.env } } : req);
    if (!this.guard.active) return h;
    const tap = this.guard.outputTap();
    const stdout = tap.pipe(h.stdout);
    const stderr = tap.pipe(h.stderr);
    const after = async (): Promise<BoundaryFinding[]> => {
      // The last lines pass the tap once the streams end (bounded, in case nobody reads them).
      const ended = Promise.all([stdout, stderr].map((s) => finished(s).catch(() => undefined)));
      const ac = new AbortController();
      await Promise.race([ended, delay(500, undefined, { signal: ac.signal }).catch(() => {})]);
      ac.abort();
      const found = [...tap.findings(), ...(await this.guard.sweep())];
      this.report(found);
      return found;
    };
    const result = h.result.then(
      async (r) => {
        const found = await after();
        return found.length ? { ...r, boundary: found } : r;
      },
      async (e: unknown) => {
        await after().catch(() => undefined);
        throw e;
      },
    );
    result.catch(() => undefined);
    return { stdout, stderr, stdin: h.stdin, result, kill: (sig) => h.kill(sig) };
  }

  async readFile(p: string): Promise<Buffer> {
    return (await this.ready()).readFile(p);
  }

  /**
   * Writes a file in the VM. SECURITY: a write to a protected path of a guarded grant is refused
   * before it is tried, and the grants are swept after (a guest symlink could have led
   * elsewhere); either is reported and fails the write.
   */
  async writeFile(p: string, data: Buffer, opts?: { mode?: number }): Promise<void> {
    const vm = await this.ready();
    const refused = await this.guard.refuseWrite(p);
    if (refused) {
      this.report([refused]);
      throw new PaddockError('PROTECTED_PATH', boundaryNote([refused]));
    }
    await vm.writeFile(p, data, opts);
    const found = await this.guard.sweep();
    this.report(found);
    if (found.length) throw new PaddockError('PROTECTED_PATH', boundaryNote(found));
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
    const vm = await this.ready();
    this.report(await this.guard.sweep());
    await vm.restore(name);
    // SECURITY: the restored VM is a new QEMU; it must have the read-only binds too.
    if (!(await this.bindsHold(vm))) {
      await vm.stop().catch(() => undefined);
      throw new PaddockError(
        'PROTECT_FAILED',
        'The restored sandbox VM lacks the read-only protection of files that host tools run; it was stopped.',
      );
    }
  }

  async stop(): Promise<void> {
    this.disposed = true;
    const vm = this.vm ?? (await this.booting?.catch(() => null)) ?? null;
    this.vm = null;
    await Promise.allSettled([vm?.stop(), this.proxy.close()]);
    // The last look, with the guest gone: nothing can race it now.
    if (this.bootedOnce) this.report(await this.guard.sweep().catch(() => []));
  }
}
