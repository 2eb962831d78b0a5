import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The data folder: PADDOCK_HOME, or the platform's app-data folder (the same place Electron's
 * `userData` points to, so the CLI and the app share one database). The path as configured, not
 * resolved: it may be reached through a symlink, so checks against it resolve it themselves.
 */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.PADDOCK_HOME) return path.resolve(env.PADDOCK_HOME);
  const home = os.homedir();
  switch (process.platform) {
    case 'darwin':
      return path.join(home, 'Library', 'Application Support', 'Paddock');
    case 'win32':
      return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'Paddock');
    default:
      return path.join(configHomes(env, home)[0]!, 'Paddock');
  }
}

/**
 * The folders where this person's applications keep their settings (and often saved logins):
 * $XDG_CONFIG_HOME (when set), ~/.config, and the macOS and Windows equivalents. Grants refuse
 * them. The first one is where Paddock's own data folder goes on Linux.
 */
export function configHomes(env: NodeJS.ProcessEnv = process.env, home = os.homedir()): string[] {
  const xdg =
    env.XDG_CONFIG_HOME && path.isAbsolute(env.XDG_CONFIG_HOME) ? env.XDG_CONFIG_HOME : '';
  const list = [
    xdg,
    path.join(home, '.config'),
    path.join(home, 'Library'),
    path.join(home, 'Library', 'Application Support'),
    path.join(home, 'AppData'),
    path.join(home, 'AppData', 'Roaming'),
    path.join(home, 'AppData', 'Local'),
    env.APPDATA ?? '',
  ];
  return [...new Set(list.filter((p) => p !== ''))];
}

let cachedRoot: string | undefined;

/**
 * The folder holding Paddock's package.json (a checkout, or the unpacked app), found by walking up
 * from this module so it works from source (tsx), from dist/ and from inside the packaged app.
 */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === 'paddock') {
          return (cachedRoot = dir);
        }
      } catch {
        // keep walking
      }
    }
    const up = path.dirname(dir);
    if (up === dir)
      throw new Error(
        'Could not find Paddock’s package.json above ' + fileURLToPath(import.meta.url),
      );
    dir = up;
  }
}
