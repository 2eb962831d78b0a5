import type Anthropic from '@anthropic-ai/sdk';
import { APIUserAbortError } from '@anthropic-ai/sdk';
import type {
  ContentBlock,
  MessageParam,
  ThinkingConfigParam,
  ToolUseBlock,
} from '@anthropic-ai/sdk/resources/messages';
import { EventEmitter } from 'node:events';
import type { AgentEvent } from '../../shared/agent-events.js';
import type { Effort } from '../../shared/api.js';
import type { AutomationPlan } from '../../shared/app-contract.js';
import { PaddockError } from '../../shared/result.js';
import type { Store } from '../store/store.js';
import type { PersonAnswer } from '../vm/egress/proxy.js';
import {
  pushToolResult,
  pushUser,
  rebuildConversation,
  trimToBudget,
  unansweredToolUses,
  type StoredToolResult,
} from './conversation.js';
import { DEFAULT_RETRY, streamTurn, type RetryPolicy } from './model.js';
import { costOf } from './pricing.js';
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
  /** Keep the conversation under this many (estimated) tokens. */
  contextBudgetTokens: number;
}

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
      for (;;) {
        const system = systemPrompt({
          ...this.o.prompt,
          now: (this.o.now ?? (() => new Date()))(),
        });
        const trimmed = trimToBudget(this.messages, this.o.settings.contextBudgetTokens, system);
        if (trimmed)
          this.emitEvent({
            type: 'notice',
            message: `Trimmed ${trimmed} older tool output(s) to stay within the context limit.`,
          });
        const msg = await streamTurn(
          this.o.client,
          {
            model: this.o.settings.model,
            max_tokens: this.o.settings.maxTokens,
            system,
            messages: this.messages,
            tools: apiTools(this.tools),
            ...thinkingParam(this.o.settings),
          },
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
        const cost = costOf(msg.model || this.o.settings.model, msg.usage);
        const usage = {
          inputTokens: msg.usage.input_tokens,
          outputTokens: msg.usage.output_tokens,
          cacheReadTokens: msg.usage.cache_read_input_tokens ?? 0,
          cacheWriteTokens: msg.usage.cache_creation_input_tokens ?? 0,
        };
        this.o.store.sessions.addUsage(this.id, usage, cost);
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

function thinkingParam(s: AgentSettings): {
  thinking?: ThinkingConfigParam;
  output_config?: { effort: Effort };
} {
  return { thinking: { type: 'adaptive' }, output_config: { effort: s.effort } };
}
