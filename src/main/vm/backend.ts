import type { Duplex, Readable, Writable } from 'node:stream';
import type { BoundaryFinding } from './protected-paths.js';

/** A folder shared into the guest; `name` becomes `/mnt/<name>` and the 9p mount tag. */
export interface ShareSpec {
  hostPath: string;
  name: string;
  readOnly: boolean;
  /**
   * The person's explicit choice to let the guest write, in this read-write grant, the files
   * that tools on their computer run by themselves (`.git`, editor tasks, direnv; see
   * protected-paths.ts) and to keep executable bits it gives files. Off unless set. Not offered
   * in the app or the CLI yet.
   */
  allowProtectedWrites?: boolean;
  /**
   * Review mode of a read-write grant (ignored when `readOnly`): the guest sees `/mnt/<name>`
   * writable, but its writes land in a layer on the session's own disk (an overlay in the guest,
   * vm-images/init), never in the folder; the host reads them with review.ts for the person to
   * apply. SECURITY: the backend exports the folder read-only, so not even root in the guest can
   * write it. Off unless set (then writes go straight to the folder).
   */
  review?: boolean;
}

/** How a share reaches the guest: read-only, read-write, or read-write staged for review. */
export type ShareMode = 'ro' | 'rw' | 'rv';

/**
 * The one decision of a share's mode, for every backend and the host's boundary. SECURITY: only
 * an explicit `readOnly: false` without review lets the guest write the person's folder.
 */
export function shareMode(s: ShareSpec): ShareMode {
  if (s.readOnly !== false) return 'ro';
  return s.review ? 'rv' : 'rw';
}

/** Whether the guest can write the person's folder itself (a direct read-write grant). */
export function hostWritable(s: ShareSpec): boolean {
  return shareMode(s) === 'rw';
}

/** Everything a backend needs to boot one VM for one session. */
export interface VmSpec {
  /** Folder holding the built image: vmlinux, initrd.img, rootfs.img, manifest.json. */
  imageDir: string;
  /** Per-session writable layer (qcow2 over the read-only base); created if missing. */
  overlayPath: string;
  /** Folder for this VM's sockets and console log; removed on stop. */
  runDir: string;
  shares: ShareSpec[];
  cpus: number;
  memoryMb: number;
  /** 'auto' probes KVM with a real boot and falls back to TCG. */
  accel: 'auto' | 'kvm' | 'tcg';
}

export interface ExecRequest {
  /** argv form; exactly one of argv or shell. */
  argv?: string[];
  /** Shell string run with /bin/sh -c. */
  shell?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** Whether the caller will write stdin; otherwise stdin is /dev/null. */
  stdin?: boolean;
  /** Per-command timeout; on expiry the process group is killed and the exit code is 124. */
  timeoutMs?: number;
}

export interface ExecResult {
  /** Exit code; 124 on timeout, 128+n when killed by signal n. */
  exitCode: number;
  /**
   * What the host's boundary refused or undid during this command (writes to files host tools
   * run, files moved aside, executable bits taken); set by the Sandbox, absent when nothing.
   */
  boundary?: readonly BoundaryFinding[];
  signal: string | null;
  timedOut: boolean;
  /** The out-of-memory killer ended the command (exitCode is then 137). */
  oomKilled?: boolean;
  durationMs: number;
}

export interface ExecHandle {
  stdout: Readable;
  stderr: Readable;
  stdin: Writable;
  result: Promise<ExecResult>;
  kill(signal?: NodeJS.Signals): void;
}

export interface FileStat {
  path: string;
  type: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mode: number;
  mtimeMs: number;
}

/** A running VM. Every method fails with VmGoneError once the VM has died. */
export interface Vm {
  readonly id: string;
  readonly accel: 'kvm' | 'tcg';
  /**
   * The host process running the VM, where there is one (QEMU); the Sandbox reads its mount
   * namespace to check that protected paths are read-only there.
   */
  readonly pid?: number | undefined;
  /**
   * False once the VM can take no more commands. Turns false as soon as the channel is lost,
   * which can be a moment before `exited` resolves (the process exit is reported later).
   */
  readonly alive?: boolean;
  exec(req: ExecRequest): ExecHandle;
  readFile(path: string): Promise<Buffer>;
  writeFile(path: string, data: Buffer, opts?: { mode?: number }): Promise<void>;
  stat(path: string): Promise<FileStat>;
  list(path: string): Promise<FileStat[]>;
  ping(): Promise<number>;
  /** Save the session's writable layer (and, where supported, memory) under a name. */
  checkpoint(name: string): Promise<void>;
  restore(name: string): Promise<void>;
  stop(): Promise<void>;
  /**
   * Moves the running VM's writable layer to another path. Lets a warm VM, booted before any
   * session existed, keep its layer in the session's folder once a session takes it.
   */
  moveLayer?(overlayPath: string): Promise<void>;
  /** Resolves when the VM process has exited, for whatever reason. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  /** Tunnels opened by the guest's proxy forwarder: one Duplex per guest TCP connection. */
  onTunnel(handler: (stream: Duplex) => void): void;
}

export interface VmBackend {
  readonly name: 'qemu' | 'apple' | 'wsl';
  start(spec: VmSpec): Promise<Vm>;
}

/** The VM died (QEMU killed, guest panic) while an operation was pending. */
export class VmGoneError extends Error {
  readonly code = 'VM_GONE';
  constructor(
    message = 'The sandbox VM stopped unexpectedly; the next command starts a fresh VM.',
  ) {
    super(message);
    this.name = 'VmGoneError';
  }
}
