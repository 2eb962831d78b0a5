import { Option, type Command } from 'commander';
import { folderModeText } from '../../shared/app-contract.js';
import { SPEND_LIMIT_RULE, type ApplyChanges } from '../../shared/automations-contract.js';
import { PaddockError } from '../../shared/result.js';
import { describeUsage, formatCost } from '../../shared/usage.js';
import { formatSlot } from '../automations/schedule.js';
import {
  checkedSpendLimit,
  type AutomationService,
  type FolderInput,
} from '../automations/service.js';
import { createCore, type Core } from '../core/core.js';
import { secretNotFound } from '../core/secrets/service.js';
import { dataDir } from '../platform/app-paths.js';
import type { AutomationRow, FolderShare, MissedPolicy } from '../store/automations-repo.js';
import type { InboxItemRow } from '../store/inbox-repo.js';
import type { RunRow } from '../store/runs-repo.js';
import type { Store } from '../store/store.js';
import { collect } from './pending-commands.js';
import { requireApiKeyEnv } from './terminal.js';
import { parseFolderArg } from '../vm/grants.js';

interface JsonOpt {
  json?: boolean;
}

function out(json: boolean | undefined, value: unknown, human: () => string): void {
  process.stdout.write(json ? JSON.stringify(value) + '\n' : human());
}

/**
 * Builds the core for one command (the same one the app and `paddock serve` build, without a
 * scheduler of its own: the running ones notice this command's writes) and closes it whatever
 * happens.
 */
async function withStore<T>(
  fn: (store: Store, svc: AutomationService, core: Core) => T | Promise<T>,
): Promise<T> {
  const core = createCore({ dataDir: dataDir(), host: 'cli', runScheduler: false });
  try {
    return await fn(core.store, core.automations.service, core);
  } finally {
    await core.close();
  }
}

function when(at: number | null, tz: string): string {
  return at === null ? '—' : formatSlot(at, tz);
}

/** A folder as `--folder` takes it: `PATH:ro`, `PATH:review` or `PATH:direct`. */
function folderArg(f: FolderShare): string {
  return `${f.hostPath}:${f.readOnly ? 'ro' : f.review ? 'review' : 'direct'}`;
}

/** `--folder PATH[:ro|:review|:direct]`, a folder without a mode given none (see below). */
function folderInput(arg: string): FolderInput {
  const f = parseFolderArg(arg, 'review');
  // No suffix: `add` stages for review; `edit` keeps the mode of a folder it already has.
  const given = parseFolderArg(arg, 'direct').review === f.review;
  return {
    hostPath: f.path,
    readOnly: f.readOnly,
    ...(f.readOnly || !given ? {} : { review: f.review }),
  };
}

/** How `show` says what becomes of a run's staged changes. */
function applyText(a: AutomationRow, journalDays: number): string {
  if (!a.folders.some((f) => !f.readOnly && f.review)) return 'no folder is reviewed';
  return a.applyChanges === 'auto'
    ? `applied as each run ends (undo within ${journalDays} days; conflicts wait for review)`
    : 'wait for your review (paddock changes list)';
}

const FOLDER_HELP =
  'grant a folder to each run (repeatable): PATH (changes wait for review), PATH:ro, or PATH:direct (writes straight to the folder)';
const APPLY_HELP =
  'what becomes of a run’s changes to its review folders: review (they wait for you) or auto (applied as the run ends; they can be undone)';

function automationJson(a: AutomationRow) {
  return {
    ...a,
    folders: a.folders.map(folderArg),
    nextSlot: a.nextSlotAt === null ? null : formatSlot(a.nextSlotAt, a.tzid),
  };
}

/** `--spend-limit`: dollars (`2`, `0.50`, `$2`), or `none` for no limit. */
function spendLimitArg(value: string): number | null {
  const v = value.trim().toLowerCase();
  if (v === 'none' || v === 'off') return null;
  const n = v.startsWith('$') ? Number(v.slice(1)) : Number(v);
  if (v === '' || v === '$' || Number.isNaN(n))
    throw new PaddockError(
      'BAD_OPTION',
      `--spend-limit: ${SPEND_LIMIT_RULE} “${value}” is not one.`,
    );
  return checkedSpendLimit(n);
}

const SECRET_HELP =
  'let each run use a stored secret (repeatable): its VM sees only a placeholder, swapped for the value on requests to the secret’s hosts (see paddock secrets)';

/** SECRET_NOT_FOUND for a name that is not stored (its value is not needed here). */
function requireSecrets(store: Store, names: string[]): void {
  for (const name of names) {
    if (!store.secrets.get(name)) throw secretNotFound(name);
  }
}

/** Like {@link collect}, but left undefined when the option is never given (edit: unchanged). */
function collectSome(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function pad(s: string, n: number): string {
  return s.length >= n ? s + ' ' : s + ' '.repeat(n - s.length);
}

function runLine(r: RunRow, names: Map<string, AutomationRow>, cost?: number): string {
  const a = names.get(r.automationId);
  const detail = r.summary ?? r.error ?? '';
  return (
    pad(r.id, 24) +
    pad(when(r.slotAt, a?.tzid ?? 'UTC'), 38) +
    pad(r.status + (r.trigger === 'manual' ? ' (manual)' : r.late ? ' (late)' : ''), 22) +
    pad(`#${r.attempt}`, 4) +
    pad(cost === undefined ? '—' : formatCost(cost), 10) +
    pad(a?.name ?? r.automationId, 20) +
    (detail.length > 100 ? detail.slice(0, 99) + '…' : detail) +
    '\n'
  );
}

function inboxLine(i: InboxItemRow): string {
  const mark = i.state === 'unread' ? '●' : ' ';
  return `${mark} ${new Date(i.createdAt).toISOString().slice(0, 16).replace('T', ' ')}  ${pad(i.kind, 12)}${i.title}: ${i.summary}\n`;
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new PaddockError('BAD_OPTION', `${flag} must be a whole number from 1, not ${value}.`);
  return n;
}

/** `paddock automations …`: scheduled tasks, their runs and the inbox, each with --json. */
export function registerAutomations(program: Command): void {
  const cmd = program
    .command('automations')
    .description('Scheduled tasks, their runs and the inbox');

  cmd
    .command('add')
    .description('Add an automation')
    .requiredOption('--name <name>', 'a short name')
    .requiredOption('--prompt <prompt>', 'what the agent should do at each run')
    .requiredOption(
      '--schedule <schedule>',
      'e.g. "every weekday at 9:00", "every 2 hours", "once on 2026-12-01 at 08:00", or DTSTART;TZID=…/RRULE:… text',
    )
    .option('--folder <path[:ro|:review|:direct]>', FOLDER_HELP, collect, [])
    .addOption(
      new Option('--apply-changes <mode>', APPLY_HELP)
        .choices(['review', 'auto'])
        .default('review'),
    )
    .option('--allow-host <host>', 'allow network access to a host (repeatable)', collect, [])
    .option('--secret <name>', SECRET_HELP, collect, [])
    .addOption(
      new Option('--missed <policy>', 'slots missed while off or asleep: skip, once or all')
        .choices(['skip', 'once', 'all'])
        .default('once'),
    )
    .option('--tz <zone>', 'time zone of the schedule (default: this computer’s)')
    .option('--timeout <minutes>', 'stop a run after this many minutes', '30')
    .option('--retries <n>', 'times an interrupted run is tried again', '1')
    .option(
      '--spend-limit <usd>',
      'stop a run once it has cost this many dollars (e.g. 2 or 0.50; default: no limit)',
    )
    .option('--json', 'JSON output')
    .action(
      async (o: {
        name: string;
        prompt: string;
        schedule: string;
        folder: string[];
        applyChanges: ApplyChanges;
        allowHost: string[];
        secret: string[];
        missed: MissedPolicy;
        tz?: string;
        timeout: string;
        retries: string;
        spendLimit?: string;
        json?: boolean;
      }) => {
        await withStore((store, svc) => {
          requireSecrets(store, o.secret);
          const retries = Number(o.retries);
          if (!Number.isInteger(retries) || retries < 0)
            throw new PaddockError('BAD_OPTION', `--retries must be 0 or more, not ${o.retries}.`);
          const a = svc.create({
            name: o.name,
            prompt: o.prompt,
            schedule: o.schedule,
            folders: o.folder.map(folderInput),
            applyChanges: o.applyChanges,
            allowHosts: o.allowHost,
            secrets: o.secret,
            missed: o.missed,
            ...(o.tz ? { tz: o.tz } : {}),
            timeoutMs: Math.round(Number(o.timeout) * 60_000),
            maxAttempts: retries + 1,
            ...(o.spendLimit !== undefined ? { spendLimitUsd: spendLimitArg(o.spendLimit) } : {}),
          });
          out(
            o.json,
            automationJson(a),
            () => `Added ${a.id} “${a.name}”; next run ${when(a.nextSlotAt, a.tzid)}.\n`,
          );
        });
      },
    );

  cmd
    .command('edit')
    .description('Change an automation; what is not given stays as it is')
    .argument('<id>')
    .option('--name <name>', 'a short name')
    .option('--prompt <prompt>', 'what the agent should do at each run')
    .option('--schedule <schedule>', 'a new schedule; it starts from now')
    .option('--tz <zone>', 'time zone of the schedule')
    .option(
      '--folder <path[:ro|:review|:direct]>',
      'the folders each run gets, replacing the current ones (repeatable); a folder it has keeps its mode unless one is given, a new one is reviewed',
      collectSome,
    )
    .addOption(new Option('--apply-changes <mode>', APPLY_HELP).choices(['review', 'auto']))
    .option(
      '--allow-host <host>',
      'the hosts each run may reach, replacing the current ones (repeatable)',
      collectSome,
    )
    .option(
      '--secret <name>',
      'the secrets each run may use, replacing the current ones (repeatable; --secret none for none)',
      collectSome,
    )
    .addOption(
      new Option(
        '--missed <policy>',
        'slots missed while off or asleep: skip, once or all',
      ).choices(['skip', 'once', 'all']),
    )
    .option(
      '--spend-limit <usd>',
      'stop a run once it has cost this many dollars (e.g. 2 or 0.50), or none for no limit',
    )
    .option('--json', 'JSON output')
    .action(
      async (
        id: string,
        o: {
          name?: string;
          prompt?: string;
          schedule?: string;
          tz?: string;
          folder?: string[];
          applyChanges?: ApplyChanges;
          allowHost?: string[];
          secret?: string[];
          missed?: MissedPolicy;
          spendLimit?: string;
          json?: boolean;
        },
      ) => {
        await withStore((store, svc) => {
          const cur = svc.require(id);
          const secrets = o.secret?.filter((n) => n !== 'none');
          if (secrets) requireSecrets(store, secrets);
          const a = svc.update(id, {
            ...(o.name !== undefined ? { name: o.name } : {}),
            ...(o.prompt !== undefined ? { prompt: o.prompt } : {}),
            // A new zone alone re-reads the schedule as written in that zone.
            ...(o.schedule !== undefined || o.tz !== undefined
              ? { schedule: o.schedule ?? cur.scheduleText }
              : {}),
            ...(o.tz !== undefined ? { tz: o.tz } : {}),
            ...(o.folder !== undefined ? { folders: o.folder.map(folderInput) } : {}),
            ...(o.applyChanges !== undefined ? { applyChanges: o.applyChanges } : {}),
            ...(o.allowHost !== undefined ? { allowHosts: o.allowHost } : {}),
            ...(secrets !== undefined ? { secrets } : {}),
            ...(o.missed !== undefined ? { missed: o.missed } : {}),
            ...(o.spendLimit !== undefined ? { spendLimitUsd: spendLimitArg(o.spendLimit) } : {}),
          });
          out(
            o.json,
            automationJson(a),
            () =>
              `Changed ${a.id} “${a.name}”; next run ${when(a.enabled ? a.nextSlotAt : null, a.tzid)}` +
              `${a.spendLimitUsd === null ? '' : `; spend limit ${formatCost(a.spendLimitUsd)} per run`}.\n`,
          );
        });
      },
    );

  cmd
    .command('list')
    .description('List automations')
    .option('--json', 'JSON output')
    .action(async (o: JsonOpt) => {
      await withStore((store) => {
        const list = store.automations.list();
        out(o.json, list.map(automationJson), () =>
          list.length === 0
            ? 'No automations yet; add one with `paddock automations add`.\n'
            : list
                .map(
                  (a) =>
                    pad(a.id, 24) +
                    pad(a.enabled ? 'active' : 'paused', 8) +
                    pad(a.name, 24) +
                    pad(a.scheduleText, 30) +
                    (a.enabled ? `next ${when(a.nextSlotAt, a.tzid)}` : '') +
                    '\n',
                )
                .join(''),
        );
      });
    });

  cmd
    .command('show')
    .description('Show one automation and its latest runs')
    .argument('<id>')
    .option('--json', 'JSON output')
    .action(async (id: string, o: JsonOpt) => {
      await withStore((store, svc) => {
        const a = svc.require(id);
        const runs = store.runs.list(id, 10);
        const usage = store.runs.automationUsage(id);
        const perRun = store.runs.usageOf(runs.map((r) => r.id));
        const runsOut = runs.map((r) => ({ ...r, usage: perRun.get(r.id) ?? null }));
        out(o.json, { ...automationJson(a), usage, runs: runsOut }, () =>
          [
            `${a.name} (${a.id}) — ${a.enabled ? 'active' : 'paused'}`,
            `  schedule: ${a.scheduleText}`,
            ...a.rrule.split('\n').map((l) => `            ${l}`),
            `  next:     ${when(a.nextSlotAt, a.tzid)}`,
            `  missed:   ${a.missedPolicy}`,
            `  folders:  ${a.folders.map((f) => `${f.hostPath} (${folderModeText(f)})`).join(', ') || 'none'}`,
            `  changes:  ${applyText(a, store.settings.get().journalDays)}`,
            `  network:  ${a.allowlist.join(', ') || 'none beyond settings'}`,
            `  timeout:  ${Math.round(a.timeoutMs / 60_000)} min; attempts ${a.maxAttempts}`,
            `  limit:    ${a.spendLimitUsd === null ? 'no spend limit' : `${formatCost(a.spendLimitUsd)} per run`}`,
            `  used:     ${describeUsage(usage)} (all runs)`,
            `  prompt:   ${a.prompt}`,
            '',
            ...runs.map((r) =>
              runLine(r, new Map([[a.id, a]]), perRun.get(r.id)?.costUsd).trimEnd(),
            ),
            '',
          ].join('\n'),
        );
      });
    });

  cmd
    .command('next')
    .description('Show the next run times')
    .argument('<id>')
    .option('--count <n>', 'how many', '5')
    .option('--from <time>', 'start from this ISO time instead of now')
    .option('--json', 'JSON output')
    .action(async (id: string, o: JsonOpt & { count: string; from?: string }) => {
      await withStore((_store, svc) => {
        const a = svc.require(id);
        const from = o.from === undefined ? undefined : Date.parse(o.from);
        if (from !== undefined && Number.isNaN(from))
          throw new PaddockError('BAD_OPTION', `--from must be an ISO date-time, not ${o.from}.`);
        const slots = svc.nextSlots(id, positive(o.count, '--count'), from);
        out(
          o.json,
          slots.map((at) => ({ at: new Date(at).toISOString(), local: formatSlot(at, a.tzid) })),
          () => slots.map((at) => formatSlot(at, a.tzid) + '\n').join(''),
        );
      });
    });

  for (const [name, desc, verb] of [
    ['pause', 'Pause an automation', 'Paused'],
    ['resume', 'Resume an automation', 'Resumed'],
  ] as const) {
    cmd
      .command(name)
      .description(desc)
      .argument('<id>')
      .option('--json', 'JSON output')
      .action(async (id: string, o: JsonOpt) => {
        await withStore((_store, svc) => {
          const a = name === 'pause' ? svc.pause(id) : svc.resume(id);
          out(o.json, automationJson(a), () =>
            name === 'pause'
              ? `${verb} ${a.id} “${a.name}”.\n`
              : `${verb} ${a.id} “${a.name}”; next run ${when(a.nextSlotAt, a.tzid)}.\n`,
          );
        });
      });
  }

  cmd
    .command('remove')
    .description('Remove an automation (its runs and inbox items are kept)')
    .argument('<id>')
    .option('--json', 'JSON output')
    .action(async (id: string, o: JsonOpt) => {
      await withStore((_store, svc) => {
        svc.remove(id);
        out(o.json, { id, removed: true }, () => `Removed ${id}.\n`);
      });
    });

  cmd
    .command('run-now')
    .description('Run an automation now, in this terminal, and print its result')
    .argument('<id>')
    .option('--json', 'JSON output')
    .action(async (id: string, o: JsonOpt) => {
      requireApiKeyEnv();
      await withStore(async (store, svc, core) => {
        const a = svc.require(id);
        // The core's own scheduler, not started: it runs this one automation, under a lease.
        const scheduler = core.automations.scheduler;
        const stop = () => void scheduler.stop();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        try {
          const run = await scheduler.runNow(a.id);
          const item = store.inbox.list({ limit: 50 }).find((i) => i.runId === run.id);
          out(
            o.json,
            { run, inbox: item ?? null },
            () => `${run.status}: ${item?.summary ?? run.error ?? ''}\n`,
          );
          if (run.status !== 'succeeded') process.exitCode = 1;
        } finally {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
        }
      });
    });

  cmd
    .command('runs')
    .description('List runs, newest first (of one automation when given its id)')
    .argument('[id]')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'JSON output')
    .action(async (id: string | undefined, o: JsonOpt & { limit: string }) => {
      await withStore((store, svc) => {
        if (id) svc.require(id);
        const runs = store.runs.list(id, positive(o.limit, '--limit'));
        const names = new Map(
          store.automations.list({ includeRemoved: true }).map((a) => [a.id, a]),
        );
        const usage = store.runs.usageOf(runs.map((r) => r.id));
        out(
          o.json,
          runs.map((r) => ({ ...r, usage: usage.get(r.id) ?? null })),
          () =>
            runs.length === 0
              ? 'No runs yet.\n'
              : runs.map((r) => runLine(r, names, usage.get(r.id)?.costUsd)).join(''),
        );
      });
    });

  cmd
    .command('inbox')
    .description('Show the inbox: what each run did, and slots that were missed')
    .option('--unread', 'only unread items')
    .option('--all', 'include archived items')
    .option('--mark-read', 'mark the items shown as read')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'JSON output')
    .action(
      async (
        o: JsonOpt & { unread?: boolean; all?: boolean; markRead?: boolean; limit: string },
      ) => {
        await withStore((store) => {
          const items = store.inbox.list({
            ...(o.unread ? { state: 'unread' as const } : {}),
            includeArchived: Boolean(o.all),
            limit: positive(o.limit, '--limit'),
          });
          if (o.markRead)
            for (const i of items) if (i.state === 'unread') store.inbox.setState(i.id, 'read');
          out(o.json, items, () =>
            items.length === 0 ? 'The inbox is empty.\n' : items.map(inboxLine).join(''),
          );
        });
      },
    );
}
