import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import type { TaskFile } from '../../../shared/app-contract.js';
import { call } from '../../api/hooks.js';
import { ArtifactFrame } from '../../components/ArtifactFrame.js';
import { DiffLines } from '../../components/DiffLines.js';
import { CodeBlock } from '../../components/Markdown.js';
import { formatBytes } from '../../lib/format.js';
import { lineDiff } from '../../lib/line-diff.js';

type View = 'content' | 'rendered' | 'changes';

/** Lines of a diff drawn at most; the rest are counted. */
const MAX_DIFF_LINES = 5000;

/**
 * The preview of one file a task changed, in a modal dialog: text and code highlighted, images
 * shown, Markdown rendered in an artifact frame, what the agent's edits changed when the text
 * before is known, and a sentence for a binary, too-large or missing file. The core bounds what
 * it sends (1 MB of text, 5 MB of image), so nothing here can hold the page up for long.
 */
export function FilePreview(props: { taskId: string; path: string; onClose: () => void }) {
  const { taskId, path, onClose } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const [file, setFile] = useState<TaskFile | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [view, setView] = useState<View>('content');

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  useEffect(() => {
    // One preview per file: TaskView mounts a new one (keyed by path) for another file.
    let live = true;
    call('tasks:file', { id: taskId, path }).then(
      (f) => {
        if (!live) return;
        setFile(f);
        setView(f.language === 'markdown' ? 'rendered' : 'content');
      },
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [taskId, path]);

  const markdown = file?.kind === 'text' && file.language === 'markdown';
  const hasBefore = file?.kind === 'text' && file.before !== undefined;

  return (
    <dialog
      ref={ref}
      className="file-preview"
      data-testid="file-preview"
      aria-labelledby="file-preview-title"
      onClose={onClose}
      onCancel={onClose}
    >
      <header className="file-preview-head">
        <h3 id="file-preview-title" className="file-preview-title" title={path}>
          {path}
        </h3>
        {file && <span className="small muted tabular">{formatBytes(file.size)}</span>}
        <button type="button" className="quiet" onClick={() => ref.current?.close()}>
          Close
        </button>
      </header>
      {(markdown || hasBefore) && (
        <div className="file-preview-tabs" role="tablist" aria-label="Show">
          {markdown && (
            <Tab id="rendered" view={view} setView={setView}>
              Rendered
            </Tab>
          )}
          <Tab id="content" view={view} setView={setView}>
            {markdown ? 'Source' : 'Content'}
          </Tab>
          {hasBefore && (
            <Tab id="changes" view={view} setView={setView}>
              Changes
            </Tab>
          )}
        </div>
      )}
      <div className="file-preview-body">
        {error && (
          <p className="error small" role="alert">
            {error}
          </p>
        )}
        {!file && !error && <p className="muted small">Loading…</p>}
        {file && <Body file={file} view={view} />}
      </div>
    </dialog>
  );
}

function Tab(props: { id: View; view: View; setView: (v: View) => void; children: ReactNode }) {
  return (
    <button
      type="button"
      role="tab"
      aria-selected={props.view === props.id}
      className={props.view === props.id ? 'tab active' : 'tab'}
      onClick={() => props.setView(props.id)}
    >
      {props.children}
    </button>
  );
}

function Body(props: { file: TaskFile; view: View }) {
  const { file, view } = props;
  switch (file.kind) {
    case 'missing':
      return <p className="muted">This file is not there any more (moved or deleted since).</p>;
    case 'binary':
      return (
        <p className="muted">
          This is a binary file ({formatBytes(file.size)}); Paddock does not show its contents.
        </p>
      );
    case 'too-large':
      return (
        <p className="muted">
          This file is {formatBytes(file.size)}, too large to preview here; open it from its folder.
        </p>
      );
    case 'image':
      return (
        <div className="file-preview-image">
          <img src={file.dataUrl} alt={file.path} />
        </div>
      );
    case 'text':
      if (view === 'rendered' && file.language === 'markdown')
        return (
          <ArtifactFrame
            kind="markdown"
            title={file.path}
            content={file.content ?? ''}
            height={520}
          />
        );
      if (view === 'changes' && file.before !== undefined)
        return <Changes before={file.before} after={file.content ?? ''} />;
      return <CodeBlock code={file.content ?? ''} lang={file.language ?? null} />;
  }
}

/** What the agent's edits changed, line by line. */
function Changes(props: { before: string; after: string }) {
  const diff = useMemo(() => lineDiff(props.before, props.after), [props.before, props.after]);
  return (
    <div data-testid="file-diff">
      <p className="small muted">
        What the agent’s edits changed: {diff.added} line{diff.added === 1 ? '' : 's'} added,{' '}
        {diff.removed} removed{diff.exact ? '' : ' (shown as one block: too different to align)'}.
        Changes made by commands it ran are not included.
      </p>
      <DiffLines lines={diff.lines} max={MAX_DIFF_LINES} className="diff" />
    </div>
  );
}
