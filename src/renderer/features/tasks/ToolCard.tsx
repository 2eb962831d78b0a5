import { memo, useMemo } from 'react';
import { VirtualList } from '../../components/VirtualList.js';
import { formatDuration, toolSubject } from '../../lib/format.js';
import { lineAt, lineCount } from '../../lib/output-buffer.js';
import { outputFor, type TaskItem } from './task-model.js';

type ToolItem = Extract<TaskItem, { kind: 'tool' }>;

const ROW = 18;
const MAX_HEIGHT = 320;

/** Live output of a command, virtualised so any length scrolls smoothly. */
function Output(props: { item: ToolItem }) {
  const { item } = props;
  // The stored result is split once per result, not once per render.
  const buf = useMemo(() => outputFor(item), [item]);
  const count = lineCount(buf);
  if (count === 0) return null;
  return (
    <VirtualList
      className="output"
      label={`Output of ${item.name}`}
      count={count}
      rowHeight={ROW}
      maxHeight={MAX_HEIGHT}
      follow={!item.result}
      version={buf.version}
      renderRow={(i) => lineAt(buf, i) || ' '}
    />
  );
}

/**
 * One tool call: what it runs, its live output, exit code and duration, and the person's answer
 * when it needed approval. Redraws only when its own item changes.
 */
export const ToolCard = memo(function ToolCard(props: { item: ToolItem }) {
  const { item } = props;
  const r = item.result;
  const state = r ? (r.isError ? 'failed' : 'ok') : item.stopped ? 'stopped' : 'running';
  const stateText =
    state === 'running'
      ? 'Running…'
      : state === 'stopped'
        ? 'Stopped'
        : r?.exitCode !== undefined
          ? `Exit ${r.exitCode}`
          : r?.isError
            ? 'Failed'
            : 'Done';
  return (
    <article className={`tool-card ${state}`} data-testid="tool-card" data-tool={item.name}>
      <header className="tool-head">
        <span className="tool-name">{item.name}</span>
        <code className="tool-subject" title={toolSubject(item.input)}>
          {toolSubject(item.input)}
        </code>
        <span className={`chip small ${state}`} data-testid="tool-state">
          {stateText}
        </span>
        <span className="muted small tabular tool-time">
          {r ? formatDuration(r.durationMs) : ''}
        </span>
      </header>
      {item.approval && (
        <p className="small muted">
          {item.approval === 'deny'
            ? 'You declined this tool call.'
            : 'You allowed this tool call.'}
        </p>
      )}
      <Output item={item} />
    </article>
  );
});
