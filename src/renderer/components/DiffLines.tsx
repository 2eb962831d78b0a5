import type { DiffLine } from '../lib/line-diff.js';

/**
 * Lines of a line diff, each marked added, removed or kept (for screen readers too), at most
 * `max` of them with a count of the rest. One view for artifact versions and changed files.
 */
export function DiffLines(props: { lines: DiffLine[]; max: number; className?: string }) {
  const shown = props.lines.slice(0, props.max);
  return (
    <pre className={`diff-lines${props.className ? ` ${props.className}` : ''}`}>
      {shown.map((l, i) => (
        <div key={i} className={`diff-line ${l.op}`}>
          <span className="diff-mark" aria-hidden="true">
            {l.op === 'add' ? '+' : l.op === 'del' ? '−' : ' '}
          </span>
          <span className="sr-only">
            {l.op === 'add' ? 'added: ' : l.op === 'del' ? 'removed: ' : ''}
          </span>
          {l.text || ' '}
        </div>
      ))}
      {props.lines.length > shown.length && (
        <div className="muted">… and {props.lines.length - shown.length} more lines</div>
      )}
    </pre>
  );
}
