import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import path from 'node:path';

export const repoRoot = path.resolve(import.meta.dirname, '../..');

/** Runs the `paddock` CLI from source (no build needed), as a person would run the command. */
export function paddock(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  input?: string,
): SpawnSyncReturns<string> {
  return spawnSync(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'src/main/cli/entry.ts'), ...args],
    {
      cwd: repoRoot,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      input,
      timeout: 60_000,
    },
  );
}
