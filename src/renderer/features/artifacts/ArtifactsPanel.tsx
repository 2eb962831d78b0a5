import { memo, useEffect, useMemo, useRef, useState, type RefObject } from 'react';
import type { Res } from '../../../shared/api.js';
import type { Artifact, ArtifactSummary } from '../../../shared/app-contract.js';
import type { ArtifactKind } from '../../../shared/artifact-policy.js';
import { call } from '../../api/hooks.js';
import { ArtifactFrame } from '../../components/ArtifactFrame.js';
import { DiffLines } from '../../components/DiffLines.js';
import { copyText } from '../../lib/clipboard.js';
import { formatBytes, formatWhen } from '../../lib/format.js';
import { lineDiff } from '../../lib/line-diff.js';
import { exportArtifact, saveSource } from './artifact-actions.js';
import { kindLabel, type ArtifactMark } from './artifact-model.js';

/** Which artifact and version the panel is asked to show; `seq` makes the same ask count again. */
export interface ArtifactFocus {
  id: string;
  version: number;
  seq: number;
}

/** The most diff lines drawn; a longer diff says how many more there are. */
const MAX_DIFF_LINES = 4000;

/** Artifact versions already fetched, shared by every panel of this page (contents never change). */
const versionCache = new Map<string, Artifact>();
/** The most versions kept; the oldest fetched goes first. */
const VERSION_CACHE_SIZE = 64;

function cacheVersion(key: string, a: Artifact): void {
  versionCache.set(key, a);
  if (versionCache.size > VERSION_CACHE_SIZE)
    versionCache.delete(versionCache.keys().next().value!);
}

function useArtifactVersion(
  id: string | null,
  version: number | null,
): {
  artifact: Artifact | null;
  error: string | null;
} {
  const cacheKey = id && version ? `${id}@${version}` : null;
  const [failed, setFailed] = useState<{ key: string; message: string } | null>(null);
  const [, setLoaded] = useState(0);
  useEffect(() => {
    if (!id || !version || !cacheKey || versionCache.has(cacheKey)) return;
    let live = true;
    call('artifacts:get', { id, version }).then(
      (a) => {
        cacheVersion(cacheKey, a);
        if (live) setLoaded((n) => n + 1);
      },
      (e: Error) => live && setFailed({ key: cacheKey, message: e.message }),
    );
    return () => {
      live = false;
    };
  }, [id, version, cacheKey]);
  const artifact = cacheKey ? (versionCache.get(cacheKey) ?? null) : null;
  return { artifact, error: failed && failed.key === cacheKey ? failed.message : null };
}

/** An artifact's versions with when each was made and its size; reloaded when one is added. */
function useVersions(id: string, latest: number): Res<'artifacts:versions'>['versions'] | null {
  const [got, setGot] = useState<{
    key: string;
    list: Res<'artifacts:versions'>['versions'];
  } | null>(null);
  const key = `${id}@${latest}`;
  useEffect(() => {
    let live = true;
    call('artifacts:versions', { id }).then(
      (r) => live && setGot({ key, list: r.versions }),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [id, key]);
  return got?.key === key ? got.list : null;
}

/** The inner height of an element as it resizes, so a frame can fill the space it is given. */
function useHeight(ref: RefObject<HTMLElement | null>): number {
  const [h, setH] = useState(0);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    setH(el.clientHeight);
    const ro = new ResizeObserver(() => setH(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, [ref]);
  return h;
}

/** The line diff between two versions, with what was added and removed marked. */
const DiffView = memo(function DiffView(props: { before: string; after: string; label: string }) {
  const d = useMemo(() => lineDiff(props.before, props.after), [props.before, props.after]);
  return (
    <div className="artifact-diff" data-testid="artifact-diff" aria-label={props.label}>
      <p className="muted small diff-summary" data-testid="artifact-diff-summary">
        <span className="diff-add-text">+{d.added}</span>{' '}
        <span className="diff-del-text">−{d.removed}</span> lines
        {!d.exact && ' (too large to match line by line; the changed middle is shown replaced)'}
      </p>
      {d.added + d.removed === 0 ? (
        <p className="muted small">These versions are the same.</p>
      ) : (
        <DiffLines lines={d.lines} max={MAX_DIFF_LINES} />
      )}
    </div>
  );
});

/** One version of the selected artifact with its toolbar: versions, changes, copy, save, export. */
function ArtifactViewer(props: {
  summary: ArtifactSummary;
  version: number;
  onVersion(v: number): void;
  full: boolean;
  onFull(full: boolean): void;
}) {
  const { summary, version, onVersion, full, onFull } = props;
  const latest = summary.latestVersion;
  const versions = useVersions(summary.id, latest);
  const about = (v: number) => {
    const info = versions?.find((x) => x.version === v);
    return info ? `${formatWhen(info.createdAt)}, ${formatBytes(info.size)}` : '';
  };
  const [diff, setDiff] = useState(false);
  const [base, setBase] = useState<number | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const noteTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const stage = useRef<HTMLDivElement>(null);
  const stageHeight = useHeight(stage);
  const { artifact, error } = useArtifactVersion(summary.id, version);
  const baseVersion = base !== null && base !== version ? base : version > 1 ? version - 1 : null;
  const before = useArtifactVersion(diff && baseVersion ? summary.id : null, baseVersion);
  useEffect(() => () => void (noteTimer.current && clearTimeout(noteTimer.current)), []);

  const say = (text: string) => {
    setNote(text);
    if (noteTimer.current) clearTimeout(noteTimer.current);
    noteTimer.current = setTimeout(() => setNote(null), 2500);
  };
  const act = (p: Promise<unknown>, done?: string) =>
    p.then(
      () => done && say(done),
      (e: Error) => say(e.message),
    );

  return (
    <div className="artifact-viewer" data-testid="artifact-viewer" data-artifact={summary.id}>
      <div className="artifact-toolbar">
        <div className="artifact-versions" role="group" aria-label="Versions">
          <button
            type="button"
            className="quiet"
            aria-label="Previous version"
            data-testid="artifact-prev"
            disabled={version <= 1}
            onClick={() => onVersion(version - 1)}
          >
            ‹
          </button>
          <span
            className="small tabular"
            data-testid="artifact-version"
            aria-live="polite"
            title={about(version)}
          >
            v{version} of {latest}
          </span>
          <button
            type="button"
            className="quiet"
            aria-label="Next version"
            data-testid="artifact-next"
            disabled={version >= latest}
            onClick={() => onVersion(version + 1)}
          >
            ›
          </button>
        </div>
        <button
          type="button"
          className={diff ? 'active-toggle' : ''}
          aria-pressed={diff}
          disabled={latest < 2}
          title={latest < 2 ? 'There is only one version.' : 'Show the lines that changed'}
          data-testid="artifact-diff-toggle"
          onClick={() => setDiff(!diff)}
        >
          Changes
        </button>
        <span className="grow" />
        <button
          type="button"
          disabled={!artifact}
          data-testid="artifact-copy"
          onClick={() =>
            artifact &&
            act(
              copyText(artifact.content).then((ok) => {
                if (!ok) throw new Error('Copy failed.');
              }),
              'Copied.',
            )
          }
        >
          Copy
        </button>
        <button
          type="button"
          disabled={!artifact}
          data-testid="artifact-save"
          title="Save the source as a file"
          onClick={() => artifact && act(Promise.resolve(saveSource(artifact)))}
        >
          Save
        </button>
        <button
          type="button"
          data-testid="artifact-export"
          title="Save as one HTML file that opens anywhere, offline"
          onClick={() => act(exportArtifact(summary.id, version))}
        >
          Export
        </button>
        <button
          type="button"
          data-testid="artifact-open"
          aria-pressed={full}
          title={full ? 'Back to the task (Esc)' : 'Show it over the whole window'}
          onClick={() => onFull(!full)}
        >
          {full ? 'Close' : 'Expand'}
        </button>
      </div>
      {note && (
        <p className="muted small artifact-note" role="status">
          {note}
        </p>
      )}
      {diff && latest > 1 && (
        <label className="inline small">
          Changes from{' '}
          <select
            value={baseVersion ?? ''}
            data-testid="artifact-diff-base"
            onChange={(e) => setBase(Number(e.target.value))}
          >
            {Array.from({ length: latest }, (_, i) => i + 1)
              .filter((v) => v !== version)
              .map((v) => (
                <option key={v} value={v}>
                  v{v}
                  {about(v) && ` (${about(v)})`}
                </option>
              ))}
          </select>{' '}
          to v{version}
        </label>
      )}
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
      <div className="artifact-stage" ref={stage}>
        {diff && baseVersion ? (
          before.artifact && artifact ? (
            <DiffView
              before={before.artifact.content}
              after={artifact.content}
              label={`Changes from version ${baseVersion} to ${version}`}
            />
          ) : (
            <p className="muted small" aria-busy="true">
              Loading…
            </p>
          )
        ) : artifact ? (
          <ArtifactFrame
            key={`${artifact.id}@${artifact.version}`}
            kind={artifact.kind as ArtifactKind}
            title={artifact.title}
            content={artifact.content}
            height={Math.max(240, stageHeight - 2)}
          />
        ) : (
          !error && (
            <p className="muted small" aria-busy="true">
              Loading…
            </p>
          )
        )}
      </div>
    </div>
  );
}

/**
 * Every artifact of a task, beside its conversation: a list, and the selected one rendered in its
 * sandboxed frame. It follows the newest version as the agent makes them; the person can step
 * through versions, see the lines that changed, copy, save, export, and show one over the window.
 */
export function ArtifactsPanel(props: {
  taskId: string;
  /** What to show: the newest artifact event, or a card the person clicked. */
  focus: ArtifactFocus | null;
  /** Bumped when the task makes or revises an artifact, to reload the list. */
  changes: number;
  /** Told how many artifacts the task has, so the page can make room for the panel. */
  onCount?(n: number): void;
}) {
  const { taskId, focus, changes, onCount } = props;
  const [list, setList] = useState<ArtifactSummary[] | null>(null);
  const [selected, setSelected] = useState<{ id: string; version: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Full view: the panel over the whole window, for a closer look; Escape goes back.
  const [full, setFull] = useState(false);
  useEffect(() => {
    if (!full) return;
    const onKey = (e: KeyboardEvent) => e.key === 'Escape' && setFull(false);
    document.addEventListener('keydown', onKey);
    return () => document.removeEventListener('keydown', onKey);
  }, [full]);

  useEffect(() => {
    let live = true;
    call('artifacts:list', { taskId }).then(
      (r) => {
        if (!live) return;
        setList(r.artifacts);
        setError(null);
        onCount?.(r.artifacts.length);
      },
      (e: Error) => {
        if (!live) return;
        setError(e.message);
        // The sentence needs the panel's room too.
        onCount?.(1);
      },
    );
    return () => {
      live = false;
    };
    // onCount is the page's state setter, stable for its life.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [taskId, changes]);

  // A new focus (the newest artifact event, or a card clicked) selects what it names.
  const [seenFocus, setSeenFocus] = useState<ArtifactFocus | null>(null);
  if (focus !== seenFocus) {
    setSeenFocus(focus);
    if (focus) setSelected({ id: focus.id, version: focus.version });
  }

  // Nothing asked for yet: the most recently changed artifact, at its newest version.
  const current = useMemo(() => {
    if (!list || list.length === 0) return null;
    const pick =
      (selected && list.find((a) => a.id === selected.id)) ??
      list.reduce((a, b) => (b.updatedAt >= a.updatedAt ? b : a));
    const version = selected && selected.id === pick.id ? selected.version : pick.latestVersion;
    // The list may lag an artifact event by a moment; never show a version it does not know yet.
    const summary = version > pick.latestVersion ? { ...pick, latestVersion: version } : pick;
    return { summary, version };
  }, [list, selected]);

  if (error && !list)
    return (
      <aside className="artifacts-panel" aria-label="Artifacts">
        <p className="error small" role="alert">
          {error}
        </p>
      </aside>
    );
  if (!list || list.length === 0) return null;

  return (
    <aside
      className={`artifacts-panel ${full ? 'full' : ''}`}
      aria-label="Artifacts"
      data-testid="artifacts-panel"
    >
      <header className="artifacts-head">
        <h3>
          Artifacts <span className="muted tabular">{list.length}</span>
        </h3>
        <ul className="plain artifact-list" data-testid="artifact-list">
          {list.map((a) => {
            const on = current?.summary.id === a.id;
            return (
              <li key={a.id}>
                <button
                  type="button"
                  className={`artifact-item ${on ? 'selected' : ''}`}
                  aria-current={on ? 'true' : undefined}
                  data-testid="artifact-item"
                  data-artifact={a.id}
                  title={`${a.title} — ${kindLabel(a.kind)}, ${a.latestVersion} version${a.latestVersion === 1 ? '' : 's'}, changed ${formatWhen(a.updatedAt)}`}
                  onClick={() => setSelected({ id: a.id, version: a.latestVersion })}
                >
                  <span className="artifact-item-title">{a.title}</span>
                  <span className="chip small">{kindLabel(a.kind)}</span>
                  {a.latestVersion > 1 && (
                    <span className="muted small tabular">v{a.latestVersion}</span>
                  )}
                </button>
              </li>
            );
          })}
        </ul>
      </header>
      {current && (
        <ArtifactViewer
          key={current.summary.id}
          summary={current.summary}
          version={current.version}
          onVersion={(v) => setSelected({ id: current.summary.id, version: v })}
          full={full}
          onFull={setFull}
        />
      )}
    </aside>
  );
}

/** The card in the conversation where an artifact was made or revised; opens it in the panel. */
export const ArtifactCard = memo(function ArtifactCard(props: {
  mark: ArtifactMark;
  onOpen(mark: ArtifactMark): void;
}) {
  const { mark, onOpen } = props;
  return (
    <button
      type="button"
      className="artifact-card"
      data-testid="artifact-card"
      data-artifact={mark.id}
      data-version={mark.version}
      onClick={() => onOpen(mark)}
    >
      <span className="artifact-card-kind" aria-hidden="true">
        {kindLabel(mark.kind).slice(0, 1)}
      </span>
      <span className="artifact-card-text">
        <span className="artifact-card-title">{mark.title}</span>
        <span className="muted small">
          {kindLabel(mark.kind)} · {mark.version === 1 ? 'new artifact' : `version ${mark.version}`}
        </span>
      </span>
      <span className="muted small">Show</span>
    </button>
  );
});
