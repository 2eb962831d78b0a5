import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { PaddockError } from '../../shared/result.js';
import { askCore } from './ask-core.js';

/** `--version N` as a positive whole number, or a sentence saying what was wrong. */
function versionOpt(v: string | undefined): { version?: number } {
  if (v === undefined) return {};
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new PaddockError('BAD_OPTION', `--version must be a version number (1, 2, …), not ${v}.`);
  return { version: n };
}

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16);
}

/** `paddock artifacts list|show|export`: what agents made, printed or saved as a standalone file. */
export function registerArtifacts(program: Command): void {
  const cmd = program
    .command('artifacts')
    .description('List, print and export the artifacts agents made (create_artifact).');

  cmd
    .command('list')
    .description("List artifacts: one task's in the order made, or every one, newest first.")
    .option('--task <id>', 'only the artifacts of this task')
    .option('--json', 'print JSON')
    .action(async (o: { task?: string; json?: boolean }) => {
      const { artifacts } = await askCore('artifacts:list', o.task ? { taskId: o.task } : {});
      if (o.json) {
        process.stdout.write(JSON.stringify(artifacts) + '\n');
        return;
      }
      if (artifacts.length === 0) {
        process.stdout.write(o.task ? 'This task made no artifacts.\n' : 'No artifacts yet.\n');
        return;
      }
      for (const a of artifacts)
        process.stdout.write(
          `${a.id}  ${a.kind.padEnd(8)}  v${String(a.latestVersion).padEnd(3)}  ${when(a.updatedAt)}  ${a.title}\n`,
        );
    });

  cmd
    .command('show')
    .description('Print an artifact’s content (the newest version unless --version).')
    .argument('<id>', 'the artifact, art_…')
    .option('--version <n>', 'this version instead of the newest')
    .action(async (id: string, o: { version?: string }) => {
      const a = await askCore('artifacts:get', { id, ...versionOpt(o.version) });
      process.stdout.write(a.content.endsWith('\n') ? a.content : `${a.content}\n`);
    });

  cmd
    .command('export')
    .description(
      'Write an artifact as one standalone HTML file that renders it offline (libraries inlined, no network).',
    )
    .argument('<id>', 'the artifact, art_…')
    .argument('<file>', 'where to write the .html file')
    .option('--version <n>', 'this version instead of the newest')
    .action(async (id: string, file: string, o: { version?: string }) => {
      const { html } = await askCore('artifacts:export', { id, ...versionOpt(o.version) });
      const target = path.resolve(file);
      try {
        fs.writeFileSync(target, html);
      } catch (e) {
        throw new PaddockError(
          'WRITE_FAILED',
          `Could not write ${target}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}.`,
        );
      }
      process.stderr.write(`Wrote ${target} (${Buffer.byteLength(html)} bytes).\n`);
    });
}
