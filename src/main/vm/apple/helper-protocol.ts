/**
 * The Swift helper's stdout: one JSON object per line. Anything else the helper (or a crashing
 * runtime) prints is reported as `garbage`, never thrown, so a noisy helper cannot break the host.
 */

/** One event the helper reports. */
export type HelperEvent =
  | { event: 'started' }
  | { event: 'paused' }
  | { event: 'resumed' }
  | { event: 'stopped'; reason: string }
  | { event: 'error'; message: string }
  | { event: 'garbage'; line: string };

/** Operations the host writes to the helper's stdin, one JSON line each (after the config). */
export type HelperOp = { op: 'stop' } | { op: 'pause' } | { op: 'resume' };

/** Longest line kept; a longer one is cut and reported as garbage (a runaway helper). */
export const MAX_LINE = 64 * 1024;

/** Encodes an operation as the line the helper reads. */
export function encodeOp(op: HelperOp): string {
  return JSON.stringify(op) + '\n';
}

/** Parses one line (without its newline) into an event. */
export function parseHelperLine(line: string): HelperEvent {
  const text = line.trim();
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { event: 'garbage', line: text.slice(0, 500) };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    return { event: 'garbage', line: text.slice(0, 500) };
  }
  const o = v as Record<string, unknown>;
  const str = (x: unknown, fallback: string): string => (typeof x === 'string' ? x : fallback);
  switch (o.event) {
    case 'started':
    case 'paused':
    case 'resumed':
      return { event: o.event };
    case 'stopped':
      return { event: 'stopped', reason: str(o.reason, 'unknown') };
    case 'error':
      return { event: 'error', message: str(o.message, 'The VM helper reported an error.') };
    default:
      return { event: 'garbage', line: text.slice(0, 500) };
  }
}

/** Splits the helper's stdout into lines and events; feed it chunks as they arrive. */
export class HelperLineParser {
  private buf = '';

  /** Events completed by this chunk. */
  push(chunk: string): HelperEvent[] {
    this.buf += chunk;
    const out: HelperEvent[] = [];
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      if (line.trim()) out.push(parseHelperLine(line));
    }
    if (this.buf.length > MAX_LINE) {
      out.push({ event: 'garbage', line: this.buf.slice(0, 500) });
      this.buf = '';
    }
    return out;
  }

  /** At end of stream: a last line without newline (e.g. cut off by a crash). */
  end(): HelperEvent[] {
    const rest = this.buf;
    this.buf = '';
    return rest.trim() ? [parseHelperLine(rest)] : [];
  }
}
