/**
 * What an agent session reports as it runs, live (to the UI, to `paddock run --json`). The stored
 * session events are a subset of these; deltas are live only.
 */
export type AgentEvent =
  | { type: 'session'; sessionId: string; model: string }
  | { type: 'user'; text: string }
  | { type: 'text-delta'; text: string }
  | { type: 'thinking-delta'; text: string }
  | {
      type: 'assistant';
      text: string;
      stopReason: string | null;
      /** Uncached input tokens. */
      inputTokens: number;
      outputTokens: number;
      cacheReadTokens: number;
      cacheWriteTokens: number;
    }
  | { type: 'tool-start'; id: string; name: string; input: unknown }
  | { type: 'tool-output'; id: string; stream: 'stdout' | 'stderr'; text: string }
  | {
      type: 'tool-result';
      id: string;
      name: string;
      content: string;
      isError: boolean;
      exitCode?: number;
      durationMs: number;
    }
  | { type: 'approval'; kind: 'tool' | 'network'; subject: string; answer: string; reason?: string }
  | { type: 'retry'; attempt: number; delayMs: number; reason: string }
  | { type: 'notice'; message: string }
  /**
   * The conversation was made smaller to stay within the model's context: old tool outputs
   * cleared, or everything before this point compacted into a summary.
   */
  | {
      type: 'context';
      action: 'cleared' | 'compacted';
      tokensBefore: number;
      tokensAfter: number;
      message: string;
    }
  /** `create_artifact` made an artifact (version 1) or a new version of one. */
  | { type: 'artifact'; id: string; title: string; kind: string; version: number }
  | { type: 'error'; code: string; message: string }
  | { type: 'done'; stopReason: string; costUsd: number };
