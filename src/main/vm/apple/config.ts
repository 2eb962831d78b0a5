import { resolve as resolvePath } from 'node:path';
import { hostWritable, shareMode, type VmSpec } from '../backend.js';
import { AGENT_PORT_NAME, isValidShareName, shareTag } from '../qemu/args.js';

/** One virtio-fs share as the Swift helper sees it. */
export interface VzShare {
  /** virtio-fs tag (at most 36 bytes for Virtualization.framework); the guest mounts it. */
  tag: string;
  hostPath: string;
  readOnly: boolean;
}

/**
 * The JSON the Swift helper (src/vz-helper) reads as its first stdin line. Field names are the
 * helper's `Config` struct; change both together.
 */
export interface VzConfig {
  kernel: string;
  initrd: string;
  /**
   * The session's writable raw disk (/dev/vda): an APFS clone of the read-only base rootfs.img,
   * so the base is never written (Virtualization.framework has no qcow2-style overlays).
   */
  disk: string;
  cmdline: string;
  cpus: number;
  memoryBytes: number;
  shares: VzShare[];
  /** Unix socket the helper listens on and relays to the guest agent's console port. */
  agentSocket: string;
  /** Name of the virtio-console port the agent opens (/dev/virtio-ports/<name>). */
  agentPortName: string;
  /** The guest's console (hvc0) is appended here. */
  consoleLog: string;
  /** Always false: the guest has no network device. Stated so the helper can assert it. */
  network: false;
}

/** Where one VM's runtime files are (absolute). */
export interface VzPaths {
  disk: string;
  agentSocket: string;
  consoleLog: string;
}

/** Kernel command line for the Apple backend (arm64 or x86_64; no x86 TSC options). */
export function vzCmdline(spec: Pick<VmSpec, 'shares'>, hostTimeSec?: number): string {
  const parts = ['console=hvc0', 'quiet', 'panic=-1', 'cryptomgr.notests'];
  // vm-images/init mounts the shares with virtio-fs instead of 9p when it sees this.
  parts.push('paddock.fs=virtiofs');
  if (spec.shares.length > 0) {
    parts.push(
      'paddock.shares=' +
        spec.shares.map((s, i) => `${shareTag(i)}:${s.name}:${shareMode(s)}`).join(','),
    );
  }
  parts.push(`paddock.port=${AGENT_PORT_NAME}`);
  if (hostTimeSec !== undefined) parts.push(`paddock.time=${Math.floor(hostTimeSec)}`);
  return parts.join(' ');
}

function checkPath(p: string): string {
  // SECURITY: a NUL or newline in a path would cut the JSON line's meaning for the helper's
  // logs and for the guest's cmdline; no legitimate path has one.
  if (p.includes('\0') || p.includes('\n')) throw new Error('A path contains a newline or NUL.');
  return resolvePath(p);
}

/**
 * The helper configuration for one VM. Pure: the same input gives the same config. No network
 * device, each share read-only when granted so or staged for review (enforced by
 * VZSharedDirectory on the host).
 */
export function buildVzConfig(
  spec: Omit<VmSpec, 'accel' | 'overlayPath' | 'runDir'>,
  paths: VzPaths,
  hostTimeSec?: number,
): VzConfig {
  if (!Number.isInteger(spec.cpus) || spec.cpus < 1) throw new Error(`Bad cpu count ${spec.cpus}`);
  if (!Number.isInteger(spec.memoryMb) || spec.memoryMb < 128) {
    throw new Error(`Bad memory size ${spec.memoryMb} MiB (at least 128)`);
  }
  const seen = new Set<string>();
  for (const s of spec.shares) {
    // SECURITY: share names travel on the kernel command line and become /mnt/<name>.
    if (!isValidShareName(s.name)) throw new Error(`Bad share name "${s.name}"`);
    if (seen.has(s.name)) throw new Error(`Two shares are named "${s.name}"`);
    seen.add(s.name);
  }
  return {
    kernel: checkPath(resolvePath(spec.imageDir, 'vmlinux')),
    initrd: checkPath(resolvePath(spec.imageDir, 'initrd.img')),
    disk: checkPath(paths.disk),
    cmdline: vzCmdline(spec, hostTimeSec),
    cpus: spec.cpus,
    memoryBytes: spec.memoryMb * 1024 * 1024,
    shares: spec.shares.map((s, i) => ({
      tag: shareTag(i),
      hostPath: checkPath(s.hostPath),
      // SECURITY: strictly boolean, so a missing flag never becomes writable by accident; a
      // review share is read-only on the host (the guest's writes stay in its overlay).
      readOnly: !hostWritable(s),
    })),
    agentSocket: checkPath(paths.agentSocket),
    agentPortName: AGENT_PORT_NAME,
    consoleLog: checkPath(paths.consoleLog),
    // SECURITY: the guest's only way out is the agent channel (tunnels to the egress proxy).
    network: false,
  };
}
