import { EmptyState } from '../../components/EmptyState.js';

/** The inbox: one item per finished automation run, unread until opened. */
export function InboxPage() {
  return (
    <section className="page" aria-labelledby="inbox-title">
      <header className="page-header">
        <h2 id="inbox-title">Inbox</h2>
      </header>
      <EmptyState title="Nothing in your inbox" testId="inbox-empty">
        <p>When an automation finishes a run, its result arrives here, unread until you open it.</p>
      </EmptyState>
    </section>
  );
}
