import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PaddockError } from '../../shared/result.js';
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

/** Parses the CLI form `PATH[:ro]` (also `:rw`) into a path and a read-only flag. */
export function parseFolderArg(arg: string): { path: string; readOnly: boolean } {
  const m = /^(.*?)(?::(ro|rw))?$/.exec(arg);
  const p = m?.[1] ?? arg;
  if (!p)
    throw new PaddockError(
      'BAD_GRANT',
      `--folder needs a path, as in --folder ~/Documents/report:ro.`,
    );
  return { path: p, readOnly: m?.[2] === 'ro' };
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
  if (TEMP_ROOTS.some((t) => within(real, t) && real !== t)) return false;
  return SYSTEM_FOLDERS.some((sys) => within(real, sys));
}

/**
 * Turns folders the person granted into VM shares: resolves real paths (so a symlink to /etc is
 * seen as /etc), refuses `/`, the home folder itself, system folders and Paddock's own data folder,
 * and names each `/mnt/<basename>` with a suffix on a clash. The first grant is the working folder.
 */
export function resolveGrants(
  requests: { path: string; readOnly: boolean }[],
  opts: { dataDir: string; home?: string },
): ShareSpec[] {
  const home = fs.realpathSync(opts.home ?? os.homedir());
  const dataDir = path.resolve(opts.dataDir);
  const used = new Set<string>();
  const shares: ShareSpec[] = [];

  for (const req of requests) {
    const expanded =
      req.path.startsWith('~/') || req.path === '~' ? path.join(home, req.path.slice(1)) : req.path;
    let real: string;
    try {
      // SECURITY: judge the folder the path really names, after every symlink.
      real = fs.realpathSync(path.resolve(expanded));
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
    const refuse = (why: string) => {
      throw new PaddockError(
        'GRANT_REFUSED',
        `Paddock will not share ${real}: ${why} Grant a project folder inside it instead.`,
      );
    };
    if (real === path.parse(real).root) refuse('it is the root of the disk.');
    if (real === home) refuse('it is your whole home folder.');
    if (isSystemFolder(real)) refuse('it is a system folder.');
    // SECURITY: the data folder holds the database and the VM image; the agent must not reach them.
    if (within(dataDir, real) || within(real, dataDir))
      refuse('it holds Paddock’s own data folder.');
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
    shares.push({ hostPath: real, name, readOnly: req.readOnly });
  }
  return shares;
}
