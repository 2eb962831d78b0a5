import type Anthropic from '@anthropic-ai/sdk';
import { APIUserAbortError } from '@anthropic-ai/sdk';
import type {
  ContentBlock,
  Message,
  MessageParam,
  ToolUseBlock,
} from '@anthropic-ai/sdk/resources/messages';
import { EventEmitter } from 'node:events';
import type { AgentEvent } from '../../shared/agent-events.js';
import type { Effort } from '../../shared/api.js';
import { spendLimitSentence } from '../../shared/usage.js';
import type { AutomationPlan } from '../../shared/app-contract.js';
import { PaddockError } from '../../shared/result.js';
import type { TokenUsage } from '../store/sessions-repo.js';
import type { Store } from '../store/store.js';
import type { PersonAnswer } from '../vm/egress/proxy.js';
import {
  clearToolResults,
  estimateTokens,
  pushToolResult,
  pushUser,
  rebuildConversation,
  requestMessages,
  summaryMessage,
  toolResultsToClear,
  unansweredToolUses,
  type StoredContextEvent,
  type StoredToolResult,
} from './conversation.js';
import {
  countTokens,
  DEFAULT_RETRY,
  streamTurn,
  type RetryPolicy,
  type TurnParams,
} from './model.js';
import { builtInProfile, shapeRequest, type ModelProfile } from './models.js';
import { billedUsage, costOf } from './pricing.js';
import { systemPrompt, type PromptContext } from './system-prompt.js';
import { apiTools, TOOLS } from './tools/index.js';
import {
  ToolError,
  type AutomationScheduler,
  type ScheduleRequest,
  type ToolHost,
  type Tool,
} from './tools/types.js';

/** The person's answer about one automation; `reason` (on a no) is the sentence for the model. */
export interface AutomationVerdict {
  answer: 'allow' | 'deny';
  reason?: string;
}

/**
 * How the person answers: per tool call in `ask` mode, for hosts outside the allowlist, and for
 * every automation the agent wants to create (in every mode).
 */
export interface Approver {
  approveTool(call: { id: string; name: string; input: unknown }): Promise<'allow' | 'deny'>;
  askNetwork(host: string, port: number): Promise<PersonAnswer>;
  /**
   * Asked before `schedule_automation` creates anything, whatever the approval mode: an
   * automation outlives the task with its folders and network. Where nobody can answer, say no
   * with a reason. An approver without it refuses every automation.
   */
  approveAutomation?(plan: AutomationPlan): Promise<AutomationVerdict>;
}

const NO_ONE_TO_ASK =
  'Automations cannot be created from here: there is nobody to ask, and an automation is created only when the person agrees. Tell the person what you wanted to schedule.';
/** The sentence the model gets when the person says no to an automation it planned. */
export const AUTOMATION_DECLINED =
  'The person declined to create this automation. Do not try again or another way; say what you wanted to schedule, and they can create it themselves in Automations.';

/** The model settings one session runs with. */
export interface AgentSettings {
  model: string;
  maxTokens: number;
  /** How hard the model works; sent as `output_config.effort` where the model supports it. */
  effort: Effort;
  /** Prompt caching (on unless a benchmark measures the session without it). */
  promptCaching?: boolean;
  /** The context window to stay within, when not the model's own (tests and benchmarks). */
  contextWindowTokens?: number;
}

/**
 * When the conversation is made smaller, as shares of the room a request has (the model's
 * context window less the reply's `max_tokens`): from `REDUCE_AT` on, either the server compacts
 * (where the model supports it) or old tool outputs are cleared down to `CLEAR_TO`, and if that is
 * not enough the conversation is summarised. Clearing far below the mark means the cache prefix
 * is rebuilt rarely, not on every turn.
 */
export const REDUCE_AT = 0.75;
export const CLEAR_TO = 0.4;
/** The newest tool results are never cleared. */
export const KEEP_TOOL_RESULTS = 3;
const COMPACTION_BETA = 'compact-2026-01-12';

const SUMMARY_REQUEST =
  'The conversation is about to outgrow the context window. Write a summary that will replace everything above: the task and the person’s instructions (verbatim where exact wording matters), what has been done and found so far, files created or changed with their paths, decisions made, and what remains to do next. Do not call tools; reply with the summary only.';

/** What a session is built from; hosts (app, CLI, automation runs) wire these. */
export interface AgentSessionOptions {
  store: Store;
  client: Anthropic;
  sessionId: string;
  /** The sandbox, booted on first use, so a reply without tools needs no VM. */
  host: () => ToolHost;
  settings: AgentSettings;
  approvalMode: 'auto' | 'ask';
  approver: Approver;
  prompt: Omit<PromptContext, 'now'>;
  now?: () => Date;
  /** What each model accepts (from the Models API); default: the built-in table. */
  models?: { profile(model: string): Promise<ModelProfile> };
  /**
   * Stop a run once what it cost reaches this many dollars (an automation's limit): the run ends
   * with stop reason `spend_limit` and an error event that says so.
   */
  spendLimitUsd?: number;
  retry?: RetryPolicy;
  tools?: Tool[];
  /**
   * Plans and creates automations for the `schedule_automation` tool (wired by the host, which
   * knows the automations layer). The session shows each plan to the person through
   * {@link Approver.approveAutomation} and creates only on a yes. Without it the tool says it is
   * unavailable.
   */
  scheduleAutomation?: AutomationScheduler;
}

/** How one {@link AgentSession.run} ended, and the last text the model wrote. */
export interface RunOutcome {
  stopReason: string;
  finalText: string;
}

const INTERRUPTED =
  'The app stopped while this tool was running, so it did not finish; run it again if it is still needed.';
const CANCELLED = 'The person stopped the task while this tool was running.';

/**
 * The agent loop: streams the model's reply, runs its tool calls in the VM (all of one message's
 * calls, answered together in order), records every step in SQLite as it happens, and goes on
 * until the model ends its turn, is cancelled, or fails in a way retries cannot mend.
 */
export class AgentSession extends EventEmitter<{ event: [AgentEvent] }> {
  readonly id: string;
  private messages: MessageParam[];
  private controller = new AbortController();
  private readonly tools: Tool[];
  private running = false;
  /** The last request's exact input tokens and size in characters, to estimate the next one. */
  private lastSent: { tokens: number; chars: number } | undefined;
  /** What the model calls of the current run cost, summaries included (for the spend limit). */
  private runCost = 0;

  constructor(private readonly o: AgentSessionOptions) {
    super();
    this.id = o.sessionId;
    this.tools = o.tools ?? TOOLS;
    this.messages = rebuildConversation(o.store.sessions.events(o.sessionId));
  }

  private emitEvent(e: AgentEvent): void {
    this.emit('event', e);
  }

  /** Records an event in the store as it happens, and reports it live. */
  private record(type: string, payload: unknown): void {
    this.o.store.sessions.appendEvent(this.id, type, payload);
  }

  /** Stops the model stream and kills running commands; the loop ends with 'cancelled'. */
  cancel(): void {
    this.controller.abort();
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Runs the loop, first adding `prompt` as the person's message (omit it to just resume). */
  async run(prompt?: string): Promise<RunOutcome> {
    if (this.running)
      throw new PaddockError('BUSY', 'This task is already running; wait for it or stop it first.');
    this.running = true;
    if (this.controller.signal.aborted) this.controller = new AbortController();
    const signal = this.controller.signal;
    this.o.store.sessions.setStatus(this.id, 'running');
    this.emitEvent({ type: 'session', sessionId: this.id, model: this.o.settings.model });
    let finalText = '';
    try {
      this.answerInterrupted(INTERRUPTED);
      if (prompt !== undefined) {
        this.record('user', { content: prompt });
        pushUser(this.messages, prompt);
        this.emitEvent({ type: 'user', text: prompt });
      }
      if (this.messages.length === 0)
        throw new PaddockError('EMPTY', 'There is nothing to do yet: give the task a prompt.');
      // Fixed for the run, so the cached prefix (tools, system prompt) stays the same every turn.
      const system = systemPrompt({
        ...this.o.prompt,
        now: (this.o.now ?? (() => new Date()))(),
      });
      const profile = await (this.o.models?.profile(this.o.settings.model) ??
        Promise.resolve(builtInProfile(this.o.settings.model)));
      this.runCost = 0;
      for (;;) {
        await this.fitContext(profile, system, signal);
        const params = this.requestParams(profile, system);
        const msg = await streamTurn(
          this.o.client,
          params,
          {
            onEvent: (ev) => {
              if (ev.type === 'content_block_delta') {
                if (ev.delta.type === 'text_delta')
                  this.emitEvent({ type: 'text-delta', text: ev.delta.text });
                else if (ev.delta.type === 'thinking_delta')
                  this.emitEvent({ type: 'thinking-delta', text: ev.delta.thinking });
              }
            },
            onRetry: (info) => this.emitEvent({ type: 'retry', ...info }),
          },
          signal,
          this.o.retry ?? DEFAULT_RETRY,
        );
        this.noteSent(params, msg);
        const usage = this.recordUsage(msg);
        // SECURITY-neutral but essential: content goes back unchanged (thinking signatures included).
        this.record('assistant', {
          content: msg.content,
          stop_reason: msg.stop_reason,
          usage: msg.usage,
          model: msg.model,
        });
        this.messages.push({ role: 'assistant', content: msg.content as MessageParam['content'] });
        const text = textOf(msg.content);
        if (text) finalText = text;
        this.emitEvent({
          type: 'assistant',
          text,
          stopReason: msg.stop_reason,
          ...usage,
        });

        if (this.o.spendLimitUsd !== undefined && this.runCost >= this.o.spendLimitUsd) {
          const message = spendLimitSentence(this.o.spendLimitUsd, this.runCost);
          this.record('error', { code: 'SPEND_LIMIT', message });
          this.emitEvent({ type: 'error', code: 'SPEND_LIMIT', message });
          return this.finish('spend_limit', finalText);
        }

        const toolUses = msg.content.filter((b): b is ToolUseBlock => b.type === 'tool_use');
        if (
          msg.stop_reason === 'tool_use' ||
          (toolUses.length > 0 && msg.stop_reason !== 'pause_turn')
        ) {
          await this.runTools(toolUses, signal, msg.stop_reason === 'max_tokens');
          if (msg.stop_reason === 'max_tokens') this.addContinue();
          continue;
        }
        if (msg.stop_reason === 'pause_turn') continue; // the API asks for the reply back as-is
        if (msg.stop_reason === 'max_tokens') {
          this.addContinue();
          continue;
        }
        return this.finish(msg.stop_reason ?? 'end_turn', finalText);
      }
    } catch (err) {
      if (err instanceof APIUserAbortError || signal.aborted) {
        this.answerInterrupted(CANCELLED);
        this.record('cancelled', {});
        return this.finish('cancelled', finalText);
      }
      const e =
        err instanceof PaddockError ? err : new PaddockError('INTERNAL', (err as Error).message);
      this.record('error', { code: e.code, message: e.message });
      this.emitEvent({ type: 'error', code: e.code, message: e.message });
      this.finish('error', finalText);
      throw e;
    } finally {
      this.running = false;
    }
  }

  /** The request for the next turn: shaped for the model, cached, compacted where it can be. */
  private requestParams(profile: ModelProfile, system: string): TurnParams {
    const caching = this.o.settings.promptCaching !== false;
    const shaped = shapeRequest(profile, this.o.settings.effort, this.o.settings.maxTokens);
    return {
      model: this.o.settings.model,
      ...shaped,
      // The tools (in a fixed order) and the system prompt are the same on every turn: one
      // breakpoint after them, and the top-level one on the newest block, so each turn reads the
      // whole conversation before it from the cache and writes only what is new.
      system: [
        {
          type: 'text',
          text: system,
          ...(caching ? { cache_control: { type: 'ephemeral' } } : {}),
        },
      ],
      ...(caching ? { cache_control: { type: 'ephemeral' } } : {}),
      messages: requestMessages(this.messages, profile.compaction),
      tools: apiTools(this.tools),
      ...(profile.compaction
        ? {
            betas: [COMPACTION_BETA],
            context_management: {
              edits: [
                {
                  type: 'compact_20260112',
                  trigger: { type: 'input_tokens', value: this.reduceAt(profile) },
                },
              ],
            },
          }
        : {}),
    };
  }

  /** Input tokens from which the conversation is made smaller. */
  private reduceAt(profile: ModelProfile): number {
    const window = this.o.settings.contextWindowTokens ?? profile.maxInputTokens;
    const room =
      window - shapeRequest(profile, this.o.settings.effort, this.o.settings.maxTokens).max_tokens;
    return Math.max(1024, Math.floor(room * REDUCE_AT));
  }

  /** Remembers what the last request counted, and marks a compaction the server made. */
  private noteSent(params: TurnParams, msg: Message): void {
    const usage = msg.usage as Message['usage'] & {
      iterations?: Array<{
        input_tokens?: number;
        cache_read_input_tokens?: number | null;
        cache_creation_input_tokens?: number | null;
      }> | null;
    };
    const inputOf = (u: {
      input_tokens?: number;
      cache_read_input_tokens?: number | null;
      cache_creation_input_tokens?: number | null;
    }) =>
      (u.input_tokens ?? 0) +
      (u.cache_read_input_tokens ?? 0) +
      (u.cache_creation_input_tokens ?? 0);
    const compacted = msg.content.some((b) => (b.type as string) === 'compaction');
    if (!compacted) {
      this.lastSent = { tokens: inputOf(usage), chars: requestChars(params) };
      return;
    }
    // The request is re-shaped from the compaction block on; estimate afresh next time.
    this.lastSent = undefined;
    const pass = (usage.iterations ?? []).find(
      (it) => (it as { type?: string }).type === 'compaction',
    );
    const tokensBefore = pass ? inputOf(pass) : Math.ceil(requestChars(params) / 4);
    const tokensAfter = inputOf(usage);
    const event: StoredContextEvent = {
      action: 'compacted',
      tokensBefore,
      tokensAfter,
      message:
        'The conversation before this point was compacted into a summary by the model service to stay within its context.',
    };
    this.record('context', event);
    this.emitEvent({ type: 'context', ...contextEventFields(event) });
  }

  /**
   * Keeps the next request within the model's context. Counted, not guessed: the last request's
   * exact count plus an estimate of what was added, and the API's count when that comes near the
   * mark. Models with server-side compaction are left to it; for the others, old tool outputs are
   * cleared, then the conversation is summarised if that was not enough.
   */
  private async fitContext(
    profile: ModelProfile,
    system: string,
    signal: AbortSignal,
  ): Promise<void> {
    if (profile.compaction) return;
    const at = this.reduceAt(profile);
    const params = () => this.requestParams(profile, system);
    let tokens = this.estimate(params());
    if (tokens < at) return;
    tokens = await countTokens(this.o.client, params(), signal);
    if (tokens < at) return;
    const room = Math.floor((at / REDUCE_AT) * CLEAR_TO);
    const ids = toolResultsToClear(this.messages, room, KEEP_TOOL_RESULTS, system);
    if (ids.length > 0) {
      clearToolResults(this.messages, ids);
      this.lastSent = undefined;
      const after = await countTokens(this.o.client, params(), signal);
      this.noteContext({
        action: 'cleared',
        tokensBefore: tokens,
        tokensAfter: after,
        message: `Cleared ${ids.length} older tool output(s) to stay within the model’s context.`,
        toolUseIds: ids,
      });
      tokens = after;
      if (tokens < at) return;
    }
    await this.summarise(profile, system, tokens, signal);
  }

  /** Client-side compaction: the model summarises the conversation, which then stands for it. */
  private async summarise(
    profile: ModelProfile,
    system: string,
    tokensBefore: number,
    signal: AbortSignal,
  ): Promise<void> {
    const messages = structuredClone(this.messages);
    pushUser(messages, SUMMARY_REQUEST);
    const base = this.requestParams(profile, system);
    const reply = await streamTurn(
      this.o.client,
      { ...base, messages, tool_choice: { type: 'none' } },
      { onRetry: (info) => this.emitEvent({ type: 'retry', ...info }) },
      signal,
      this.o.retry ?? DEFAULT_RETRY,
    );
    this.recordUsage(reply);
    const summary = textOf(reply.content).trim();
    if (!summary)
      throw new PaddockError(
        'CONTEXT_FULL',
        'The conversation outgrew the model’s context and could not be summarised. Start a new task with what is left to do.',
      );
    this.messages.splice(0, this.messages.length, summaryMessage(summary));
    this.lastSent = undefined;
    this.noteContext({
      action: 'compacted',
      tokensBefore,
      tokensAfter: estimateTokens(this.messages, system),
      message:
        'The conversation before this point was compacted into a summary to stay within the model’s context.',
      summary,
    });
  }

  /** Stores one reply's tokens and cost (a compaction pass included) and counts it for the run. */
  private recordUsage(msg: Message): TokenUsage {
    const billed = billedUsage(msg.usage);
    const cost = costOf(msg.model || this.o.settings.model, billed);
    const usage = {
      inputTokens: billed.input_tokens,
      outputTokens: billed.output_tokens,
      cacheReadTokens: billed.cache_read_input_tokens,
      cacheWriteTokens: billed.cache_creation_input_tokens,
    };
    this.o.store.sessions.addUsage(this.id, usage, cost);
    this.runCost += cost;
    return usage;
  }

  private noteContext(event: StoredContextEvent): void {
    this.record('context', event);
    this.emitEvent({ type: 'context', ...contextEventFields(event) });
  }

  /** The next request's input tokens: the last exact count plus what was added since. */
  private estimate(params: TurnParams): number {
    const chars = requestChars(params);
    if (this.lastSent && chars >= this.lastSent.chars)
      return this.lastSent.tokens + Math.ceil((chars - this.lastSent.chars) / 4);
    return Math.ceil(chars / 4);
  }

  private finish(stopReason: string, finalText: string): RunOutcome {
    const status =
      stopReason === 'end_turn' || stopReason === 'stop_sequence' ? 'done' : stopReason;
    this.o.store.sessions.setStatus(this.id, status);
    const costUsd = this.o.store.sessions.get(this.id)?.costUsd ?? 0;
    this.emitEvent({ type: 'done', stopReason, costUsd });
    return { stopReason, finalText };
  }

  private addContinue(): void {
    const note =
      '[Your previous reply stopped at the output limit. Continue exactly where you left off.]';
    this.record('user', { content: note });
    pushUser(this.messages, note);
  }

  /** Answers tool calls left without a result (the app died, or the person stopped it). */
  private answerInterrupted(message: string): void {
    for (const t of unansweredToolUses(this.messages)) {
      const r: StoredToolResult = {
        tool_use_id: t.id,
        name: t.name,
        content: message,
        is_error: true,
      };
      this.record('tool_result', r);
      pushToolResult(this.messages, r);
    }
  }

  private async runTools(
    uses: ToolUseBlock[],
    signal: AbortSignal,
    truncated: boolean,
  ): Promise<void> {
    for (const use of uses) {
      if (signal.aborted) throw new APIUserAbortError();
      this.emitEvent({ type: 'tool-start', id: use.id, name: use.name, input: use.input });
      const started = Date.now();
      const outcome =
        truncated && use === uses.at(-1)
          ? {
              content:
                'This tool call was cut off by the output limit before its input was complete; call it again.',
              isError: true,
            }
          : await this.runOne(use, signal);
      if (signal.aborted) throw new APIUserAbortError();
      const r: StoredToolResult = {
        tool_use_id: use.id,
        name: use.name,
        content: outcome.content,
        is_error: outcome.isError,
        ...('exitCode' in outcome && outcome.exitCode !== undefined
          ? { exit_code: outcome.exitCode }
          : {}),
        duration_ms: Date.now() - started,
      };
      this.record('tool_result', r);
      pushToolResult(this.messages, r);
      this.emitEvent({
        type: 'tool-result',
        id: use.id,
        name: use.name,
        content: r.content,
        isError: r.is_error,
        ...(r.exit_code !== undefined ? { exitCode: r.exit_code } : {}),
        durationMs: r.duration_ms ?? 0,
      });
    }
  }

  private async runOne(
    use: ToolUseBlock,
    signal: AbortSignal,
  ): Promise<{ content: string; isError: boolean; exitCode?: number }> {
    const tool = this.tools.find((t) => t.name === use.name);
    if (!tool) return { content: `There is no tool named ${use.name}.`, isError: true };
    const parsed = tool.input.safeParse(use.input);
    if (!parsed.success) {
      return {
        content: `Invalid input for ${use.name}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'input'}: ${i.message}`).join('; ')}`,
        isError: true,
      };
    }
    if (this.o.approvalMode === 'ask' && !tool.asksPerson) {
      const answer = await this.o.approver.approveTool({
        id: use.id,
        name: use.name,
        input: use.input,
      });
      this.record('approval', { kind: 'tool', tool_use_id: use.id, answer });
      this.emitEvent({ type: 'approval', kind: 'tool', subject: use.name, answer });
      if (answer !== 'allow')
        return {
          content: 'The person declined this tool call. Ask them or try another way.',
          isError: true,
        };
    }
    try {
      const getHost = this.o.host;
      return await tool.run(parsed.data, {
        // Resolved on first use, so tools that never touch the VM never boot one.
        get host() {
          return getHost();
        },
        cwd: this.o.prompt.shares[0] ? `/mnt/${this.o.prompt.shares[0].name}` : '/root',
        signal,
        sessionId: this.id,
        createArtifact: (a) => this.saveArtifact(a),
        ...(this.o.scheduleAutomation
          ? {
              scheduleAutomation: (input: ScheduleRequest) =>
                this.scheduleWithConsent(this.o.scheduleAutomation!, use, input),
            }
          : {}),
        onOutput: (stream, text) =>
          this.emitEvent({ type: 'tool-output', id: use.id, stream, text }),
      });
    } catch (err) {
      if (signal.aborted) throw new APIUserAbortError();
      const message =
        err instanceof ToolError ? err.message : `${use.name} failed: ${(err as Error).message}`;
      return { content: message, isError: true };
    }
  }

  /**
   * `create_artifact`: a new artifact, or a new version of one of this session's. Recorded as an
   * `artifact` event too, so the task's history shows a card where it was made.
   */
  private saveArtifact(a: { title: string; kind: string; content: string; artifactId?: string }): {
    id: string;
    version: number;
  } {
    const repo = this.o.store.artifacts;
    let id: string;
    let version: number;
    if (a.artifactId === undefined) {
      const row = repo.create({
        sessionId: this.id,
        title: a.title,
        kind: a.kind,
        content: a.content,
      });
      ({ id, version } = row);
    } else {
      const existing = repo.summary(a.artifactId);
      // SECURITY: a session revises only its own artifacts; another task's are not its to change.
      if (!existing || existing.sessionId !== this.id)
        throw new ToolError(
          `There is no artifact ${a.artifactId} in this task; leave out artifact_id to make a new one.`,
        );
      if (existing.kind !== a.kind)
        throw new ToolError(
          `Artifact ${a.artifactId} is ${existing.kind}, and a revision keeps its kind; make a new ${a.kind} artifact instead.`,
        );
      id = existing.id;
      version = repo.addVersion(id, a.content, a.title === existing.title ? undefined : a.title);
    }
    const event = { id, title: a.title, kind: a.kind, version };
    this.record('artifact', event);
    this.emitEvent({ type: 'artifact', ...event });
    return { id, version };
  }

  /**
   * `schedule_automation`: the plan is checked, shown to the person and recorded with their
   * answer; the automation is created only on a yes. Asked in every approval mode, and every
   * call is its own question (no answer is remembered for the next one).
   */
  private async scheduleWithConsent(
    scheduler: AutomationScheduler,
    use: ToolUseBlock,
    input: ScheduleRequest,
  ): Promise<string> {
    const plan = await scheduler.plan(input);
    const verdict: AutomationVerdict = this.o.approver.approveAutomation
      ? await this.o.approver.approveAutomation(plan)
      : { answer: 'deny', reason: NO_ONE_TO_ASK };
    const answer = verdict.answer === 'allow' ? 'allow' : 'deny';
    this.record('approval', { kind: 'tool', tool_use_id: use.id, answer, automation: plan });
    this.emitEvent({ type: 'approval', kind: 'tool', subject: use.name, answer });
    // SECURITY: an automation outlives the task with its folders and hosts; a prompt injection
    // must not make itself a recurring job. Nothing is created without the person's yes.
    if (answer !== 'allow') throw new ToolError(verdict.reason ?? AUTOMATION_DECLINED);
    return scheduler.create(input, this.id);
  }

  /** Asks the person about a host outside the allowlist, and records the answer. */
  async askNetwork(host: string, port: number): Promise<PersonAnswer> {
    const answer = await this.o.approver.askNetwork(host, port);
    this.record('approval', { kind: 'network', host, port, answer });
    this.emitEvent({ type: 'approval', kind: 'network', subject: `${host}:${port}`, answer });
    return answer;
  }
}

function textOf(content: ContentBlock[]): string {
  return content
    .filter((b) => b.type === 'text')
    .map((b) => (b as { text: string }).text)
    .join('');
}

/** Characters of what a request sends that grows with the conversation. */
function requestChars(p: TurnParams): number {
  return JSON.stringify(p.messages).length + JSON.stringify(p.system ?? '').length;
}

/** The UI's part of a stored context event. */
function contextEventFields(e: StoredContextEvent) {
  return {
    action: e.action,
    tokensBefore: e.tokensBefore,
    tokensAfter: e.tokensAfter,
    message: e.message,
  };
}
