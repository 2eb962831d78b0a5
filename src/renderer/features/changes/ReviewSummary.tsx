import type { ChangesetSummary } from '../../../shared/changes-contract.js';
import {
  changesetStatusLabel,
  changesetTone,
  countsText,
  waitingHeadline,
} from './change-model.js';
import type { TaskChangesets } from './use-changesets.js';

/**
 * The side panel's "Review changes": each folder whose edits were staged, with its counts and
 * status and a way into the review; while the task runs, "Check again" reads what it staged so far.
 * Shown only for a task that has staged something or could (running with a writable folder).
 */
export function ReviewSection(props: {
  changes: TaskChangesets;
  running: boolean;
  canStage: boolean;
  onOpen(id: string): void;
}) {
  const { changes, running, onOpen } = props;
  const list = changes.changesets;
  if (list.length === 0 && !(running && props.canStage) && !changes.error) return null;
  return (
    <section data-testid="review-section" aria-labelledby="review-section-title">
      <h3 id="review-section-title">Review changes</h3>
      {list.length === 0 ? (
        <p className="muted small">Nothing staged for review yet.</p>
      ) : (
        <ul className="plain review-sets">
          {list.map((c) => (
            <li key={c.id} className="fact-row" data-testid="review-set" data-changeset={c.id}>
              <span className="fact-text" title={c.hostPath}>
                <strong>{c.name}</strong> <span className="muted">{c.hostPath}</span>
              </span>
              <span className="small">{countsText(c)}</span>
              <span className="row">
                <span
                  className={`chip small ${changesetTone(c.status, changes.waiting.get(c.id) ?? 0)}`}
                >
                  {changesetStatusLabel(c.status, changes.waiting.get(c.id) ?? 0)}
                </span>
                <button
                  type="button"
                  className="small-button"
                  aria-label={`Review the changes in ${c.name}`}
                  onClick={() => onOpen(c.id)}
                >
                  Review
                </button>
              </span>
            </li>
          ))}
        </ul>
      )}
      {running && props.canStage && (
        <button
          type="button"
          className="small-button review-check"
          onClick={changes.refresh}
          disabled={changes.refreshing}
          title="Read again what the agent has staged so far"
        >
          {changes.refreshing ? 'Checking…' : 'Check again'}
        </button>
      )}
      {changes.error && (
        <p className="error small" role="alert">
          {changes.error}
        </p>
      )}
    </section>
  );
}

/**
 * The call to action at the end of a finished task's conversation: one line per folder whose
 * edits wait for the person, e.g. "3 files changed in notes", and its Review button.
 */
export function ReviewCallToAction(props: {
  changesets: ChangesetSummary[];
  waiting: Map<string, number>;
  onOpen(id: string): void;
}) {
  const { waiting } = props;
  const lines = props.changesets.flatMap((c) => {
    const n = waiting.get(c.id);
    return n ? [{ c, text: waitingHeadline(c, n) }] : [];
  });
  if (lines.length === 0) return null;
  return (
    <div className="review-cta" data-testid="review-cta">
      {lines.map(({ c, text }) => (
        <p key={c.id} className="review-cta-line">
          <span>
            <strong>{text}</strong>
            <span className="muted small"> · staged, not yet in your folder</span>
          </span>
          <button
            type="button"
            className="primary"
            aria-label={`Review ${text}`}
            onClick={() => props.onOpen(c.id)}
          >
            Review
          </button>
        </p>
      ))}
    </div>
  );
}
