import type { Command } from 'commander';
import type { AgentEvent } from '../../shared/agent-events.js';
import type { Effort } from '../../shared/api.js';
import { PaddockError } from '../../shared/result.js';
import { describeUsage, type UsageTotals } from '../../shared/usage.js';
import { rememberAlways, summariseToolInput } from '../agent/approvals.js';
import { EFFORTS } from '../agent/models.js';
import type { Approver } from '../agent/session.js';
import { describeAutomationPlan } from '../agent/tools/artifacts.js';
import { reviewShares } from '../core/changes/service.js';
import { createCore, type Core } from '../core/core.js';
import type { LiveSession } from '../core/sessions.js';
import { dataDir } from '../platform/app-paths.js';
import type { SessionRow } from '../store/sessions-repo.js';
import type { Store } from '../store/store.js';
import type { PersonAnswer } from '../vm/egress/proxy.js';
import { parseFolderArg, resolveGrants } from '../vm/grants.js';
import { imageOrBuild } from './image-build-ui.js';
import { collect } from './pending-commands.js';
import { requireApiKeyEnv, terminalIo, type CliIo } from './terminal.js';

interface RunOptions {
  folder: string[];
  allowHost: string[];
  secret: string[];
  pinHost: string[];
  model?: string;
  effort?: string;
  approve?: string;
  yes?: boolean;
  json?: boolean;
  resume?: string;
}

/** `paddock run`: one agent session without the GUI, streamed to the terminal or as JSON lines. */
export function registerRun(program: Command): void {
  program
    .command('run')
    .description('Run an agent session on a prompt without the GUI')
    .option(
      '--folder <path[:ro|:review|:direct]>',
      'grant a folder (repeatable); the first is the working folder. :review (the default) stages the agent’s changes for `paddock changes apply`; :direct writes them to the folder; :ro is read-only',
      collect,
      [],
    )
    .option('--allow-host <host>', 'allow network access to a host (repeatable)', collect, [])
    .option(
      '--secret <name>',
      'let the agent use a stored secret (repeatable): its VM sees only a placeholder, swapped for the value on requests to the secret’s hosts (see paddock secrets)',
      collect,
      [],
    )
    .option(
      '--pin-host <host>',
      'pin a host to your own secrets (repeatable): any other credential sent to it is refused',
      collect,
      [],
    )
    .option('--model <model>', 'model to use (default: the one in settings)')
    .option(
      '--effort <level>',
      `how hard the model works: ${EFFORTS.join(', ')} (default: the one in settings)`,
    )
    .option(
      '--approve <mode>',
      'auto (run tools without asking) or ask (ask before each tool call)',
    )
    .option(
      '--yes',
      'answer yes to every question (tool calls, hosts outside the allowlist, building a missing VM image) without asking',
    )
    .option('--json', 'print one JSON event per line')
    .option(
      '--resume <session>',
      'continue an earlier session (its folders, allowlist and secrets are reused)',
    )
    .argument('[prompt]', 'what you want done')
    .action(async (prompt: string | undefined, opts: RunOptions) => {
      process.exitCode = await runAgent(prompt, opts);
    });
}

async function runAgent(prompt: string | undefined, opts: RunOptions): Promise<number> {
  requireApiKeyEnv();
  if (!prompt && !opts.resume)
    throw new PaddockError(
      'NO_PROMPT',
      'Say what you want done, as in: paddock run --folder ~/notes "summarise these notes".',
    );
  if (opts.effort !== undefined && !EFFORTS.includes(opts.effort as Effort)) {
    throw new PaddockError(
      'BAD_OPTION',
      `--effort must be one of ${EFFORTS.join(', ')}, not ${opts.effort}.`,
    );
  }
  if (opts.approve && opts.approve !== 'auto' && opts.approve !== 'ask') {
    throw new PaddockError('BAD_OPTION', `--approve must be auto or ask, not ${opts.approve}.`);
  }
  const home = dataDir();
  // The same core as the app and `paddock serve`; this one runs no scheduler of its own.
  const core = createCore({ dataDir: home, host: 'cli', runScheduler: false });
  let live: LiveSession | undefined;
  try {
    let sessionId: string;
    if (opts.resume) {
      if (!core.store.sessions.get(opts.resume))
        throw new PaddockError(
          'NOT_FOUND',
          `There is no session ${opts.resume}; paddock run --json prints each session's id.`,
        );
      sessionId = opts.resume;
    } else {
      sessionId = core.sessions.create({
        title: prompt ?? '',
        model: opts.model,
        approvalMode: opts.approve as 'auto' | 'ask' | undefined,
        folders: resolveGrants(
          opts.folder.map((f) => parseFolderArg(f, 'review')),
          { dataDir: home },
        ),
        allowHosts: opts.allowHost,
        secrets: opts.secret,
        pinHosts: opts.pinHost,
      }).id;
    }
    const out = (e: AgentEvent) =>
      opts.json ? process.stdout.write(JSON.stringify(e) + '\n') : printHuman(e);
    await imageOrBuild(home, Boolean(opts.yes));
    live = core.sessions.open(sessionId, {
      approver: cliApprover(Boolean(opts.yes), core.store, out),
      // The agent's schedule_automation tool: the new automation gets this session's grants, and
      // is made only when the person agrees (cliApprover; --yes agrees, no terminal refuses).
      canSchedule: true,
      model: opts.model,
      effort: opts.effort as Effort | undefined,
      approvalMode: opts.approve as 'auto' | 'ask' | undefined,
      onEvent: out,
    });
    const s = live.session;
    const onSignal = () => s.cancel();
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    const before = core.store.sessions.get(sessionId)!;
    let stopReason = 'error';
    try {
      const outcome = await s.run(prompt);
      stopReason = outcome.stopReason;
      if (!opts.json) process.stdout.write('\n');
      if (outcome.stopReason === 'cancelled') return 130;
      if (outcome.stopReason === 'refusal') return 3;
      return 0;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      // What the run staged in its review folders, kept before the VM (and its layer) stops.
      await reportStaged(core, live, sessionId, Boolean(opts.json));
      // The last line either way: what this run's model calls used and cost.
      const usage = usageSince(before, core.store.sessions.get(sessionId) ?? before);
      if (opts.json)
        process.stdout.write(
          JSON.stringify({ type: 'summary', sessionId, stopReason, ...usage }) + '\n',
        );
      else process.stderr.write(`Usage: ${describeUsage(usage)}\n`);
    }
  } catch (e) {
    if (e instanceof PaddockError && opts.json) {
      process.stderr.write(`paddock: ${e.message}\n`);
      return 1;
    }
    throw e;
  } finally {
    await live?.stop();
    await core.close();
  }
}

/**
 * Stages what the session changed in its review folders and says how to see and apply it: one
 * `changes` event with `--json`, otherwise a few lines. A failure to stage is said, not thrown:
 * the run itself is over.
 */
async function reportStaged(
  core: Core,
  live: LiveSession,
  sessionId: string,
  json: boolean,
): Promise<void> {
  if (reviewShares(core.store.sessions.get(sessionId)?.folders ?? []).length === 0) return;
  try {
    await core.changes.stageFromVm(sessionId, live.vm?.() ?? null);
  } catch (e) {
    process.stderr.write(`paddock: the changes could not be staged: ${(e as Error).message}\n`);
  }
  const changesets = core.changes.list(sessionId).filter((c) => c.status !== 'discarded');
  if (json) {
    process.stdout.write(JSON.stringify({ type: 'changes', changesets }) + '\n');
    return;
  }
  const pending = changesets.filter((c) => c.status === 'pending' || c.status === 'partial');
  if (pending.length === 0) {
    process.stderr.write('No changes to review in the review folders.\n');
    return;
  }
  for (const c of pending) {
    const counts = Object.entries(c.counts)
      .filter(([, n]) => n > 0)
      .map(([kind, n]) => `${n} ${kind}`)
      .join(', ');
    process.stderr.write(
      `Staged for review in ${c.hostPath} (nothing written there yet): ${counts}.\n` +
        `  see them:   paddock changes show ${c.id}\n` +
        `  apply them: paddock changes apply ${c.id}   (or discard ${c.id}; undo after applying)\n`,
    );
  }
}

/** The tokens and cost a session gained between two reads of its row: one run's usage. */
function usageSince(before: SessionRow, after: SessionRow): UsageTotals {
  return {
    inputTokens: after.inputTokens - before.inputTokens,
    outputTokens: after.outputTokens - before.outputTokens,
    cacheReadTokens: after.cacheReadTokens - before.cacheReadTokens,
    cacheWriteTokens: after.cacheWriteTokens - before.cacheWriteTokens,
    // Rounded off below a billionth of a dollar: a difference of sums of floats.
    costUsd: Math.round((after.costUsd - before.costUsd) * 1e9) / 1e9,
  };
}

/**
 * The approver of `paddock run`: asks on the terminal when there is one; a headless run without
 * --yes says no and tells the model why. An "always" answer is kept as an answer to a prompt.
 */
export function cliApprover(
  yes: boolean,
  store: Store,
  notify: (e: AgentEvent) => void,
  io: CliIo = terminalIo(),
): Required<Approver> {
  const { tty, ask } = io;
  return {
    async approveTool(call) {
      if (yes) return 'allow';
      if (!tty) {
        notify({
          type: 'notice',
          message: `Declined ${call.name}: --approve ask needs a terminal to ask on, or --yes.`,
        });
        return 'deny';
      }
      const a = await ask(`Allow ${call.name} ${JSON.stringify(call.input).slice(0, 200)}? [y/N] `);
      return a === 'y' || a === 'yes' ? 'allow' : 'deny';
    },
    async askNetwork(host, port): Promise<PersonAnswer> {
      if (yes) return 'session';
      if (!tty) {
        notify({
          type: 'notice',
          message: `Denied ${host}:${port}: it is not on the allowlist and this run cannot ask (no terminal). Rerun with --allow-host ${host} or --yes.`,
        });
        return 'deny';
      }
      const a = await ask(
        `The agent wants to reach ${host}:${port}. [o]nce, [s]ession, [a]lways, [d]eny? `,
      );
      if (a.startsWith('a')) {
        // SECURITY: kept as an answer to a prompt: later runs never let it reach internal addresses.
        rememberAlways(store.settings, host, port);
        return 'always';
      }
      return a.startsWith('o') ? 'once' : a.startsWith('s') ? 'session' : 'deny';
    },
    async approveAutomation(plan) {
      const what = `schedule “${plan.name}”:\n${describeAutomationPlan(plan)}`;
      if (yes) {
        notify({ type: 'notice', message: `Allowed (--yes): the agent will ${what}` });
        return { answer: 'allow' };
      }
      // SECURITY: an automation outlives this run with its folders and hosts; only a person's
      // yes (on the terminal, or --yes given up front) creates one.
      if (!tty) {
        notify({
          type: 'notice',
          message: `Refused: the agent wanted to ${what}\nThis run cannot ask (no terminal); rerun with --yes to allow it, or create it with paddock automations add.`,
        });
        return {
          answer: 'deny',
          reason:
            'This run has no terminal to ask the person on and was not started with --yes, and an automation is created only when the person agrees. Do not try again; tell the person what you wanted to schedule, so they can create it with `paddock automations add` or rerun with --yes.',
        };
      }
      const a = await ask(`The agent wants to ${what}\nCreate this automation? [y/N] `);
      return a === 'y' || a === 'yes'
        ? { answer: 'allow' }
        : {
            answer: 'deny',
            reason:
              'The person declined to create this automation. Do not try again or another way; say what you wanted to schedule, and they can create it themselves.',
          };
    },
  };
}

let atLineStart = true;
/** The conversation as a person reads it: the answer on stdout, the agent's actions on stderr. */
function printHuman(e: AgentEvent): void {
  const err = (s: string) => {
    if (!atLineStart) process.stdout.write('\n');
    atLineStart = true;
    process.stderr.write(s + '\n');
  };
  switch (e.type) {
    case 'text-delta':
      process.stdout.write(e.text);
      atLineStart = e.text.endsWith('\n');
      break;
    case 'tool-start':
      err(`▸ ${e.name} ${summariseToolInput(e.name, e.input, 160)}`);
      break;
    case 'tool-result':
      err(
        `  ${e.isError ? '✗' : '✓'} ${e.name}${e.exitCode !== undefined ? ` exit ${e.exitCode}` : ''} (${(e.durationMs / 1000).toFixed(1)} s)`,
      );
      break;
    case 'artifact':
      err(`  ◆ artifact “${e.title}” (${e.kind}) ${e.id} version ${e.version}`);
      break;
    case 'retry':
      err(
        `… ${e.reason}; retrying in ${(e.delayMs / 1000).toFixed(1)} s (attempt ${e.attempt + 1})`,
      );
      break;
    case 'notice':
      err(`! ${e.message}`);
      break;
    case 'approval':
      err(`? ${e.kind} ${e.subject}: ${e.answer}`);
      break;
    case 'error':
      err(`✗ ${e.message}`);
      break;
    case 'done':
      if (e.stopReason === 'refusal') err('The model declined this request.');
      if (e.stopReason === 'cancelled') err('Stopped.');
      break;
    default:
      break;
  }
}
