import { useCallback, useEffect, useState } from 'react';
import type { InboxItem } from '../../../shared/automations-contract.js';
import { call, useEvent } from '../../api/hooks.js';
import { EmptyState } from '../../components/EmptyState.js';
import { formatWhen } from '../../lib/format.js';
import { hrefOf } from '../../lib/route.js';
import { formatRunTime, personTimeZone } from '../automations/automation-format.js';

const KIND: Record<string, { label: string; tone: string }> = {
  succeeded: { label: 'Finished', tone: 'ok' },
  failed: { label: 'Failed', tone: 'fail' },
  missed: { label: 'Missed', tone: 'attention' },
  interrupted: { label: 'Interrupted', tone: 'attention' },
  skipped: { label: 'Skipped', tone: 'neutral' },
};

/** "N artifacts" of a run's task, linking to the task where they are shown; nothing when none. */
function RunArtifacts(props: { taskId: string }) {
  const [count, setCount] = useState<number | null>(null);
  useEffect(() => {
    let live = true;
    call('artifacts:list', { taskId: props.taskId }).then(
      (r) => live && setCount(r.artifacts.length),
      () => undefined,
    );
    return () => {
      live = false;
    };
  }, [props.taskId]);
  if (!count) return null;
  return (
    <a
      className="inbox-artifacts"
      href={hrefOf({ page: 'task', id: props.taskId })}
      data-testid="inbox-artifacts"
    >
      {count} artifact{count === 1 ? '' : 's'}
    </a>
  );
}

/**
 * The inbox: one item per finished, missed or skipped automation run, unread until opened.
 * Opening an item marks it read and shows its summary with a link to the run's task, and to the
 * review of its changes while some wait.
 */
export function InboxPage() {
  const [items, setItems] = useState<InboxItem[] | null>(null);
  const [showArchived, setShowArchived] = useState(false);
  const [open, setOpen] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const tz = personTimeZone();

  const load = useCallback(() => {
    call('inbox:list', { includeArchived: showArchived }).then(
      (r) => setItems(r.items),
      (e: Error) => setError(e.message),
    );
  }, [showArchived]);
  useEffect(load, [load]);
  useEvent('inbox:changed', load);
  // What waits for review changes as the person applies or discards it (here or elsewhere).
  useEvent('changes:changed', load);

  const openItem = (i: InboxItem) => {
    setOpen(open === i.id ? null : i.id);
    if (i.state === 'unread')
      call('inbox:markRead', { id: i.id }).then(load, (e: Error) => setError(e.message));
  };
  const act = (p: Promise<unknown>) => p.then(load, (e: Error) => setError(e.message));

  return (
    <section className="page inbox" aria-labelledby="inbox-title">
      <header className="page-header with-action">
        <h2 id="inbox-title" className="grow">
          Inbox
        </h2>
        <label className="inline small">
          <input
            type="checkbox"
            checked={showArchived}
            onChange={(e) => setShowArchived(e.target.checked)}
          />{' '}
          Show archived
        </label>
      </header>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {items && items.length === 0 && (
        <EmptyState title="Nothing in your inbox" testId="inbox-empty">
          <p>
            When an automation finishes a run — or misses one — its result arrives here, unread
            until you open it.
          </p>
        </EmptyState>
      )}
      {items && items.length > 0 && (
        <ul className="plain inbox-list" data-testid="inbox-list">
          {items.map((i) => {
            const k = KIND[i.kind] ?? { label: i.kind, tone: 'neutral' };
            const expanded = open === i.id;
            return (
              <li
                key={i.id}
                className={`card inbox-item ${i.state}`}
                data-testid="inbox-item"
                data-state={i.state}
              >
                <button
                  type="button"
                  className="inbox-head"
                  aria-expanded={expanded}
                  onClick={() => openItem(i)}
                >
                  {i.state === 'unread' && (
                    <span className="unread-dot" aria-label="Unread" role="img" />
                  )}
                  <span className="inbox-title grow">{i.title}</span>
                  {i.reviewWaiting > 0 && (
                    <span className="chip small attention" data-testid="inbox-review-waiting">
                      {i.reviewWaiting} to review
                    </span>
                  )}
                  <span className={`chip small ${k.tone}`}>{k.label}</span>
                  <span className="muted small tabular">{formatWhen(i.createdAt)}</span>
                </button>
                {!expanded && <p className="muted small inbox-snippet">{i.summary}</p>}
                {expanded && (
                  <div className="stack inbox-body" data-testid="inbox-body">
                    <p className="inbox-summary">{i.summary}</p>
                    {i.slotAt !== null && (
                      <p className="muted small">Run for {formatRunTime(i.slotAt, tz)}</p>
                    )}
                    <div className="row wrap">
                      {i.sessionId && i.reviewWaiting > 0 && (
                        <a
                          href={hrefOf({ page: 'task', id: i.sessionId, review: true })}
                          data-testid="inbox-review"
                        >
                          Review {i.reviewWaiting} change{i.reviewWaiting === 1 ? '' : 's'}
                        </a>
                      )}
                      {i.sessionId && (
                        <a href={hrefOf({ page: 'task', id: i.sessionId })}>Open the run’s task</a>
                      )}
                      {i.sessionId && <RunArtifacts taskId={i.sessionId} />}
                      <span className="grow" />
                      <button
                        type="button"
                        onClick={() =>
                          act(call('inbox:markRead', { id: i.id, read: i.state !== 'read' }))
                        }
                      >
                        {i.state === 'read' ? 'Mark unread' : 'Mark read'}
                      </button>
                      <button
                        type="button"
                        onClick={() =>
                          act(call('inbox:archive', { id: i.id, archived: i.state !== 'archived' }))
                        }
                      >
                        {i.state === 'archived' ? 'Unarchive' : 'Archive'}
                      </button>
                    </div>
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}
