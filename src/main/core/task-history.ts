import path from 'node:path/posix';
import type { AgentEvent } from '../../shared/agent-events.js';
import type { SessionEventRow } from '../store/sessions-repo.js';
import { filesModifiedSince } from './folders.js';

interface StoredBlock {
  type: string;
  text?: string;
  id?: string;
  name?: string;
  input?: unknown;
}

const CONTINUE_NOTE = '[Your previous reply stopped at the output limit.';

function textOfContent(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return (content as StoredBlock[])
    .filter((b) => b.type === 'text' && typeof b.text === 'string')
    .map((b) => b.text)
    .join('');
}

/**
 * Rebuilds what a live view would have seen from a task's stored events, so reopening a task
 * (or the app) shows the same conversation, tool cards and approvals. Deltas and live output are
 * not stored; a tool card shows its stored result instead.
 */
export function displayEvents(rows: SessionEventRow[]): AgentEvent[] {
  const out: AgentEvent[] = [];
  const toolNames = new Map<string, string>();
  for (const row of rows) {
    const p = (row.payload ?? {}) as Record<string, unknown>;
    switch (row.type) {
      case 'user': {
        const text = textOfContent(p.content);
        if (!text.startsWith(CONTINUE_NOTE)) out.push({ type: 'user', text });
        break;
      }
      case 'assistant': {
        const content = (Array.isArray(p.content) ? p.content : []) as StoredBlock[];
        const usage = (p.usage ?? {}) as {
          input_tokens?: number;
          output_tokens?: number;
          cache_read_input_tokens?: number | null;
          cache_creation_input_tokens?: number | null;
        };
        const stopReason = typeof p.stop_reason === 'string' ? p.stop_reason : null;
        out.push({
          type: 'assistant',
          text: textOfContent(content),
          stopReason,
          inputTokens: usage.input_tokens ?? 0,
          outputTokens: usage.output_tokens ?? 0,
          cacheReadTokens: usage.cache_read_input_tokens ?? 0,
          cacheWriteTokens: usage.cache_creation_input_tokens ?? 0,
        });
        for (const b of content) {
          if (b.type === 'tool_use' && b.id && b.name) {
            toolNames.set(b.id, b.name);
            out.push({ type: 'tool-start', id: b.id, name: b.name, input: b.input });
          }
        }
        if (stopReason === 'end_turn' || stopReason === 'stop_sequence' || stopReason === 'refusal')
          out.push({ type: 'done', stopReason, costUsd: 0 });
        break;
      }
      case 'tool_result': {
        const id = String(p.tool_use_id ?? '');
        out.push({
          type: 'tool-result',
          id,
          name: String(p.name ?? toolNames.get(id) ?? ''),
          content: String(p.content ?? ''),
          isError: p.is_error === true,
          ...(typeof p.exit_code === 'number' ? { exitCode: p.exit_code } : {}),
          durationMs: typeof p.duration_ms === 'number' ? p.duration_ms : 0,
        });
        break;
      }
      case 'approval': {
        const kind = p.kind === 'network' ? 'network' : 'tool';
        const subject =
          kind === 'network'
            ? `${String(p.host)}:${String(p.port)}`
            : (toolNames.get(String(p.tool_use_id)) ?? 'tool');
        out.push({ type: 'approval', kind, subject, answer: String(p.answer ?? '') });
        break;
      }
      case 'artifact':
        if (typeof p.id === 'string' && typeof p.version === 'number')
          out.push({
            type: 'artifact',
            id: p.id,
            title: String(p.title ?? ''),
            kind: String(p.kind ?? ''),
            version: p.version,
          });
        break;
      case 'context':
        // Where the conversation was made smaller to fit the model's context.
        if (p.action === 'cleared' || p.action === 'compacted')
          out.push({
            type: 'context',
            action: p.action,
            tokensBefore: typeof p.tokensBefore === 'number' ? p.tokensBefore : 0,
            tokensAfter: typeof p.tokensAfter === 'number' ? p.tokensAfter : 0,
            message: String(p.message ?? ''),
          });
        break;
      case 'cancelled':
        out.push({ type: 'done', stopReason: 'cancelled', costUsd: 0 });
        break;
      case 'error':
        out.push({ type: 'error', code: String(p.code ?? 'ERROR'), message: String(p.message) });
        break;
      default:
        break;
    }
  }
  return out;
}

/** The tools whose `path` input names a file they write. */
const WRITING_TOOLS = new Set(['write_file', 'edit_file']);

/**
 * Files a task wrote through its file tools, as `share/relative/path` (the share's /mnt name),
 * from the stored tool calls whose result was not an error. Paths outside a share are skipped:
 * they live only in the VM.
 */
export function filesFromToolCalls(
  rows: SessionEventRow[],
  shares: { name: string; readOnly: boolean }[],
): string[] {
  const cwd = shares[0] ? `/mnt/${shares[0].name}` : '/root';
  const pending = new Map<string, string>();
  const files = new Set<string>();
  for (const row of rows) {
    const p = (row.payload ?? {}) as Record<string, unknown>;
    if (row.type === 'assistant' && Array.isArray(p.content)) {
      for (const b of p.content as StoredBlock[]) {
        const input = b.input as { path?: unknown } | undefined;
        if (b.type === 'tool_use' && b.id && WRITING_TOOLS.has(b.name ?? '')) {
          if (typeof input?.path === 'string') pending.set(b.id, path.resolve(cwd, input.path));
        }
      }
    } else if (row.type === 'tool_result') {
      const guest = pending.get(String(p.tool_use_id));
      if (!guest || p.is_error === true) continue;
      const m = /^\/mnt\/([^/]+)\/(.+)$/.exec(guest);
      if (m && shares.some((s) => s.name === m[1] && !s.readOnly)) files.add(`${m[1]}/${m[2]}`);
    }
  }
  return [...files];
}

/**
 * The files a task changed, as `share/relative/path`: what its file tools wrote, and what changed
 * in its read-write folders since it began (commands write too). At most 500, sorted.
 */
export function filesChanged(
  rows: SessionEventRow[],
  folders: { hostPath: string; name: string; readOnly: boolean }[],
  since: number,
): string[] {
  const files = new Set(filesFromToolCalls(rows, folders));
  for (const f of folders) {
    if (f.readOnly) continue;
    for (const rel of filesModifiedSince(f.hostPath, since)) files.add(`${f.name}/${rel}`);
  }
  return [...files].sort().slice(0, 500);
}
