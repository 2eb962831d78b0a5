/**
 * QEMU in a mount namespace of its own, where the protected paths of read-write grants
 * (protected-paths.ts) are bound read-only over themselves: QEMU's 9p server then gets EROFS for
 * every write there, whatever the guest (root in the VM) mounts or unmounts. Linux only.
 *
 * As root: `unshare --mount --propagation private`. As a normal user: `unshare --user
 * --map-root-user --mount`; QEMU is then root only inside that namespace, which maps to the
 * person's own uid, so files it writes (mapped-xattr) stay theirs and /dev/kvm is reached through
 * their supplementary groups as before. When no namespace can be made (user namespaces disabled,
 * or restricted as on Ubuntu 24.04's AppArmor default), a VM whose read-write grants hold
 * protected paths does not start (fail closed) and the error says why and what to do.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PaddockError } from '../../shared/result.js';

/** One line of /proc/<pid>/mountinfo. */
export interface MountEntry {
  mountPoint: string;
  /** Per-mount options (ro/rw, nosuid, nodev, noexec, atime flags). */
  options: string[];
}

/** Undoes mountinfo's octal escapes (`\040` for a space). */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Parses /proc/<pid>/mountinfo. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(' ');
    if (f.length < 7) continue;
    out.push({ mountPoint: unescapeMount(f[4]!), options: f[5]!.split(',') });
  }
  return out;
}

/** Flags a read-only bind must repeat: in a user namespace the kernel refuses to drop them. */
const KEEP = new Set([
  'nosuid',
  'nodev',
  'noexec',
  'noatime',
  'nodiratime',
  'relatime',
  'strictatime',
  'nosymfollow',
]);

/**
 * The `-o` of `mount --bind` that makes `p` read-only: `ro` plus the flags of the mount holding
 * it (the last mounted of those whose mount point is `p` or a parent of it).
 */
export function readOnlyBindOptions(p: string, mounts: readonly MountEntry[]): string {
  let best: MountEntry | undefined;
  for (const m of mounts) {
    const mp = m.mountPoint;
    const holds = mp === '/' || p === mp || p.startsWith(mp.endsWith('/') ? mp : `${mp}/`);
    if (holds && (!best || mp.length >= best.mountPoint.length)) best = m;
  }
  const keep = (best?.options ?? []).filter((o) => KEEP.has(o));
  return ['ro', ...keep].join(',');
}

/** The mount points that are read-only in a process's mount namespace. */
export function readOnlyMountPoints(pid: number): Set<string> {
  const text = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
  const last = new Map<string, MountEntry>();
  for (const m of parseMountInfo(text)) last.set(m.mountPoint, m);
  return new Set(
    [...last.values()].filter((m) => m.options.includes('ro')).map((m) => m.mountPoint),
  );
}

function unshareFlags(): string[] {
  const root = process.getuid?.() === 0;
  return [...(root ? [] : ['--user', '--map-root-user']), '--mount', '--propagation', 'private'];
}

let support: { ok: true } | { ok: false; why: string } | undefined;

/**
 * Whether this process can make a private mount namespace with a read-only bind in it (probed
 * once, by doing exactly that to a temp folder). For `paddock doctor` and before each boot that
 * needs it.
 */
export function mountNamespaceSupport(): { ok: true } | { ok: false; why: string } {
  if (support) return support;
  const dir = mkdtempSync(path.join(os.tmpdir(), 'pdk-ns-'));
  try {
    const mounts = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
    const r = spawnSync(
      'unshare',
      [
        ...unshareFlags(),
        '--',
        'mount',
        '--bind',
        '-o',
        readOnlyBindOptions(dir, mounts),
        '--',
        dir,
        dir,
      ],
      { encoding: 'utf8', timeout: 10_000 },
    );
    support =
      r.status === 0
        ? { ok: true }
        : {
            ok: false,
            why:
              r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT'
                ? 'the unshare command (util-linux) is not installed'
                : (r.stderr || r.error?.message || `exit ${r.status}`).trim().split('\n')[0]!,
          };
  } catch (e) {
    support = { ok: false, why: (e as Error).message };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return support;
}

// Pairs of (path, options) after the count, then the command. Paths travel as arguments, never
// inside the script text.
const BIND_SCRIPT = [
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do',
  '  mount --bind -o "$2" -- "$1" "$1" || { echo "PADDOCK-FAIL could not make $1 read-only for the VM" >&2; exit 97; }',
  '  shift 2; n=$((n - 1))',
  'done',
  'exec "$@"',
].join('\n');

/**
 * The command that starts QEMU: with no read-only paths, QEMU itself (under `setpriv
 * --pdeathsig KILL` when asked); with some, the same inside a new mount namespace that binds each
 * read-only first. The parent-death signal is set outermost and survives unshare and the exec
 * into QEMU (same process throughout, no setuid), so QEMU keeps the same pid as the child we
 * spawned. Throws a PaddockError when the namespace cannot be made.
 */
export function qemuCommand(o: {
  qemu: string;
  args: string[];
  readOnly: readonly string[];
  pdeathsig: boolean;
}): { command: string; args: string[] } {
  const death = o.pdeathsig ? ['setpriv', '--pdeathsig', 'KILL', '--'] : [];
  if (o.readOnly.length === 0) {
    const [command, ...rest] = [...death, o.qemu, ...o.args];
    return { command: command!, args: rest };
  }
  const ns = mountNamespaceSupport();
  if (!ns.ok) {
    // SECURITY: fail closed: without the binds the guest could plant commands host tools run.
    throw new PaddockError(
      'PROTECT_UNAVAILABLE',
      `Paddock cannot keep the files that tools on your computer run by themselves (such as ${path.basename(o.readOnly[0]!)} in ${path.dirname(o.readOnly[0]!)}) read-only for the VM, because this system does not let it make a private mount namespace (${ns.why}). Grant the folder read-only, or enable unprivileged user namespaces (on Ubuntu 24.04: an AppArmor profile for Paddock, or sysctl kernel.apparmor_restrict_unprivileged_userns=0).`,
    );
  }
  const mounts = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
  const pairs = o.readOnly.flatMap((p) => [p, readOnlyBindOptions(p, mounts)]);
  const [command, ...rest] = [
    ...death,
    'unshare',
    ...unshareFlags(),
    '--',
    '/bin/sh',
    '-c',
    BIND_SCRIPT,
    'paddock-ro',
    String(o.readOnly.length),
    ...pairs,
    o.qemu,
    ...o.args,
  ];
  return { command: command!, args: rest };
}
