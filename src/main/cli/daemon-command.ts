import { Option, type Command } from 'commander';
import { PaddockError } from '../../shared/result.js';
import { formatSlot } from '../automations/schedule.js';
import type { SchedulerEvent } from '../automations/scheduler.js';
import { createCore } from '../core/core.js';
import { dataDir } from '../platform/app-paths.js';
import { requireApiKeyEnv } from './terminal.js';

interface DaemonOptions {
  concurrency: string;
  json?: boolean;
  leaseMs?: string;
  maxSleepMs?: string;
  graceMs?: string;
}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new PaddockError('BAD_OPTION', `${flag} must be a whole number from 1, not ${value}.`);
  return n;
}

function describe(e: SchedulerEvent): string {
  switch (e.type) {
    case 'run-started':
      return `started ${e.run.id} of “${e.automation.name}” for ${formatSlot(e.run.slotAt, e.automation.tzid)} (attempt ${e.run.attempt})`;
    case 'run-finished':
      return `${e.run.status} ${e.run.id} of “${e.automation.name}”: ${e.summary}`;
    case 'missed':
      return `missed ${e.run.id} of “${e.automation.name}”: ${e.run.error}`;
    case 'interrupted':
      return `interrupted ${e.run.id}${e.willRetry ? ' (will retry)' : ''}`;
    case 'clock-jump':
      return `the clock jumped by ${Math.round(e.deltaMs / 1000)} s; catching up`;
    case 'error':
      return `error: ${e.message}`;
  }
}

/**
 * `paddock daemon`: the scheduler without the GUI. Prints one line when ready, logs what it does,
 * and on SIGTERM/SIGINT stops cleanly (runs in progress are recorded as interrupted).
 */
export function registerDaemon(program: Command): void {
  program
    .command('daemon')
    .description('Run the automation scheduler without the GUI')
    .option('--concurrency <n>', 'runs at once across every Paddock on this database', '1')
    .option('--json', 'log one JSON object per line')
    .addOption(new Option('--lease-ms <ms>').hideHelp())
    .addOption(new Option('--max-sleep-ms <ms>').hideHelp())
    .addOption(new Option('--grace-ms <ms>').hideHelp())
    .action(async (o: DaemonOptions) => {
      requireApiKeyEnv('before starting the daemon');
      const home = dataDir();
      const log = (line: string, e?: SchedulerEvent) =>
        process.stdout.write(
          o.json
            ? JSON.stringify({
                at: new Date().toISOString(),
                message: line,
                ...(e ? eventJson(e) : {}),
              }) + '\n'
            : `${new Date().toISOString()} ${line}\n`,
        );
      const leaseMs = int(o.leaseMs, '--lease-ms');
      const maxSleepMs = int(o.maxSleepMs, '--max-sleep-ms');
      const graceMs = int(o.graceMs, '--grace-ms');
      // The same core as the app and `paddock serve`, with its scheduler running; another
      // process's writes wake it at once (the core watches the database).
      const core = createCore({
        dataDir: home,
        host: 'cli',
        scheduler: {
          concurrency: int(o.concurrency, '--concurrency') ?? 1,
          ...(leaseMs ? { leaseMs } : {}),
          ...(maxSleepMs ? { maxSleepMs } : {}),
          ...(graceMs ? { graceMs } : {}),
          onEvent: (e) => log(describe(e), e),
        },
      });
      log(
        `paddock daemon ready (pid ${process.pid}, ${core.automations.scheduler.owner}, ${home})`,
      );
      await new Promise<void>((resolve) => {
        const stop = (sig: string) => {
          log(`${sig}: stopping`);
          void core.close().then(() => {
            log('stopped');
            resolve();
          });
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
    });
}

function eventJson(e: SchedulerEvent): Record<string, unknown> {
  switch (e.type) {
    case 'run-started':
    case 'run-finished':
    case 'missed':
      return {
        event: e.type,
        runId: e.run.id,
        automationId: e.automation.id,
        status: e.run.status,
        slotAt: e.run.slotAt,
      };
    case 'interrupted':
      return { event: e.type, runId: e.run.id, willRetry: e.willRetry };
    case 'clock-jump':
      return { event: e.type, deltaMs: e.deltaMs };
    case 'error':
      return { event: e.type };
  }
}
