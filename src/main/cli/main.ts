import { Command, CommanderError } from 'commander';
import { PaddockError } from '../../shared/result.js';
import { registerArtifacts } from './artifacts-command.js';
import { registerAutomations } from './automations-command.js';
import { registerChanges } from './changes-command.js';
import { registerDaemon } from './daemon-command.js';
import { registerDoctor } from './doctor-command.js';
import { registerExec } from './exec-command.js';
import { registerImage } from './image-command.js';
import { registerRun } from './run-command.js';
import { registerSecrets } from './secrets-command.js';
import { registerServe } from './serve-command.js';

/**
 * The `paddock` command: the same core as the app, without Electron. Each subcommand lives in its
 * own file and registers itself here.
 */
export function buildProgram(): Command {
  const program = new Command()
    .name('paddock')
    .description('A general agent whose every command runs in a sandboxed Linux VM.')
    .version('0.1.0')
    .enablePositionalOptions()
    .showHelpAfterError()
    .configureOutput({ outputError: (str, write) => write(str) });
  registerDoctor(program);
  registerServe(program);
  registerExec(program);
  registerImage(program);
  registerRun(program);
  registerAutomations(program);
  registerDaemon(program);
  registerArtifacts(program);
  registerChanges(program);
  registerSecrets(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram().exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode;
    if (e instanceof PaddockError) {
      process.stderr.write(`paddock: ${e.message}\n`);
      return 1;
    }
    process.stderr.write(`paddock: ${(e as Error).stack ?? String(e)}\n`);
    return 1;
  }
}
