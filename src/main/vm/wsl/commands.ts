/**
 * Pure builders for everything the WSL backend asks wsl.exe to do: the distro's /etc/wsl.conf,
 * the import/terminate/unregister argv, the drvfs mounts of granted folders and the agent's
 * launch. Kept pure so they can be tested on Linux; only backend.ts runs them.
 */
import { shareMode, type ShareSpec } from '../backend.js';
import { isValidShareName } from '../qemu/args.js';
import { REVIEW_OVERLAY_OPTIONS, reviewLayerDir } from '../review.js';

/** The unprivileged account commands run as inside the distro (created by {@link setupScript}). */
export const SANDBOX_UID = 1000;
/** Where the agent lives in the root filesystem (same image as the QEMU guest). */
export const AGENT_PATH = '/usr/local/bin/paddock-agent';
/** Where {@link setupScript} installs the stdio relay (relay.ts) inside the distro. */
export const RELAY_PATH = '/usr/local/lib/paddock/relay.py';
/** Port of the in-guest proxy forwarder (HTTP_PROXY inside the sandbox). */
export const FORWARDER_PORT = 3128;

const DISTRO_ID = /^[A-Za-z0-9][A-Za-z0-9-]{0,47}$/;

/** The WSL distro name for a sandbox id: `Paddock-<id>`. */
export function distroName(id: string): string {
  if (!DISTRO_ID.test(id)) throw new Error(`Bad sandbox id "${id}"`);
  return `Paddock-${id}`;
}

/**
 * /etc/wsl.conf for a Paddock distro. SECURITY: without these, WSL mounts every Windows drive
 * under /mnt, lets Linux run Windows binaries (interop) and puts the Windows PATH in the
 * distro's PATH, so the sandbox would see the whole machine.
 */
export function wslConf(): string {
  return [
    '# Written by Paddock: this distro is a sandbox; see src/main/vm/wsl/commands.ts.',
    '[automount]',
    'enabled = false',
    'mountFsTab = false',
    '',
    '[interop]',
    'enabled = false',
    'appendWindowsPath = false',
    '',
    '[network]',
    'generateResolvConf = false',
    'generateHosts = false',
    'hostname = paddock',
    '',
    '[boot]',
    'systemd = false',
    '',
    '[user]',
    'default = root',
    '',
  ].join('\n');
}

/** `wsl --import <distro> <dir> <rootfs.tar> --version 2`. */
export function importArgv(distro: string, installDir: string, rootfsTar: string): string[] {
  for (const p of [installDir, rootfsTar]) checkWindowsPath(p);
  return ['--import', distro, installDir, rootfsTar, '--version', '2'];
}

/** `wsl --terminate <distro>`: stops the distro (its mounts and processes go with it). */
export function terminateArgv(distro: string): string[] {
  return ['--terminate', distro];
}

/** `wsl --unregister <distro>`: deletes the distro and its disk. */
export function unregisterArgv(distro: string): string[] {
  return ['--unregister', distro];
}

/** `wsl --export <distro> <file.tar>`: the distro's filesystem, for a checkpoint. */
export function exportArgv(distro: string, tarPath: string): string[] {
  checkWindowsPath(tarPath);
  return ['--export', distro, tarPath];
}

/**
 * Runs argv as root in the distro without the distro's login shell interpreting it
 * (`--exec`), so no argument is ever parsed by a shell we did not choose.
 */
export function execArgv(distro: string, argv: string[]): string[] {
  return ['-d', distro, '-u', 'root', '--exec', ...argv];
}

/**
 * Checks a Windows path handed to wsl.exe or drvfs. SECURITY: a quote, newline or NUL could
 * break out of the quoting below or of wsl.exe's command line; `..` could walk out of a grant.
 */
export function checkWindowsPath(p: string): string {
  if (/["'`\n\r\0]/.test(p)) {
    throw new Error(`The folder path ${JSON.stringify(p)} contains a quote or a line break.`);
  }
  const norm = p.replaceAll('/', '\\');
  if (!/^[A-Za-z]:\\/.test(norm)) {
    throw new Error(`The folder path "${p}" must be a full path on a drive, like C:\\Users\\me.`);
  }
  if (norm.split('\\').some((seg) => seg === '..')) {
    throw new Error(`The folder path "${p}" contains "..".`);
  }
  return norm.replace(/\\+$/, '') || norm;
}

// Splits setup's stdin (wsl.conf NUL relay) into its two files; no quotes, so it quotes simply.
const SPLIT_STDIN = [
  'import sys',
  'c, r = sys.stdin.buffer.read().split(b"\\0", 1)',
  'open("/etc/wsl.conf", "wb").write(c)',
  `open("${RELAY_PATH}", "wb").write(r)`,
].join('\n');

/** Quotes a word for /bin/sh: always single quotes, an embedded ' as '\''. */
export function shQuote(s: string): string {
  if (s.includes('\0')) throw new Error('A NUL byte cannot be passed to the shell.');
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

/**
 * The shell lines that mount one granted folder at /mnt/<name> with drvfs. A review grant is
 * mounted read-only below {@link reviewLayerDir} and /mnt/<name> is an overlay over it whose
 * upper layer is on the distro's own disk, as vm-images/init does in the QEMU and Apple guests
 * (`userxattr`: commands, and so the listing, run as uid 1000, which cannot read trusted.*).
 * SECURITY: `ro` is enforced by the distro's kernel (the WSL utility VM), not by the Windows
 * host as QEMU and Apple do it; it holds because commands run without root or capabilities
 * (see {@link launchScript}), so they cannot remount.
 */
export function drvfsMount(share: ShareSpec): string {
  if (!isValidShareName(share.name)) throw new Error(`Bad share name "${share.name}"`);
  const src = checkWindowsPath(share.hostPath);
  const target = shQuote(`/mnt/${share.name}`);
  const mode = shareMode(share);
  const opts = (rw: 'ro' | 'rw') => `${rw},metadata,uid=${SANDBOX_UID},gid=${SANDBOX_UID}`;
  if (mode !== 'rv') {
    return `mkdir -p ${target} && mount -t drvfs ${shQuote(src)} ${target} -o ${opts(mode)}`;
  }
  const layer = reviewLayerDir(share.name);
  const [lower, upper, work] = ['lower', 'upper', 'work'].map((d) => shQuote(`${layer}/${d}`));
  const overlay = `lowerdir=${layer}/lower,upperdir=${layer}/upper,workdir=${layer}/work,${REVIEW_OVERLAY_OPTIONS},userxattr`;
  return [
    `mkdir -p ${lower} ${upper} ${work} ${target}`,
    `mount -t drvfs ${shQuote(src)} ${lower} -o ${opts('ro')}`,
    // The overlay's root takes its owner and mode from the upper layer's root.
    `chown "$(stat -c %u:%g ${lower})" ${upper}`,
    `chmod "$(stat -c %a ${lower})" ${upper}`,
    `mount -t overlay overlay ${target} -o ${shQuote(overlay)}`,
  ].join(' && ');
}

/**
 * Run once after import, as root, with stdin = `<wsl.conf>` NUL `<relay source>`: writes
 * /etc/wsl.conf and the relay, and creates the unprivileged `paddock` account. The distro must
 * be terminated afterwards for wsl.conf to apply. (A file rather than `python3 -c SOURCE` keeps
 * wsl.exe's Windows command line short and free of quotes.)
 */
export function setupScript(): string {
  const u = SANDBOX_UID;
  return [
    'set -eu',
    `mkdir -p ${shQuote(RELAY_PATH.slice(0, RELAY_PATH.lastIndexOf('/')))}`,
    `python3 -c ${shQuote(SPLIT_STDIN)}`,
    `grep -q '^paddock:' /etc/group || echo 'paddock:x:${u}:' >> /etc/group`,
    `grep -q '^paddock:' /etc/passwd || echo 'paddock:x:${u}:${u}:Paddock:/home/paddock:/bin/bash' >> /etc/passwd`,
    `mkdir -p /home/paddock && chown ${u}:${u} /home/paddock`,
  ].join('\n');
}

/**
 * The script run (as root, via {@link execArgv} and /bin/sh -c) each time the sandbox starts:
 * mount the grants, then start the agent behind the stdio relay in fresh network, pid and mount
 * namespaces, with root dropped.
 *
 * SECURITY, and why this is weaker than the QEMU/Apple backends: WSL2 always gives the distro a
 * NIC, and all of a person's WSL distros share one utility VM and one network namespace, so we
 * cannot remove the NIC (and must not take eth0 down: that would cut the person's other
 * distros). Instead the agent runs in a new network namespace that has only loopback; the guest's
 * forwarder on 127.0.0.1:3128 still reaches the host's egress proxy through the channel. Root in
 * the distro could leave that namespace and mount any Windows drive (drvfs), so commands run as
 * uid 1000 with no capabilities and no_new_privs (setpriv). A kernel bug in the shared utility VM
 * would still expose the person's other distros; QEMU and Apple give each sandbox its own VM.
 */
export function launchScript(shares: ShareSpec[]): string {
  const names = new Set<string>();
  for (const s of shares) {
    if (names.has(s.name)) throw new Error(`Two shares are named "${s.name}"`);
    names.add(s.name);
  }
  return [
    'set -eu',
    ...shares.map(drvfsMount),
    `exec ${launchArgv(['python3', RELAY_PATH]).map(shQuote).join(' ')}`,
  ].join('\n');
}

/**
 * The agent's launch after the mounts (also what the unit test runs on Linux, as root).
 * `relay` is how to run relay.ts's program: `['python3', RELAY_PATH]` in the distro.
 */
export function launchArgv(relay: string[], agentPath = AGENT_PATH): string[] {
  return [
    'unshare',
    // SECURITY: a new network namespace holds only loopback (no eth0); new pid and mount
    // namespaces keep commands from reaching the distro's other processes and /proc.
    '--net',
    '--pid',
    '--mount',
    '--fork',
    '--mount-proc',
    '--',
    ...relay,
    '--uid',
    String(SANDBOX_UID),
    '--listen-port',
    String(FORWARDER_PORT),
    '--',
    agentPath,
  ];
}
