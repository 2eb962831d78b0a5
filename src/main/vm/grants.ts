import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PaddockError } from '../../shared/result.js';
import { configHomes } from '../platform/app-paths.js';
import type { ShareSpec } from './backend.js';

/** Folders no task may ever be given, whatever the person types: the system's own. */
const SYSTEM_FOLDERS = [
  '/bin',
  '/boot',
  '/dev',
  '/etc',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/proc',
  '/run',
  '/sbin',
  '/snap',
  '/srv',
  '/sys',
  '/usr',
  '/var',
  '/opt',
  '/System',
  '/Library',
  '/Applications',
  '/private',
  '/Volumes',
  '/lost+found',
  '/cores',
  'C:\\Windows',
  'C:\\Program Files',
  'C:\\Program Files (x86)',
  'C:\\ProgramData',
];

/** Where temp folders live; under them a grant is fine even though /var and /private are not. */
const TEMP_ROOTS = [os.tmpdir(), '/tmp', '/var/tmp', '/private/tmp', '/private/var/folders'];

/**
 * Folders that hold people's home folders or other disks: sharing one shares every home or disk
 * in it. Their direct children are refused too where each is a whole home or a whole disk
 * ({@link HOME_PARENTS}, {@link DISK_PARENTS}).
 */
const HOME_CONTAINERS = [
  '/home',
  '/Users',
  '/mnt',
  '/media',
  '/run/media',
  '/var/home',
  '/export/home',
  '/net',
  '/Network',
  'C:\\Users',
];
/** Each folder directly inside these is somebody's whole home folder. */
const HOME_PARENTS = ['/home', '/Users', '/var/home', '/export/home', 'C:\\Users'];
/** Each folder directly inside these is a disk or a person's mounted disks. */
const DISK_PARENTS = ['/media', '/run/media'];

/**
 * The real path of `p` (every symlink resolved) even when it does not exist yet: the longest
 * existing ancestor is resolved and the rest appended. Both sides of every comparison go through
 * this, so a protected folder reached through a symlink is still recognised.
 */
export function realPathOf(p: string): string {
  const abs = path.resolve(p);
  const tail: string[] = [];
  for (let head = abs; ;) {
    try {
      return path.join(fs.realpathSync.native(head), ...tail);
    } catch {
      const up = path.dirname(head);
      if (up === head) return abs;
      tail.unshift(path.basename(head));
      head = up;
    }
  }
}

/** A protected folder as written and as resolved (both count: either may be what a grant names). */
function spellings(p: string): string[] {
  if (!path.isAbsolute(p)) return [p];
  const real = realPathOf(p);
  return real === p ? [p] : [p, real];
}

const resolvedLists = new Map<readonly string[], string[]>();
/** A list of protected folders with their resolved forms added (computed once per list). */
function resolvedList(list: readonly string[]): string[] {
  let out = resolvedLists.get(list);
  if (!out) {
    out = [...new Set(list.flatMap(spellings))];
    resolvedLists.set(list, out);
  }
  return out;
}

/** How a folder is granted: read-only, read-write straight to the folder, or staged for review. */
export type GrantMode = 'ro' | 'direct' | 'review';

/**
 * Parses the CLI form `PATH[:ro|:review|:direct]` (`:rw` is `:direct`) into a path and its
 * mode; a folder without a suffix gets `defaultMode` (review for agent runs, direct for exec).
 */
export function parseFolderArg(
  arg: string,
  defaultMode: 'review' | 'direct' = 'direct',
): { path: string; readOnly: boolean; review: boolean } {
  const m = /^(.*?)(?::(ro|rw|direct|review))?$/.exec(arg);
  const p = m?.[1] ?? arg;
  if (!p)
    throw new PaddockError(
      'BAD_GRANT',
      `--folder needs a path, as in --folder ~/Documents/report:ro.`,
    );
  const suffix = m?.[2];
  const mode: GrantMode =
    suffix === 'ro'
      ? 'ro'
      : suffix === 'rw' || suffix === 'direct'
        ? 'direct'
        : suffix === 'review'
          ? 'review'
          : defaultMode;
  return { path: p, readOnly: mode === 'ro', review: mode === 'review' };
}

/** Whether `child` is `parent` or below it (both resolved paths). */
export function within(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Whether `real` (a resolved path) is a system folder or inside one; folders under a temp root
 * are not. The one rule for grants and for the web host's folder browser.
 */
export function isSystemFolder(real: string): boolean {
  if (resolvedList(TEMP_ROOTS).some((t) => within(real, t) && real !== t)) return false;
  // SECURITY: compared with each system folder as written and as resolved (/etc → /private/etc).
  return resolvedList(SYSTEM_FOLDERS).some((sys) => within(real, sys));
}

/**
 * Why `real` (a resolved path) holds other people's homes or disks, or null: such a folder
 * itself, somebody's whole home folder, or one person's mounted disks.
 */
function holdsHomesOrDisks(real: string): string | null {
  if (resolvedList(HOME_CONTAINERS).includes(real))
    return 'it holds people’s home folders or other disks.';
  const parent = path.dirname(real);
  if (resolvedList(HOME_PARENTS).includes(parent)) return 'it is somebody’s whole home folder.';
  if (resolvedList(DISK_PARENTS).includes(parent))
    return 'it holds people’s home folders or other disks.';
  // WSL mounts each Windows drive at /mnt/<letter>: a whole disk.
  if (parent === '/mnt' && /^[a-z]$/i.test(path.basename(real)))
    return 'it is a whole disk (a Windows drive).';
  return null;
}

/**
 * Turns folders the person granted into VM shares: resolves real paths (so a symlink to /etc is
 * seen as /etc), refuses `/`, the home folder and anything holding it, system folders, folders
 * that hold homes or disks (/home, /Users, /mnt, /media, …), the applications' settings folders
 * (~/.config, $XDG_CONFIG_HOME, …) and Paddock's own data folder with anything holding it, and
 * names each `/mnt/<basename>` with a suffix on a clash. The first grant is the working folder.
 * Protected folders are resolved too, so a data folder reached through a symlink (PADDOCK_HOME,
 * a ~/.config that links elsewhere) is recognised whichever spelling the grant uses.
 */
export function resolveGrants(
  requests: { path: string; readOnly: boolean; review?: boolean | undefined }[],
  opts: { dataDir: string; home?: string; env?: NodeJS.ProcessEnv },
): ShareSpec[] {
  const homeGiven = opts.home ?? os.homedir();
  const home = realPathOf(homeGiven);
  // SECURITY: every protected folder as written and as resolved (both sides of each check).
  const dataDirs = [...new Set([path.resolve(opts.dataDir), realPathOf(opts.dataDir)])];
  const configDirs = [
    ...new Set(configHomes(opts.env ?? process.env, homeGiven).flatMap(spellings)),
  ];
  const used = new Set<string>();
  const shares: ShareSpec[] = [];

  for (const req of requests) {
    const expanded =
      req.path.startsWith('~/') || req.path === '~' ? path.join(home, req.path.slice(1)) : req.path;
    let real: string;
    try {
      // SECURITY: judge the folder the path really names, after every symlink.
      real = fs.realpathSync.native(path.resolve(expanded));
    } catch {
      throw new PaddockError(
        'GRANT_MISSING',
        `The folder ${req.path} does not exist; check the path and try again.`,
      );
    }
    if (!fs.statSync(real).isDirectory()) {
      throw new PaddockError(
        'GRANT_NOT_FOLDER',
        `${req.path} is a file, not a folder; grant the folder that contains it.`,
      );
    }
    const refuse = (why: string, instead = 'Grant a project folder inside it instead.') => {
      throw new PaddockError('GRANT_REFUSED', `Paddock will not share ${real}: ${why} ${instead}`);
    };
    if (real === path.parse(real).root) refuse('it is the root of the disk.');
    if (real === home) refuse('it is your whole home folder.');
    if (within(home, real)) refuse('it holds your home folder.');
    if (isSystemFolder(real)) refuse('it is a system folder.');
    // SECURITY: the data folder holds the database and the VM image; the agent must not reach
    // them, nor write into them (its own database, its automations).
    if (dataDirs.some((d) => within(real, d)))
      refuse('it is inside Paddock’s own data folder.', 'Grant a folder outside it instead.');
    if (dataDirs.some((d) => within(d, real))) refuse('it holds Paddock’s own data folder.');
    const homes = holdsHomesOrDisks(real);
    if (homes) refuse(homes);
    // SECURITY: applications keep their settings and saved logins there.
    if (configDirs.some((c) => within(c, real)))
      refuse(
        'it holds the settings of your applications (and often their saved logins).',
        'Grant the one folder the task needs instead.',
      );
    for (const s of shares) {
      if (within(real, s.hostPath) || within(s.hostPath, real)) {
        throw new PaddockError(
          'GRANT_OVERLAP',
          `${real} overlaps ${s.hostPath}, which is already granted; grant only one of them.`,
        );
      }
    }

    const base =
      path
        .basename(real)
        .replace(/[^A-Za-z0-9._-]/g, '_')
        .replace(/^\.+/, '_') || 'folder';
    let name = base;
    for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
    used.add(name);
    shares.push({
      hostPath: real,
      name,
      readOnly: req.readOnly,
      // A review grant's writes are staged in the VM; read-only has nothing to stage.
      ...(req.review && !req.readOnly ? { review: true } : {}),
    });
  }
  return shares;
}
