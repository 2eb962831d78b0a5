import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { newId } from '../../shared/ids.js';
import { shareMode, type Vm, type VmBackend, type VmSpec } from './backend.js';

/**
 * What decides whether a warm VM fits a session: everything fixed when QEMU starts (image,
 * shares, memory, cpus, accelerator). The writable layer and the socket folder are the pool's.
 */
export type WarmSpec = Omit<VmSpec, 'overlayPath' | 'runDir'>;

/**
 * The identity of a warm spec: a hash of its canonical form, with share paths resolved.
 * SECURITY: shares and their read-only flags are part of the key, so a VM booted with a
 * read-write grant is never handed to a session that granted the folder read-only (or not at all).
 */
export function warmKey(spec: WarmSpec): string {
  const canonical = {
    imageDir: path.resolve(spec.imageDir),
    shares: spec.shares.map((s) => [
      path.resolve(s.hostPath),
      s.name,
      // SECURITY: ro, rw or rv: a VM booted with a folder writable must never serve a review
      // grant of it (its writes would land in the folder), nor the other way round.
      shareMode(s),
      // A VM started with the protected paths bound read-only must not serve a grant that allows
      // writing them, nor the other way round.
      Boolean(s.allowProtectedWrites),
    ]),
    cpus: spec.cpus,
    memoryMb: spec.memoryMb,
    accel: spec.accel,
  };
  return createHash('sha256').update(JSON.stringify(canonical)).digest('hex').slice(0, 24);
}

/**
 * Anything that can hand a session an already booted VM for its spec: the in-process
 * {@link WarmPool}, or the cross-process hand-off of `paddock exec --keep-warm`. The VM returned
 * has a fresh writable layer no session has used; the taker owns it from then on.
 */
export interface WarmSource {
  take(spec: WarmSpec): Promise<Vm | null>;
}

/** Options of {@link WarmPool}. */
export interface WarmPoolOptions {
  backend: VmBackend;
  /**
   * Folder for the warm VMs' writable layers and sockets. Keep it on the same filesystem as the
   * session folders: a taken VM's layer is renamed into its session's folder.
   */
  dir: string;
  /** A warm VM nobody took is stopped after this long (it holds its memory). Default 10 min. */
  idleMs?: number;
  /** At most this many warm VMs at once, all keys together; the oldest goes first. Default 2. */
  maxVms?: number;
  /** Whether take() starts warming the next VM for the same spec. Default true. */
  refill?: boolean;
  /** How long take() lets a taken VM answer a ping before giving up on it. Default 5 s. */
  pingTimeoutMs?: number;
  log?: (line: string) => void;
}

interface Entry {
  key: string;
  dir: string;
  createdAt: number;
  vm: Vm | null;
  /** Resolves to the booted VM, or null if the boot failed or the entry was dropped. */
  booting: Promise<Vm | null>;
  idle: NodeJS.Timeout | null;
  /** Dropped (idle, evicted, disposed): a boot that finishes after this stops its VM. */
  dropped: boolean;
}

/**
 * Keeps a VM booted ahead of time for a known spec, so the next session starts without a cold
 * boot. Shares are fixed when QEMU starts (a 9p device cannot be hot-added, and migration is
 * blocked while 9p is mounted), so a warm VM is booted for one exact spec and handed to one
 * session; it is never reused after a session used it. The app calls prewarm() when a person
 * grants folders, before the prompt is typed; the session's Sandbox calls take().
 */
export class WarmPool implements WarmSource {
  private readonly entries = new Map<string, Entry>();
  private disposed = false;

  constructor(private readonly opts: WarmPoolOptions) {}

  private log(line: string): void {
    this.opts.log?.(`warm pool: ${line}`);
  }

  /**
   * Starts booting a warm VM for `spec` in the background unless one is already there or on its
   * way (at most one per spec). Never throws: a failed boot is logged and forgotten.
   */
  prewarm(spec: WarmSpec): void {
    if (this.disposed) return;
    const key = warmKey(spec);
    if (this.entries.has(key)) return;
    const max = Math.max(1, this.opts.maxVms ?? 2);
    while (this.entries.size >= max) {
      const oldest = [...this.entries.values()].sort((a, b) => a.createdAt - b.createdAt)[0]!;
      this.drop(oldest, 'making room');
    }
    const dir = path.join(this.opts.dir, newId('warm'));
    const entry: Entry = {
      key,
      dir,
      createdAt: Date.now(),
      vm: null,
      booting: Promise.resolve(null),
      idle: null,
      dropped: false,
    };
    this.entries.set(key, entry);
    entry.booting = this.boot(entry, spec);
  }

  private async boot(entry: Entry, spec: WarmSpec): Promise<Vm | null> {
    try {
      await fs.mkdir(entry.dir, { recursive: true, mode: 0o700 });
      // The layer lives inside the VM's run folder, so stopping an untaken VM removes both.
      const vm = await this.opts.backend.start({
        ...spec,
        overlayPath: path.join(entry.dir, 'overlay.qcow2'),
        runDir: entry.dir,
      });
      if (entry.dropped || this.disposed) {
        await vm.stop(); // dropped or disposed while booting
        return null;
      }
      entry.vm = vm;
      void vm.exited.then(() => {
        if (this.entries.get(entry.key) === entry) {
          this.log(`warm VM ${vm.id} exited before anyone took it`);
          this.drop(entry, 'exited');
        }
      });
      entry.idle = setTimeout(() => this.drop(entry, 'idle'), this.opts.idleMs ?? 600_000);
      entry.idle.unref();
      this.log(`VM ${vm.id} is warm (${entry.key})`);
      return vm;
    } catch (e) {
      this.log(`warming failed: ${(e as Error).message.split('\n')[0]}`);
      if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
      await fs.rm(entry.dir, { recursive: true, force: true }).catch(() => undefined);
      return null;
    }
  }

  /** Forgets an entry and stops its VM (once booted). */
  private drop(entry: Entry, why: string): void {
    entry.dropped = true;
    if (this.entries.get(entry.key) === entry) this.entries.delete(entry.key);
    if (entry.idle) clearTimeout(entry.idle);
    void entry.booting.then(async (vm) => {
      if (vm) {
        this.log(`stopping warm VM ${vm.id} (${why})`);
        await vm.stop().catch(() => undefined);
      }
      await fs.rm(entry.dir, { recursive: true, force: true }).catch(() => undefined);
    });
  }

  /**
   * The warm VM for `spec` (waiting for it if it is still booting), or null if there is none.
   * The caller owns the VM from then on (its layer lives in the pool's folder until the caller
   * moves it: Vm.moveLayer). Unless `refill` is off, warming the next one starts at once.
   */
  async take(spec: WarmSpec): Promise<Vm | null> {
    if (this.disposed) return null;
    const key = warmKey(spec);
    const entry = this.entries.get(key);
    if (!entry) return null;
    this.entries.delete(key);
    if (entry.idle) clearTimeout(entry.idle);
    const vm = await entry.booting;
    if (!vm) return null;
    const timeout = this.opts.pingTimeoutMs ?? 5000;
    try {
      await Promise.race([
        vm.ping(),
        new Promise((_r, reject) =>
          setTimeout(() => reject(new Error('no answer')), timeout).unref(),
        ),
      ]);
    } catch (e) {
      this.log(`warm VM ${vm.id} did not answer (${(e as Error).message}); not used`);
      await vm.stop().catch(() => undefined);
      await fs.rm(entry.dir, { recursive: true, force: true }).catch(() => undefined);
      return null;
    }
    this.log(`VM ${vm.id} taken (${key})`);
    if (this.opts.refill !== false) this.prewarm(spec);
    return vm;
  }

  /** Resolves once the warm VM for `spec` has booted: true, or false if there is none or it failed. */
  async whenWarm(spec: WarmSpec): Promise<boolean> {
    const entry = this.entries.get(warmKey(spec));
    return entry ? (await entry.booting) !== null : false;
  }

  /** How many warm VMs are booted or booting (for tests and diagnostics). */
  get size(): number {
    return this.entries.size;
  }

  /** Stops every warm VM, booted or booting. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const entries = [...this.entries.values()];
    this.entries.clear();
    await Promise.allSettled(
      entries.map(async (e) => {
        e.dropped = true;
        if (e.idle) clearTimeout(e.idle);
        const vm = await e.booting;
        await vm?.stop();
        await fs.rm(e.dir, { recursive: true, force: true });
      }),
    );
  }
}
