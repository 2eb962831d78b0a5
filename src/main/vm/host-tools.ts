import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** What a host program is needed for: building the image, running VMs, or only the tests. */
export type HostToolNeed = 'image' | 'image-rootless' | 'vm' | 'test';

/** A program Paddock (or its image recipe, or its tests) runs on the host, with its package. */
export interface HostTool {
  name: string;
  /** The Debian package that provides it; scripts/setup.sh installs every one of these. */
  pkg: string;
  need: HostToolNeed;
  /** An absolute path when the program is looked up there rather than on PATH. */
  path?: string;
}

/**
 * Every host program that is not part of an Essential Debian package, with its package. It is the
 * list a person is shown before a build starts (instead of a failure at 85 %), and the one that
 * test/unit/host-tools.test.ts checks against the programs the code and scripts really run and
 * against scripts/setup.sh's install list, so it cannot silently fall behind either.
 */
export const HOST_TOOLS: readonly HostTool[] = [
  { name: 'bash', pkg: 'bash', need: 'image' },
  { name: 'mmdebstrap', pkg: 'mmdebstrap', need: 'image' },
  { name: 'apt-get', pkg: 'apt', need: 'image' },
  { name: 'apt-cache', pkg: 'apt', need: 'image' },
  { name: 'mkfs.ext4', pkg: 'e2fsprogs', need: 'image' },
  { name: 'depmod', pkg: 'kmod', need: 'image' },
  { name: 'lz4', pkg: 'lz4', need: 'image' },
  { name: 'xz', pkg: 'xz-utils', need: 'image' },
  { name: 'zstd', pkg: 'zstd', need: 'image' },
  { name: 'cpio', pkg: 'cpio', need: 'image' },
  { name: 'awk', pkg: 'mawk', need: 'image' },
  { name: 'busybox', pkg: 'busybox-static', need: 'image', path: '/bin/busybox' },
  { name: 'gcc', pkg: 'gcc', need: 'image' },
  { name: 'strip', pkg: 'binutils', need: 'image' },
  { name: 'newuidmap', pkg: 'uidmap', need: 'image-rootless' },
  { name: 'newgidmap', pkg: 'uidmap', need: 'image-rootless' },
  { name: 'qemu-system-x86_64', pkg: 'qemu-system-x86', need: 'vm' },
  { name: 'qemu-img', pkg: 'qemu-utils', need: 'vm' },
  { name: 'chromium', pkg: 'chromium', need: 'test', path: '/usr/bin/chromium' },
  { name: 'python3', pkg: 'python3', need: 'test' },
  { name: 'git', pkg: 'git', need: 'test' },
  { name: 'useradd', pkg: 'passwd', need: 'test' },
  { name: 'userdel', pkg: 'passwd', need: 'test' },
];

/** Where `name` would be run from: an absolute path or the first match on PATH; null if none. */
export function whichSync(name: string, envPath = process.env.PATH ?? ''): string | null {
  const candidates = name.includes('/')
    ? [name]
    : envPath
        .split(delimiter)
        .filter(Boolean)
        .map((d) => join(d, name));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch {
      // not here
    }
  }
  return null;
}

/**
 * `envPath` with the sbin folders appended: the image recipe runs root's sbin tools (depmod,
 * mkfs.ext4) for a normal user too, whose PATH on Debian does not list them. The recipe is run
 * with this PATH, and the check before it looks the tools up the same way.
 */
export function withSbin(envPath: string | undefined): string {
  return [envPath, '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean).join(delimiter);
}

/** The tools for these needs that cannot be found on this machine (root needs no uidmap). */
export function missingHostTools(
  needs: readonly HostToolNeed[],
  opts: { root?: boolean; envPath?: string } = {},
): HostTool[] {
  const root = opts.root ?? process.getuid?.() === 0;
  const wanted = new Set<HostToolNeed>(needs);
  if (wanted.has('image') && !root) wanted.add('image-rootless');
  const envPath = withSbin(opts.envPath ?? process.env.PATH);
  return HOST_TOOLS.filter((t) => wanted.has(t.need) && !whichSync(t.path ?? t.name, envPath));
}

/** The command that installs these packages on Debian or Ubuntu. */
export function installCommand(pkgs: readonly string[], root = process.getuid?.() === 0): string {
  const unique = [...new Set(pkgs)];
  return `${root ? '' : 'sudo '}apt-get install --no-install-recommends ${unique.join(' ')}`;
}

/**
 * One sentence naming every missing tool with its package and the command that installs them,
 * e.g. "depmod (package kmod) is missing: run `sudo apt-get install --no-install-recommends kmod`.";
 * null when nothing is missing.
 */
export function describeMissingTools(missing: readonly HostTool[], what: string): string | null {
  if (missing.length === 0) return null;
  const names = missing.map((t) => `${t.name} (package ${t.pkg})`);
  const list =
    names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} and ${names.at(-1)!}`;
  const verb = names.length === 1 ? 'is' : 'are';
  return `${what} needs ${list}, which ${verb} missing: run \`${installCommand(missing.map((t) => t.pkg))}\` (or \`./scripts/setup.sh\`).`;
}
