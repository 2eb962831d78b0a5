import {
  Fragment,
  memo,
  useCallback,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
} from 'react';
import type { Res } from '../../../shared/api.js';
import type { AgentEvent } from '../../../shared/agent-events.js';
import type { Approval, TaskSummary } from '../../../shared/app-contract.js';
import { call, useEvent } from '../../api/hooks.js';
import { isAtBottom } from '../../components/virtual-window.js';
import { formatCost, formatTokens, statusLabel, statusTone } from '../../lib/format.js';
import {
  marksByItem,
  reduceWithArtifacts,
  type ArtifactMark,
  type TaskWithArtifacts,
} from '../artifacts/artifact-model.js';
import { ArtifactCard, ArtifactsPanel, type ArtifactFocus } from '../artifacts/ArtifactsPanel.js';
import { ReviewDialog } from '../changes/ReviewDialog.js';
import { ReviewCallToAction, ReviewSection } from '../changes/ReviewSummary.js';
import { useTaskChangesets, type TaskChangesets } from '../changes/use-changesets.js';
import { SecretTag } from '../secrets/SecretTag.js';
import { Markdown } from '../../components/Markdown.js';
import { ApprovalCard } from './ApprovalCard.js';
import { FilePreview } from './FilePreview.js';
import { emptyView, type TaskItem } from './task-model.js';
import { ToolCard } from './ToolCard.js';

type Details = Res<'tasks:get'>;

const Item = memo(function Item(props: { item: TaskItem }) {
  const it = props.item;
  switch (it.kind) {
    case 'user':
      return (
        <div className="msg user" data-testid="msg-user">
          {it.text}
        </div>
      );
    case 'assistant':
      return (
        <div
          className={`msg assistant ${it.streaming ? 'streaming' : ''}`}
          data-testid="msg-assistant"
        >
          {it.thinking && !it.text && <p className="muted small">Thinking…</p>}
          {it.text && <Markdown text={it.text} streaming={it.streaming} />}
        </div>
      );
    case 'tool':
      return <ToolCard item={it} />;
    case 'approval':
      return (
        <p className="notice small" data-testid="approval-record">
          {it.approvalKind === 'network' ? `Network ${it.subject}: ` : `${it.subject}: `}
          <strong>{answerText(it.answer)}</strong>
        </p>
      );
    case 'notice':
      return (
        <p className={`notice small ${it.tone}`} role={it.tone === 'error' ? 'alert' : undefined}>
          {it.text}
        </p>
      );
    case 'context':
      return (
        <div
          className={`context-divider ${it.action}`}
          role="separator"
          aria-label={it.text}
          title={it.detail || undefined}
          data-testid="context-divider"
        >
          <span className="small">{it.text}</span>
        </div>
      );
  }
});

function answerText(a: string): string {
  switch (a) {
    case 'once':
      return 'allowed once';
    case 'session':
      return 'allowed for this task';
    case 'always':
      return 'always allowed';
    case 'allow':
      return 'allowed';
    default:
      return 'denied';
  }
}

/** The side panel: what the task can reach and what it changed; always in view. */
function TaskFacts(props: {
  task: TaskSummary;
  details: Details | null;
  touched: string[];
  changes: TaskChangesets;
  running: boolean;
  onReview(id: string): void;
}) {
  const { task, details } = props;
  const files = details?.filesChanged ?? [];
  const [preview, setPreview] = useState<string | null>(null);
  return (
    <aside className="facts" aria-label="What this task can reach">
      <section>
        <h3>Folders</h3>
        {task.folders.length === 0 ? (
          <p className="muted small">No folders: the agent works in an empty VM.</p>
        ) : (
          <ul className="plain" data-testid="task-folders">
            {task.folders.map((f) => (
              <li key={f.name} className="fact-row">
                <span className="row">
                  <span className={`chip small ${f.readOnly ? 'neutral' : 'active'}`}>
                    {f.readOnly ? 'read-only' : 'read-write'}
                  </span>
                  {f.review && !f.readOnly && (
                    <span
                      className="chip small neutral"
                      title="The agent's changes wait for your review before they reach this folder"
                    >
                      review
                    </span>
                  )}
                  {!f.review && !f.readOnly && (
                    <span
                      className="chip small neutral"
                      title="The agent writes straight to this folder, without a review"
                    >
                      direct
                    </span>
                  )}
                </span>
                <span className="fact-text" title={f.hostPath}>
                  {f.hostPath}
                </span>
              </li>
            ))}
          </ul>
        )}
      </section>
      <section>
        <h3>Network</h3>
        {task.allowlist.length === 0 ? (
          <p className="muted small" data-testid="task-allowlist">
            No hosts allowed; the agent asks you first.
          </p>
        ) : (
          <ul className="plain" data-testid="task-allowlist">
            {task.allowlist.map((h) => (
              <li key={h}>
                <code>{h}</code>
              </li>
            ))}
          </ul>
        )}
        {details && details.network.length > 0 && (
          <ul className="plain netlog" data-testid="network-log">
            {details.network.slice(-8).map((n, i) => (
              <li key={i} className="small" title={n.reason} data-testid="network-decision">
                <span className={n.allowed ? 'ok-text' : 'fail-text'}>
                  {n.allowed ? 'allowed' : 'blocked'}
                </span>{' '}
                {n.host}:{n.port}
                {n.method && <span className="muted netlog-method"> {n.method}</span>}
                {n.pinRefused && (
                  <span className="chip small fail" data-testid="pin-refused">
                    refused: pinned to your account
                  </span>
                )}
                {n.secrets?.map((name) => (
                  <SecretTag key={name} name={name} title={`The secret “${name}” was swapped in`} />
                ))}
                {n.intercepted && (
                  <span
                    className="chip small"
                    data-testid="intercepted"
                    title="Paddock's proxy terminated TLS for this host because it has a secret or is pinned"
                  >
                    inspected
                  </span>
                )}
              </li>
            ))}
          </ul>
        )}
      </section>
      <ReviewSection
        changes={props.changes}
        running={props.running}
        canStage={task.folders.some((f) => f.review === true && !f.readOnly)}
        onOpen={props.onReview}
      />
      <section>
        <h3>Files changed</h3>
        {files.length === 0 ? (
          <p className="muted small">None yet.</p>
        ) : (
          <ul className="plain" data-testid="files-changed">
            {files.slice(0, 50).map((f) => (
              <li key={f} className="small">
                <button
                  type="button"
                  className="file-link"
                  title={`Preview ${f}`}
                  onClick={() => setPreview(f)}
                >
                  <code>{f}</code>
                </button>
              </li>
            ))}
            {files.length > 50 && <li className="muted small">and {files.length - 50} more</li>}
          </ul>
        )}
        {preview && (
          <FilePreview
            key={preview}
            taskId={task.id}
            path={preview}
            onClose={() => setPreview(null)}
          />
        )}
      </section>
    </aside>
  );
}

/**
 * Tokens as billed — uncached input, output, cache reads, cache writes — and the cost so far.
 * Cache reads cost a tenth of input, so they say what prompt caching saved.
 */
function TaskUsage(props: { task: TaskSummary }) {
  const t = props.task;
  return (
    <div className="task-meters tabular" data-testid="task-usage">
      <span
        title={
          `${t.inputTokens.toLocaleString()} input · ${t.outputTokens.toLocaleString()} output · ` +
          `${t.cacheReadTokens.toLocaleString()} cache read · ` +
          `${t.cacheWriteTokens.toLocaleString()} cache write tokens`
        }
      >
        <span data-testid="usage-input">{formatTokens(t.inputTokens)} in</span>
        {' · '}
        <span data-testid="usage-output">{formatTokens(t.outputTokens)} out</span>
        {' · '}
        <span data-testid="usage-cache-read">{formatTokens(t.cacheReadTokens)} cache read</span>
        {' · '}
        <span data-testid="usage-cache-write">{formatTokens(t.cacheWriteTokens)} cache write</span>
      </span>
      <span title="Cost so far" data-testid="usage-cost">
        {formatCost(t.costUsd)}
      </span>
    </div>
  );
}

function emptyModel(): TaskWithArtifacts {
  return { view: emptyView(), marks: [], newest: null };
}

/**
 * One task: the conversation streaming as it arrives, a card per tool call, questions inline, the
 * stop button, folders/allowlist/changed files always visible, tokens and cost. Live events are
 * applied once per animation frame, so a fast stream never blocks the page. `openReview` (the
 * route `#/task/<id>/review`) opens the review of its staged changes as soon as they are listed.
 */
export function TaskView(props: { id: string; openReview?: boolean }) {
  const { id, openReview } = props;
  const [task, setTask] = useState<TaskSummary | null>(null);
  const [details, setDetails] = useState<Details | null>(null);
  const [model, setModel] = useState<TaskWithArtifacts>(emptyModel);
  const view = model.view;
  const [focus, setFocus] = useState<ArtifactFocus | null>(null);
  const focusSeq = useRef(0);
  const [artifactCount, setArtifactCount] = useState(0);
  const [approvals, setApprovals] = useState<Approval[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [followUp, setFollowUp] = useState('');
  const [stopping, setStopping] = useState(false);
  const queue = useRef<AgentEvent[]>([]);
  const loaded = useRef(false);
  const frame = useRef(0);
  const scroller = useRef<HTMLDivElement>(null);
  const stuck = useRef(true);
  const refreshTimer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const changes = useTaskChangesets(id);
  const [reviewing, setReviewing] = useState<string | null>(null);
  // Opened from an inbox item's "Review changes": the review of the first folder that waits,
  // once its changesets are listed.
  const reviewOpened = useRef(false);
  useEffect(() => {
    if (!openReview || reviewOpened.current || changes.changesets.length === 0) return;
    reviewOpened.current = true;
    const first =
      changes.changesets.find((c) => (changes.waiting.get(c.id) ?? 0) > 0) ??
      changes.changesets[0]!;
    setReviewing(first.id);
  }, [openReview, changes.changesets, changes.waiting]);

  const refresh = () => {
    if (refreshTimer.current) return;
    refreshTimer.current = setTimeout(() => {
      refreshTimer.current = null;
      call('tasks:get', { id }).then(
        (d) => {
          setDetails(d);
          setTask(d.task);
        },
        () => undefined,
      );
    }, 300);
  };

  useEffect(() => {
    let live = true;
    loaded.current = false;
    call('tasks:get', { id }).then(
      (d) => {
        if (!live) return;
        setTask(d.task);
        setDetails(d);
        setApprovals(d.approvals);
        // Live events from before this point are in the stored history (deltas aside), so
        // only those arriving from now on are applied on top of it.
        queue.current = [];
        loaded.current = true;
        const m = reduceWithArtifacts(emptyModel(), d.events);
        setModel({ ...m, view: { ...m.view, running: d.running } });
      },
      (e: Error) => live && setError(e.message),
    );
    return () => {
      live = false;
      cancelAnimationFrame(frame.current);
      frame.current = 0;
      if (refreshTimer.current) clearTimeout(refreshTimer.current);
      refreshTimer.current = null;
    };
  }, [id]);

  useEvent('task:event', ({ taskId, event }) => {
    if (taskId !== id || !loaded.current) return;
    queue.current.push(event);
    if (event.type === 'tool-result' || event.type === 'done') refresh();
    if (frame.current) return;
    frame.current = requestAnimationFrame(() => {
      frame.current = 0;
      const batch = queue.current;
      queue.current = [];
      if (batch.length) setModel((m) => reduceWithArtifacts(m, batch));
    });
  });
  useEvent('task:changed', (t) => {
    if (t.id !== id) return;
    setTask(t);
    if (t.status !== 'running') setStopping(false);
  });
  useEvent('approval:requested', (a) => {
    if (a.taskId === id) setApprovals((list) => [...list.filter((x) => x.id !== a.id), a]);
  });
  useEvent('approval:resolved', (r) => {
    if (r.taskId === id) setApprovals((list) => list.filter((x) => x.id !== r.id));
  });

  // The artifacts panel follows the newest artifact event; a card the person clicks shows its own.
  const openArtifact = useCallback((m: Pick<ArtifactMark, 'id' | 'version'>) => {
    setFocus({ id: m.id, version: m.version, seq: ++focusSeq.current });
  }, []);
  useEffect(() => {
    if (model.newest) openArtifact(model.newest);
  }, [model.newest, openArtifact]);
  const cards = useMemo(() => marksByItem(model.marks), [model.marks]);
  const cardsAfter = (key: string | null) =>
    cards.get(key)?.map((m) => <ArtifactCard key={m.key} mark={m} onOpen={openArtifact} />);

  // Follow the newest message while the person is at the bottom; never jump when they scrolled up.
  useLayoutEffect(() => {
    const el = scroller.current;
    if (el && stuck.current) el.scrollTop = el.scrollHeight;
  }, [view, approvals]);

  const running = task?.status === 'running' || view.running;

  const stop = () => {
    setStopping(true);
    call('tasks:cancel', { id }).then(
      (t) => setTask(t),
      (e: Error) => {
        setStopping(false);
        setError(e.message);
      },
    );
  };

  const send = () => {
    const text = followUp.trim();
    if (!text) return;
    setError(null);
    call('tasks:send', { id, prompt: text }).then(
      (t) => {
        setTask(t);
        setFollowUp('');
      },
      (e: Error) => setError(e.message),
    );
  };

  if (error && !task) {
    return (
      <p className="error" role="alert">
        {error}
      </p>
    );
  }
  if (!task) return <div className="page" aria-busy="true" />;

  return (
    <div className="task-page">
      <header className="task-head">
        <div className="task-title-wrap">
          <h2 className="task-heading" title={task.title}>
            {task.title || 'Untitled task'}
          </h2>
          <span
            className={`chip ${statusTone(task.status, task.pendingApprovals)}`}
            data-testid="task-status"
          >
            {statusLabel(task.status, task.pendingApprovals)}
          </span>
        </div>
        <TaskUsage task={task} />
        <button
          type="button"
          className="danger stop"
          onClick={stop}
          disabled={!running || stopping}
          aria-keyshortcuts="Escape"
        >
          {stopping ? 'Stopping…' : 'Stop'}
        </button>
      </header>
      <div className={`task-body ${artifactCount > 0 ? 'with-artifacts' : ''}`}>
        <div
          className="conversation"
          ref={scroller}
          onScroll={(e) => {
            const el = e.currentTarget;
            stuck.current = isAtBottom(el.scrollTop, el.clientHeight, el.scrollHeight, 40);
          }}
          onKeyDown={(e) => {
            if (e.key === 'Escape' && running) stop();
          }}
          aria-live="off"
          data-testid="conversation"
        >
          {cardsAfter(null)}
          {view.items.map((it) => (
            <Fragment key={it.key}>
              <Item item={it} />
              {cardsAfter(it.key)}
            </Fragment>
          ))}
          {approvals.map((a) => (
            <ApprovalCard key={a.id} approval={a} />
          ))}
          {!running && (
            <ReviewCallToAction
              changesets={changes.changesets}
              waiting={changes.waiting}
              onOpen={setReviewing}
            />
          )}
          {running && approvals.length === 0 && (
            <p className="working muted small" aria-live="polite">
              Working…
            </p>
          )}
        </div>
        <ArtifactsPanel
          taskId={id}
          focus={focus}
          changes={model.marks.length}
          onCount={setArtifactCount}
        />
        <TaskFacts
          task={task}
          details={details}
          touched={view.filesTouched}
          changes={changes}
          running={running}
          onReview={setReviewing}
        />
      </div>
      {reviewing && (
        <ReviewDialog
          changesets={changes.changesets}
          initial={reviewing}
          running={running}
          refreshing={changes.refreshing}
          error={changes.error}
          onRefresh={changes.refresh}
          onClose={() => setReviewing(null)}
        />
      )}
      <form
        className="composer"
        onSubmit={(e) => {
          e.preventDefault();
          send();
        }}
      >
        <textarea
          rows={2}
          value={followUp}
          placeholder={running ? 'The agent is working; you can stop it.' : 'Reply or ask for more'}
          aria-label="Follow-up message"
          onChange={(e) => setFollowUp(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) send();
          }}
        />
        <button type="submit" className="primary" disabled={running || !followUp.trim()}>
          Send
        </button>
      </form>
      {error && (
        <p className="error small" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
