import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
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
      timeout: 120_000,
      maxBuffer: 64 * 1024 * 1024,
    },
  );
}

/** Like {@link paddock} but without blocking this process, for tests that also serve requests. */
export function paddockAsync(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { asUser?: string } = {},
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const argv = [
    process.execPath,
    '--import',
    'tsx',
    path.join(repoRoot, 'src/main/cli/entry.ts'),
    ...args,
  ];
  // As another user (root's tests of what a normal user can do), through runuser.
  const [cmd, ...rest] = opts.asUser ? ['runuser', '-u', opts.asUser, '--', ...argv] : argv;
  return new Promise((resolve) => {
    const proc = spawn(cmd!, rest, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}
