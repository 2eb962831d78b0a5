// One way to write dollars, shared with the CLI and the core's sentences.
export { formatCost } from '../../shared/usage.js';

/** `812`, `12.3k`, `1.2M` tokens. */
export function formatTokens(n: number): string {
  if (n < 1000) return String(n);
  if (n < 1_000_000) return `${(n / 1000).toFixed(n < 10_000 ? 1 : 0)}k`;
  return `${(n / 1_000_000).toFixed(1)}M`;
}

/** A size as a person reads it: 812 bytes, 14.2 KB, 3.1 MB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} byte${n === 1 ? '' : 's'}`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/** `850 ms`, `4.2 s`, `3 min 5 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms % 60_000) / 1000)} s`;
}

const STATUS: Record<string, string> = {
  idle: 'Not started',
  running: 'Working',
  done: 'Done',
  cancelled: 'Stopped',
  error: 'Failed',
  refusal: 'Declined',
  max_tokens: 'Cut off',
  interrupted: 'Interrupted',
  spend_limit: 'Spend limit',
};

/** The word a person sees for a task status. */
export function statusLabel(status: string, pendingApprovals = 0): string {
  if (status === 'running' && pendingApprovals > 0) return 'Needs you';
  return STATUS[status] ?? status;
}

/** The colour class of a status chip. */
export function statusTone(status: string, pendingApprovals = 0): string {
  if (status === 'running') return pendingApprovals > 0 ? 'attention' : 'active';
  if (status === 'done') return 'ok';
  if (status === 'error' || status === 'refusal' || status === 'spend_limit') return 'fail';
  return 'neutral';
}

/** What a tool call does, in one line: its command, path or address. */
export function toolSubject(input: unknown): string {
  const i = (input ?? {}) as Record<string, unknown>;
  if (typeof i.command === 'string') return i.command;
  if (typeof i.path === 'string') return i.path;
  if (typeof i.url === 'string') return i.url;
  if (typeof i.title === 'string') return i.title;
  try {
    return JSON.stringify(input);
  } catch {
    return '';
  }
}

/** "Relative" time for lists: `just now`, `5 min ago`, `3 h ago`, or the date. */
export function formatWhen(at: number, now = Date.now()): string {
  const s = Math.round((now - at) / 1000);
  if (s < 45) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86_400) return `${Math.round(s / 3600)} h ago`;
  return new Date(at).toLocaleDateString();
}
