import type { Command } from 'commander';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { PaddockError } from '../../shared/result.js';
import { dataDir } from '../platform/app-paths.js';
import { createCore, type Core } from '../core/core.js';
import { checkAllowlists } from '../core/sessions.js';
import { VmGoneError } from '../vm/backend.js';
import { parseFolderArg, resolveGrants } from '../vm/grants.js';
import { QemuBackend } from '../vm/qemu/backend.js';
import { WarmHandoff } from '../vm/qemu/warm-handoff.js';
import { Sandbox } from '../vm/sandbox.js';
import type { WarmSpec } from '../vm/warm-pool.js';
import { imageOrBuild } from './image-build-ui.js';
import { collect } from './pending-commands.js';

/** Exit code when Paddock itself (not the command) failed, like `docker run`'s 125. */
export const EXEC_FAILED = 125;

interface ExecOptions {
  folder: string[];
  allowHost: string[];
  timeout?: string;
  memory?: string;
  cpus?: string;
  keepWarm?: boolean;
  yes?: boolean;
}

function positiveInt(value: string | undefined, flag: string, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > max) {
    throw new PaddockError(
      'BAD_OPTION',
      `${flag} must be a number from 1 to ${max}, not ${value}.`,
    );
  }
  return n;
}

/**
 * `paddock exec`: one command in a sandbox VM with the granted folders, its output streamed, its
 * exit code returned (124 on --timeout, as timeout(1) does). It takes the warm VM an earlier
 * `paddock exec --keep-warm` left for the same spec when there is one, else boots a VM.
 */
export function registerExec(program: Command): void {
  program
    .command('exec')
    .description('Run one command in a fresh sandbox VM with the given folders')
    .option(
      '--folder <path[:ro|:direct|:review]>',
      'grant a folder (repeatable); the first is the working folder. :direct (the default) writes to the folder; :review keeps the command’s writes in the VM; :ro is read-only',
      collect,
      [],
    )
    .option(
      '--allow-host <host>',
      'allow network access to a host, *.domain or host:port (repeatable)',
      collect,
      [],
    )
    .option('--timeout <s>', 'kill the command after this many seconds (exit code 124)')
    .option('--memory <mb>', 'VM memory in MB')
    .option('--cpus <n>', 'VM cpus')
    .option(
      '--keep-warm',
      'afterwards, leave one fresh VM booted for the same folders and sizes, for the next exec',
    )
    .option('--yes', 'build the VM image first without asking, if it is missing')
    .argument('<cmd...>', 'the command and its arguments, after --')
    .passThroughOptions()
    .action(async (cmd: string[], opts: ExecOptions) => {
      process.exitCode = await runExec(cmd, opts);
    });
}

async function runExec(cmd: string[], opts: ExecOptions): Promise<number> {
  const home = dataDir();
  const timeoutS = positiveInt(opts.timeout, '--timeout', 7 * 24 * 3600);
  const memoryArg = positiveInt(opts.memory, '--memory', 65536);
  const cpusArg = positiveInt(opts.cpus, '--cpus', 64);
  // The same core as every host; a command runs no scheduler and no agent.
  const core: Core = createCore({ dataDir: home, host: 'cli', runScheduler: false });
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-'));
  // In the data folder, not the temp folder: a warm VM's layer is renamed into it, which needs
  // the same filesystem.
  const sessionDir = path.join(home, 'sessions', `exec-${path.basename(runDir)}`);
  try {
    const { store } = core;
    const settings = store.settings.get();
    const memoryMb = memoryArg ?? settings.vmMemoryMb;
    const cpus = cpusArg ?? settings.vmCpus;
    const shares = resolveGrants(
      opts.folder.map((f) => parseFolderArg(f)),
      { dataDir: home },
    );
    checkAllowlists(opts.allowHost);
    const image = await imageOrBuild(home, Boolean(opts.yes));
    const backend = core.backend.backend;
    // Keeping a VM warm across processes is QEMU's (a detached QEMU another process attaches to).
    const handoff =
      backend instanceof QemuBackend ? new WarmHandoff({ backend, dataDir: home }) : null;
    const warmSpec: WarmSpec = { imageDir: image.dir, shares, cpus, memoryMb, accel: 'auto' };
    const sandbox: Sandbox = new Sandbox({
      backend,
      ...(handoff ? { pool: handoff } : {}),
      imageDir: image.dir,
      sessionDir,
      runDir,
      shares,
      allowHosts: opts.allowHost,
      memoryMb,
      cpus,
      onEgress: (d) => store.egressLog.record({ ...d, sessionId: sandbox.id }),
    });
    return await execInSandbox(sandbox, cmd, shares, timeoutS, async () => {
      // After the stop, so the next VM's boot does not compete with this one's shutdown.
      if (opts.keepWarm && !handoff) {
        process.stderr.write('paddock: --keep-warm works with the QEMU backend only.\n');
      } else if (opts.keepWarm && handoff) {
        await handoff.leave(warmSpec).catch((e: Error) => {
          process.stderr.write(`paddock: could not keep a VM warm: ${e.message.split('\n')[0]}\n`);
        });
      }
    });
  } finally {
    await core.close();
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.rmSync(sessionDir, { recursive: true, force: true });
  }
}

/** Runs the command with the terminal's streams, then stops the VM and calls `afterStop`. */
async function execInSandbox(
  sandbox: Sandbox,
  cmd: string[],
  shares: { name: string }[],
  timeoutS: number | undefined,
  afterStop: () => Promise<void>,
): Promise<number> {
  const stop = () => void sandbox.stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const handle = await sandbox.exec({
      argv: cmd,
      cwd: shares[0] ? `/mnt/${shares[0].name}` : '/root',
      stdin: !process.stdin.isTTY,
      ...(timeoutS ? { timeoutMs: timeoutS * 1000 } : {}),
    });
    const piping = [
      pipeline(handle.stdout, process.stdout, { end: false }),
      pipeline(handle.stderr, process.stderr, { end: false }),
    ];
    if (!process.stdin.isTTY) {
      pipeline(process.stdin, handle.stdin).catch(() => undefined);
    } else {
      handle.stdin.end();
    }
    const [result] = await Promise.all([handle.result, ...piping]);
    // What the boundary refused or undid (protected files, exec bits), said to the person.
    for (const f of result.boundary ?? []) process.stderr.write(`paddock: ${f.message}\n`);
    return result.exitCode;
  } catch (e) {
    if (e instanceof VmGoneError) {
      process.stderr.write(`paddock: ${e.message}\n`);
      return EXEC_FAILED;
    }
    throw e;
  } finally {
    process.stdin.destroy();
    await sandbox.stop();
    await afterStop();
  }
}
