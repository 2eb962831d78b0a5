import { join, resolve as resolvePath } from 'node:path';
import { PassThrough, type Duplex } from 'node:stream';
import { VmGoneError, type ExecHandle, type ExecRequest, type FileStat } from './backend.js';
import type { GuestClient } from './guest/client.js';

/** A handle whose command failed before it started (the VM is gone or restarting). */
export function failedHandle(err: Error): ExecHandle {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.end();
  stderr.end();
  const result = Promise.reject(err);
  result.catch(() => {});
  return { stdout, stderr, stdin: new PassThrough(), result, kill: () => {} };
}

const CHECKPOINT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Where a session's checkpoints live (next to its writable layer); remove it with the session. */
export function checkpointsDir(overlayPath: string): string {
  return `${resolvePath(overlayPath)}.checkpoints`;
}

/** The file a checkpoint named `name` is kept in; the name is checked so it cannot leave the folder. */
export function checkpointFile(overlayPath: string, name: string, ext: string): string {
  // SECURITY: names come from callers; no separators, no leading dot.
  if (!CHECKPOINT_NAME.test(name)) throw new Error(`Bad checkpoint name "${name}"`);
  return join(checkpointsDir(overlayPath), `${name}.${ext}`);
}

/**
 * What every backend's Vm shares: while the VM is up, each call goes to the guest agent's client;
 * once it is stopping or gone, calls fail with VmGoneError; guest tunnels go to every handler.
 */
export abstract class GuestVm {
  private readonly tunnelHandlers: ((s: Duplex) => void)[] = [];

  /** The live guest client, or null while the VM is stopping, restarting or gone. */
  protected abstract liveClient(): GuestClient | null;

  protected client(): GuestClient {
    const c = this.liveClient();
    if (!c) throw new VmGoneError();
    return c;
  }

  /** Emits a tunnel to every handler registered with onTunnel (none: the tunnel is closed). */
  dispatchTunnel = (stream: Duplex): void => {
    if (this.tunnelHandlers.length === 0) {
      stream.destroy();
      return;
    }
    for (const h of this.tunnelHandlers) h(stream);
  };

  exec(req: ExecRequest): ExecHandle {
    let c: GuestClient;
    try {
      c = this.client();
    } catch (e) {
      return failedHandle(e as Error);
    }
    return c.exec(req);
  }

  async readFile(path: string): Promise<Buffer> {
    return this.client().readFile(path);
  }

  async writeFile(path: string, data: Buffer, opts?: { mode?: number }): Promise<void> {
    return this.client().writeFile(path, data, opts);
  }

  async stat(path: string): Promise<FileStat> {
    return this.client().stat(path);
  }

  async list(path: string): Promise<FileStat[]> {
    return this.client().list(path);
  }

  async ping(): Promise<number> {
    return this.client().ping();
  }

  onTunnel(handler: (stream: Duplex) => void): void {
    this.tunnelHandlers.push(handler);
  }
}

/**
 * Boots an instance and wraps it in its Vm, holding guest tunnels that open before the Vm exists
 * (between the agent's HELLO and the constructor) and handing them over once it does.
 */
export async function bootWithTunnels<I, V extends GuestVm>(
  boot: (onTunnel: (s: Duplex) => void) => Promise<I>,
  wrap: (inst: I) => V,
): Promise<V> {
  let vm: V | null = null;
  const early: Duplex[] = [];
  const inst = await boot((s) => (vm ? vm.dispatchTunnel(s) : early.push(s)));
  const made = wrap(inst);
  vm = made;
  for (const s of early) made.dispatchTunnel(s);
  return made;
}
