import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PaddockError } from '../../shared/result.js';
import { isSystemFolder, within } from '../vm/grants.js';

/** One listing of the web host's folder browser. */
export interface FolderListing {
  path: string;
  parent: string | null;
  folders: { name: string; path: string }[];
}

/**
 * Lists the folders (never files) inside `dir` on the serving machine, starting at the home
 * folder. Hidden folders and system folders are left out, and a path into a system folder is
 * refused, so browsing cannot wander into /etc or /proc.
 */
export function browseFolders(
  dir: string | undefined,
  home: string = os.homedir(),
  dataDir?: string,
): FolderListing {
  const wanted = dir && dir.trim() ? dir.trim() : home;
  const expanded =
    wanted === '~' || wanted.startsWith('~/') ? path.join(home, wanted.slice(1)) : wanted;
  let real: string;
  try {
    real = fs.realpathSync(path.resolve(expanded));
  } catch {
    throw new PaddockError('NOT_FOUND', `The folder ${wanted} does not exist.`);
  }
  if (!fs.statSync(real).isDirectory())
    throw new PaddockError('GRANT_NOT_FOLDER', `${wanted} is a file, not a folder.`);
  // SECURITY: the picker never opens a system folder, even when asked for one by path.
  if (isSystemFolder(real))
    throw new PaddockError(
      'GRANT_REFUSED',
      `${real} is a system folder; Paddock does not open it.`,
    );
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(real, { withFileTypes: true });
  } catch (e) {
    throw new PaddockError(
      'FORBIDDEN',
      `Paddock cannot read ${real} (${(e as NodeJS.ErrnoException).code ?? 'error'}).`,
    );
  }
  const folders: { name: string; path: string }[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    const full = path.join(real, e.name);
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      try {
        isDir = fs.statSync(full).isDirectory();
      } catch {
        isDir = false;
      }
    }
    if (!isDir) continue;
    let target = full;
    try {
      target = fs.realpathSync(full);
    } catch {
      continue;
    }
    if (isSystemFolder(target)) continue;
    if (dataDir && within(target, path.resolve(dataDir))) continue;
    folders.push({ name: e.name, path: full });
  }
  folders.sort((a, b) => a.name.localeCompare(b.name));
  const up = path.dirname(real);
  return { path: real, parent: up === real ? null : up, folders: folders.slice(0, 2000) };
}

/**
 * Files under `root` modified at or after `since` (ms), as paths relative to root: how a task's
 * changes made by shell commands are found. Bounded, so a huge folder cannot stall the app.
 */
export function filesModifiedSince(root: string, since: number, maxEntries = 20_000): string[] {
  const out: string[] = [];
  let seen = 0;
  const walk = (dir: string) => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      if (++seen > maxEntries || out.length >= 500) return;
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name === '.git' || e.name === 'node_modules') continue;
        walk(full);
      } else if (e.isFile()) {
        try {
          if (fs.statSync(full).mtimeMs >= since) out.push(path.relative(root, full));
        } catch {
          // vanished while we looked
        }
      }
    }
  };
  walk(root);
  return out.map((p) => p.split(path.sep).join('/'));
}
