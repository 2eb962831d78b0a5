/**
 * A command's live output as lines, appended in place: a 100,000-line output is never copied or
 * re-split on each chunk. `version` changes on every append so views know to redraw.
 */
export interface OutputBuffer {
  lines: string[];
  /** The last line, while it has no newline yet. */
  partial: string;
  bytes: number;
  version: number;
}

/** Lines kept per output; older ones are dropped (the model's copy is cut anyway). */
export const MAX_OUTPUT_LINES = 250_000;

/** An empty buffer, for a command that has not printed yet. */
export function newOutput(): OutputBuffer {
  return { lines: [], partial: '', bytes: 0, version: 0 };
}

/** Appends a chunk, splitting it into lines. */
export function appendOutput(buf: OutputBuffer, text: string): void {
  buf.bytes += text.length;
  buf.version++;
  const parts = (buf.partial + text).split('\n');
  buf.partial = parts.pop() ?? '';
  for (const p of parts) buf.lines.push(p.endsWith('\r') ? p.slice(0, -1) : p);
  if (buf.lines.length > MAX_OUTPUT_LINES) buf.lines.splice(0, buf.lines.length - MAX_OUTPUT_LINES);
}

/** How many lines there are to show, counting an unfinished last line. */
export function lineCount(buf: OutputBuffer): number {
  return buf.lines.length + (buf.partial ? 1 : 0);
}

/** Line `i` (0-based), the unfinished last line included. */
export function lineAt(buf: OutputBuffer, i: number): string {
  return i < buf.lines.length ? buf.lines[i]! : buf.partial;
}

/** A buffer holding `text` (a stored result, shown when no live output was seen). */
export function outputOf(text: string): OutputBuffer {
  const b = newOutput();
  appendOutput(b, text);
  return b;
}
