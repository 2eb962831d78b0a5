import { useEffect, useMemo, useRef, useState, type KeyboardEvent } from 'react';
import type { Res } from '../../../shared/api.js';
import type {
  ChangeFile,
  ChangeOutcome,
  Changeset,
  ChangesetSummary,
  FileSide,
} from '../../../shared/changes-contract.js';
import { call, useEvent } from '../../api/hooks.js';
import { DiffLines } from '../../components/DiffLines.js';
import { formatBytes } from '../../lib/format.js';
import { lineDiff } from '../../lib/line-diff.js';
import {
  actionsFor,
  changesetStatusLabel,
  changesetTone,
  countsText,
  formatMode,
  kindDetail,
  kindLabel,
  pathsFor,
  pickFile,
  shortHash,
  statusLabel,
  statusTone,
  waitingCount,
  type FileAction,
} from './change-model.js';

/** Lines of a diff drawn at most; the rest are counted. */
const MAX_DIFF_LINES = 5000;
/** Files listed at most; past it the filter finds the others (every action still covers all). */
const MAX_LISTED = 500;
/** From this many files on, the list has a filter box. */
const FILTER_FROM = 30;

const CHANNEL: Record<FileAction, 'changes:apply' | 'changes:discard' | 'changes:undo'> = {
  apply: 'changes:apply',
  discard: 'changes:discard',
  undo: 'changes:undo',
};

const DONE_VERB: Record<FileAction, string> = {
  apply: 'Applied',
  discard: 'Discarded',
  undo: 'Undid',
};

/** `Applied 2 files.`, `Nothing was discarded.`: what an action did, for the status line. */
function outcomeSentence(action: FileAction, asked: number, refused: number): string {
  const done = Math.max(0, asked - refused);
  if (done === 0)
    return `Nothing was ${action === 'undo' ? 'undone' : DONE_VERB[action].toLowerCase()}.`;
  return `${DONE_VERB[action]} ${done} file${done === 1 ? '' : 's'}.`;
}

/**
 * One changeset as the core has it now: fetched, then fetched again when `changes:changed` says it
 * moved on (applied from another window, or staged again by a refresh).
 */
function useChangeset(id: string): {
  changeset: Changeset | null;
  error: string | null;
  set(c: Changeset): void;
} {
  const [got, setGot] = useState<Changeset | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [seen, setSeen] = useState(0);
  useEffect(() => {
    let live = true;
    call('changes:get', { id }).then(
      (c) => {
        if (!live) return;
        setGot(c);
        setError(null);
      },
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [id, seen]);
  useEvent('changes:changed', (s) => {
    if (s.id === id && (!got || got.id !== id || s.updatedAt > got.updatedAt))
      setSeen((n) => n + 1);
  });
  return { changeset: got && got.id === id ? got : null, error, set: setGot };
}

/**
 * The review of what a task's session staged in its review folders: every changeset (a folder)
 * with its files; a file's diff, or its sizes and hashes when it is binary or too large; accept
 * or reject file by file or all at once; conflicts (the person's copy changed since) shown with
 * both sides and never overwritten; undo after applying. A modal dialog, opened from the side
 * panel or from the call to action when the task ends.
 */
export function ReviewDialog(props: {
  changesets: ChangesetSummary[];
  /** The changeset to show first. */
  initial: string;
  running: boolean;
  refreshing: boolean;
  /** Why the last list or "Check again" failed, as the core said it. */
  error: string | null;
  onRefresh(): void;
  onClose(): void;
}) {
  const { changesets, running, refreshing, onRefresh, onClose } = props;
  const ref = useRef<HTMLDialogElement>(null);
  const [current, setCurrent] = useState(props.initial);
  const shown = changesets.some((c) => c.id === current) ? current : (changesets[0]?.id ?? null);

  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);

  return (
    <dialog
      ref={ref}
      className="file-preview review-dialog"
      data-testid="review-dialog"
      aria-labelledby="review-title"
      onClose={onClose}
      onCancel={onClose}
    >
      <header className="file-preview-head">
        <h3 id="review-title" className="review-title">
          Review changes
        </h3>
        {running && (
          <button
            type="button"
            onClick={onRefresh}
            disabled={refreshing}
            data-testid="review-refresh"
            title="Read again what the agent has staged so far"
          >
            {refreshing ? 'Checking…' : 'Check again'}
          </button>
        )}
        <button type="button" className="quiet" onClick={() => ref.current?.close()}>
          Close
        </button>
      </header>
      {props.error && (
        <p className="error small review-error" role="alert">
          {props.error}
        </p>
      )}
      {changesets.length > 1 && (
        <div className="file-preview-tabs" role="tablist" aria-label="Folders">
          {changesets.map((c) => (
            <button
              key={c.id}
              type="button"
              role="tab"
              aria-selected={c.id === shown}
              className={c.id === shown ? 'tab active' : 'tab'}
              title={c.hostPath}
              onClick={() => setCurrent(c.id)}
            >
              {c.name}
            </button>
          ))}
        </div>
      )}
      {shown ? (
        <ChangesetReview key={shown} id={shown} />
      ) : (
        <p className="muted file-preview-body">Nothing is staged for review.</p>
      )}
    </dialog>
  );
}

/** One changeset: its folder, the actions on every file, the file list and the file shown. */
function ChangesetReview(props: { id: string }) {
  const { id } = props;
  const { changeset: cs, error: loadError, set } = useChangeset(id);
  const [selected, setSelected] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmDiscard, setConfirmDiscard] = useState(false);
  const [result, setResult] = useState<{
    sentence: string;
    refused: ChangeOutcome['refused'];
  } | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [filter, setFilter] = useState('');
  const confirmRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (confirmDiscard) confirmRef.current?.focus();
  }, [confirmDiscard]);

  const files = useMemo(() => cs?.files ?? [], [cs]);
  const path = pickFile(files, selected);
  const file = files.find((f) => f.path === path) ?? null;
  const listed = useMemo(() => {
    const q = filter.trim().toLowerCase();
    const match = q ? files.filter((f) => f.path.toLowerCase().includes(q)) : files;
    return { files: match.slice(0, MAX_LISTED), more: Math.max(0, match.length - MAX_LISTED) };
  }, [files, filter]);

  if (loadError && !cs)
    return (
      <p className="error file-preview-body" role="alert">
        {loadError}
      </p>
    );
  if (!cs) return <p className="muted file-preview-body">Loading…</p>;

  const pending = pathsFor(cs, 'apply');
  const discardable = pathsFor(cs, 'discard');
  const undoable = pathsFor(cs, 'undo');
  const waiting = waitingCount(cs);

  const act = (action: FileAction, paths?: string[]) => {
    const asked = paths?.length ?? pathsFor(cs, action).length;
    setBusy(true);
    setActionError(null);
    setConfirmDiscard(false);
    call(CHANNEL[action], paths ? { id, paths } : { id }).then(
      (o) => {
        set(o.changeset);
        setResult({
          sentence: outcomeSentence(action, asked, o.refused.length),
          refused: o.refused,
        });
        setBusy(false);
      },
      (e: Error) => {
        setActionError(e.message);
        setBusy(false);
      },
    );
  };

  const onListKey = (e: KeyboardEvent<HTMLUListElement>) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const i = listed.files.findIndex((f) => f.path === path);
    const next = listed.files[e.key === 'ArrowDown' ? i + 1 : i - 1];
    if (!next) return;
    e.preventDefault();
    setSelected(next.path);
    const el = e.currentTarget.querySelector<HTMLButtonElement>(
      `[data-path="${CSS.escape(next.path)}"]`,
    );
    el?.focus();
  };

  return (
    <div className="review-changeset" data-testid="review-changeset" data-changeset={cs.id}>
      <div className="review-folder">
        <div className="review-folder-name">
          <strong>{cs.name}</strong>{' '}
          <code className="small" data-testid="review-host-path">
            {cs.hostPath}
          </code>
        </div>
        <span
          className={`chip small ${changesetTone(cs.status, waiting)}`}
          data-testid="review-status"
        >
          {changesetStatusLabel(cs.status, waiting)}
        </span>
        <span className="small muted">{countsText(cs)}</span>
        <span className="grow" />
        {confirmDiscard ? (
          <span className="review-confirm" role="group" aria-label="Confirm discarding">
            <span className="small">
              Discard {discardable.length} file{discardable.length === 1 ? '' : 's'}? The agent’s
              versions are thrown away; your folder stays as it is.
            </span>
            <button
              ref={confirmRef}
              type="button"
              className="danger"
              disabled={busy}
              onClick={() => act('discard')}
            >
              Discard {discardable.length} file{discardable.length === 1 ? '' : 's'}
            </button>
            <button type="button" onClick={() => setConfirmDiscard(false)}>
              Cancel
            </button>
          </span>
        ) : (
          <>
            <button
              type="button"
              className="primary"
              disabled={busy || pending.length === 0}
              onClick={() => act('apply')}
            >
              Apply all
            </button>
            <button
              type="button"
              className="danger"
              disabled={busy || discardable.length === 0}
              onClick={() => setConfirmDiscard(true)}
            >
              Discard all
            </button>
            {undoable.length > 0 && (
              <button type="button" disabled={busy} onClick={() => act('undo')}>
                Undo all
              </button>
            )}
          </>
        )}
      </div>
      <div className="review-outcome" role="status" aria-live="polite" data-testid="review-outcome">
        {result?.sentence}
      </div>
      {result && result.refused.length > 0 && (
        <ul className="plain review-refused" role="alert" data-testid="review-refused">
          {result.refused.map((r) => (
            <li key={r.path} className="small">
              <strong>Not done:</strong> <code>{r.path}</code> — {r.reason}
            </li>
          ))}
        </ul>
      )}
      {actionError && (
        <p className="error small" role="alert">
          {actionError}
        </p>
      )}
      <div className="review-body">
        <div className="review-list">
          {files.length >= FILTER_FROM && (
            <input
              type="search"
              placeholder="Filter files"
              aria-label="Filter files"
              value={filter}
              onChange={(e) => setFilter(e.target.value)}
            />
          )}
          <ul className="plain review-files" aria-label="Files" onKeyDown={onListKey}>
            {listed.files.map((f) => (
              <li key={f.path}>
                <FileRow file={f} selected={f.path === path} onSelect={setSelected} />
              </li>
            ))}
            {listed.more > 0 && (
              <li className="small muted">
                and {listed.more} more; filter to find one (the buttons above cover all)
              </li>
            )}
          </ul>
        </div>
        <div className="review-detail">
          {file ? (
            <FileDetail
              key={file.path}
              changesetId={cs.id}
              file={file}
              busy={busy}
              onAction={(a) => act(a, [file.path])}
            />
          ) : (
            <p className="muted">No files in this changeset.</p>
          )}
        </div>
      </div>
    </div>
  );
}

/** The size a file has after the change, or before it when it was deleted. */
function sizeOf(f: ChangeFile): number | null {
  return f.after?.size ?? f.before?.size ?? null;
}

function FileRow(props: { file: ChangeFile; selected: boolean; onSelect(path: string): void }) {
  const f = props.file;
  const size = sizeOf(f);
  return (
    <button
      type="button"
      className={`review-file${props.selected ? ' current' : ''}`}
      aria-current={props.selected ? 'true' : undefined}
      data-path={f.path}
      data-testid="review-file"
      onClick={() => props.onSelect(f.path)}
    >
      <span className={`chip small kind-${f.kind}`}>{kindLabel(f.kind)}</span>
      <span className="review-file-path" title={kindDetail(f) || f.path}>
        {f.path}
      </span>
      <span className="small muted tabular">{size === null ? '' : formatBytes(size)}</span>
      <span className={`chip small ${statusTone(f.status)}`}>{statusLabel(f.status)}</span>
    </button>
  );
}

const ACTION_LABEL: Record<FileAction, string> = {
  apply: 'Accept',
  discard: 'Reject',
  undo: 'Undo',
};

/** One file: what changed about it, what can be done with it, and its diff or its sides. */
function FileDetail(props: {
  changesetId: string;
  file: ChangeFile;
  busy: boolean;
  onAction(a: FileAction): void;
}) {
  const { file: f, busy, onAction } = props;
  const detail = kindDetail(f);
  const conflict = f.status === 'conflict';
  // The button pressed goes away with the status it acted on (Accept becomes Undo): keep the
  // keyboard here, on the next action or else the file's heading, rather than on the page.
  const acted = useRef(false);
  const head = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!acted.current) return;
    acted.current = false;
    const el = head.current;
    (
      el?.querySelector<HTMLButtonElement>('button:not(:disabled)') ?? el?.querySelector('h4')
    )?.focus();
  }, [f.status]);
  return (
    <div className="review-file-detail" data-testid="review-file-detail" data-path={f.path}>
      <div className="review-file-head" ref={head}>
        <h4 className="review-file-title" title={f.path} tabIndex={-1}>
          {f.path}
        </h4>
        <span className={`chip small kind-${f.kind}`}>{kindLabel(f.kind)}</span>
        <span className={`chip small ${statusTone(f.status)}`} data-testid="review-file-status">
          {statusLabel(f.status)}
        </span>
        <span className="grow" />
        {actionsFor(f.status).map((a) => (
          <button
            key={a}
            type="button"
            className={a === 'apply' ? 'primary' : a === 'discard' ? 'danger' : ''}
            disabled={busy}
            onClick={() => {
              acted.current = true;
              onAction(a);
            }}
          >
            {conflict && a === 'discard' ? 'Keep yours' : ACTION_LABEL[a]}
          </button>
        ))}
      </div>
      {detail && (
        <p className="small" data-testid="review-kind-detail">
          {f.kind === 'renamed' ? 'Renamed: ' : 'Permissions: '}
          <code>{detail}</code>
        </p>
      )}
      {f.note && !conflict && (
        <p className="small review-note" data-testid="review-file-note">
          <strong>Not done:</strong> {f.note}
        </p>
      )}
      {f.status === 'applied' && (
        <p className="small muted">Written to your folder; Undo puts back what was there.</p>
      )}
      {conflict && (
        <div className="review-conflict" data-testid="review-conflict">
          <p>
            <strong>Conflict: your copy changed.</strong> This file in your folder is not what it
            was when the agent started, so the agent’s version was not written. Nothing was
            overwritten. Compare the two below; <em>Keep yours</em> drops the agent’s version.
          </p>
          {f.note && <p className="small">{f.note}</p>}
        </div>
      )}
      <Sides file={f} />
      <FileContent changesetId={props.changesetId} file={f} />
    </div>
  );
}

/** A side's size, permissions, hash and link target, as the cells of one column. */
function SideCells(props: { side: FileSide | undefined; missing: string; label: string }) {
  const s = props.side;
  if (!s)
    return (
      <td className="muted" aria-label={`${props.label}: ${props.missing}`}>
        {props.missing}
      </td>
    );
  return (
    <td>
      <span className="tabular">{formatBytes(s.size)}</span>
      <span className="muted"> · mode {formatMode(s.mode)}</span>
      <br />
      <code className="small" title={`sha256 ${s.sha256}`}>
        sha256 {shortHash(s.sha256)}…
      </code>
      {s.linkTarget !== undefined && (
        <>
          <br />
          <span className="small">
            Link to <code>{s.linkTarget}</code>
          </span>
        </>
      )}
    </td>
  );
}

/**
 * The two sides of a change (three for a conflict: as it was, as the agent left it, and the
 * person's copy now), by size, permissions and hash, so a binary file can be judged too.
 */
function Sides(props: { file: ChangeFile }) {
  const f = props.file;
  const conflict = f.status === 'conflict';
  return (
    <table className="review-sides small" data-testid="review-sides">
      <thead>
        <tr>
          <th scope="col">Before</th>
          <th scope="col">{conflict ? 'Staged by the agent' : 'After'}</th>
          {conflict && <th scope="col">Your file now</th>}
        </tr>
      </thead>
      <tbody>
        <tr>
          <SideCells side={f.before} missing="Not there (new file)" label="Before" />
          <SideCells side={f.after} missing="Deleted" label="After" />
          {conflict && (
            <SideCells
              side={f.current}
              missing="Not there (you removed it)"
              label="Your file now"
            />
          )}
        </tr>
      </tbody>
    </table>
  );
}

/** What the content change is: a line diff of the text, or why there is none to show. */
function FileContent(props: { changesetId: string; file: ChangeFile }) {
  const { changesetId, file: f } = props;
  const link = f.before?.linkTarget !== undefined || f.after?.linkTarget !== undefined;
  const sameContent = f.before && f.after && f.before.sha256 === f.after.sha256;
  const wanted = !f.binary && !link && !sameContent;
  const [text, setText] = useState<Res<'changes:file'> | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!wanted) return;
    let live = true;
    call('changes:file', { id: changesetId, path: f.path }).then(
      (r) => live && setText(r),
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
    };
  }, [changesetId, f.path, wanted]);

  if (link)
    return (
      <p className="muted small" data-testid="review-link">
        A symbolic link: shown by its target, never followed.
      </p>
    );
  if (f.binary)
    return (
      <p className="muted small" data-testid="review-binary">
        A binary file: its contents are not shown. Compare the sizes and hashes above.
      </p>
    );
  if (sameContent)
    return (
      <p className="muted small" data-testid="review-same">
        The content is the same; only {f.kind === 'renamed' ? 'the name' : 'the permissions'}{' '}
        changed.
      </p>
    );
  if (error)
    return (
      <p className="error small" role="alert">
        {error}
      </p>
    );
  if (!text) return <p className="muted small">Loading…</p>;
  const hasBefore = text.before !== null || !f.before;
  const hasAfter = text.after !== null || !f.after;
  if (!hasBefore || !hasAfter)
    return (
      <p className="muted small" data-testid="review-no-diff">
        {text.note ?? 'This file is too large to compare here.'} Compare the sizes and hashes above.
      </p>
    );
  // For a file not yet applied the core reads "before" from the folder as it is now, so for a
  // conflict this diff goes from the person's copy to the agent's version.
  return (
    <>
      {text.note && (
        <p className="small muted" data-testid="review-file-text-note">
          {text.note}
        </p>
      )}
      <Diff
        before={text.before ?? ''}
        after={text.after ?? ''}
        label={f.status === 'conflict' ? 'From your file now to the agent’s version' : 'Changes'}
      />
    </>
  );
}

function Diff(props: { before: string; after: string; label: string }) {
  const d = useMemo(() => lineDiff(props.before, props.after), [props.before, props.after]);
  return (
    <div className="review-diff" data-testid="review-diff" aria-label={props.label}>
      <p className="small muted">
        {props.label}: <span className="diff-add-text">+{d.added}</span>{' '}
        <span className="diff-del-text">−{d.removed}</span> lines
        {!d.exact && ' (too different to align line by line; the middle is shown replaced)'}
      </p>
      <DiffLines lines={d.lines} max={MAX_DIFF_LINES} className="diff" />
    </div>
  );
}
