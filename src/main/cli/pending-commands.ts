import { Command } from 'commander';
import { PaddockError } from '../../shared/result.js';

/**
 * Subcommands whose options are fixed by the design but whose engine lands in a later issue. They
 * parse their arguments now and say plainly that the feature is not there yet.
 */
export function registerPending(program: Command): void {
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
