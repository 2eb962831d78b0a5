import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The data folder: PADDOCK_HOME, or the platform's app-data folder (the same place Electron's
 * `userData` points to, so the CLI and the app share one database).
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
      return path.join(env.XDG_CONFIG_HOME ?? path.join(home, '.config'), 'Paddock');
  }
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
