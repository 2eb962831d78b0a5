import { Command } from 'commander';
import { PaddockError } from '../../shared/result.js';

/**
 * Subcommands whose options are fixed by the design but whose engine lands in a later issue. They
 * parse their arguments now and say plainly that the feature is not there yet.
 */
export function registerPending(program: Command): void {
  program
    .command('image')
    .description('Build or inspect the guest VM image')
    .addCommand(
      pending('build', 'Build the guest image into the data folder').option('--force', 'rebuild'),
    )
    .addCommand(pending('status', 'Show the current image and its manifest'));

  program
    .command('exec')
    .description('Run one command in a fresh sandbox VM with the given folders')
    .option('--folder <path[:ro]>', 'grant a folder (repeatable)', collect, [])
    .option('--allow-host <host>', 'allow network access to a host (repeatable)', collect, [])
    .option('--timeout <s>', 'per-command timeout in seconds')
    .option('--memory <mb>', 'VM memory in MB')
    .option('--cpus <n>', 'VM cpus')
    .argument('<cmd...>', 'the command and its arguments, after --')
    .action(notYet('exec', 'the sandbox'));

  program
    .command('run')
    .description('Run an agent session on a prompt without the GUI')
    .option('--folder <path[:ro]>', 'grant a folder (repeatable)', collect, [])
    .option('--allow-host <host>', 'allow network access to a host (repeatable)', collect, [])
    .option('--model <model>', 'model to use')
    .option('--approve <mode>', 'auto or ask', 'auto')
    .option('--yes', 'allow network requests outside the allowlist without asking')
    .option('--json', 'one JSON event per line')
    .argument('<prompt>', 'what you want done')
    .action(notYet('run', 'the agent'));

  const automations = program.command('automations').description('Scheduled tasks and their inbox');
  for (const [name, desc] of [
    ['add', 'Add an automation'],
    ['list', 'List automations'],
    ['show', 'Show one automation'],
    ['next', 'Show the next run times'],
    ['pause', 'Pause an automation'],
    ['resume', 'Resume an automation'],
    ['remove', 'Remove an automation'],
    ['run-now', 'Run an automation now'],
    ['runs', 'List runs'],
    ['inbox', 'Show the inbox'],
  ] as const) {
    automations.addCommand(pending(name, desc).option('--json', 'JSON output'));
  }

  program
    .command('daemon')
    .description('Run the automation scheduler without the GUI')
    .action(notYet('daemon', 'automations'));
}

function pending(name: string, description: string): Command {
  return new Command(name)
    .description(description)
    .allowExcessArguments(true)
    .action(notYet(name, 'this feature'));
}

function notYet(name: string, what: string) {
  return () => {
    throw new PaddockError(
      'NOT_AVAILABLE',
      `\`paddock ${name}\` is not available in this build yet (${what} is still being built).`,
    );
  };
}

/** Commander's accumulator for repeatable options. */
export function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}
