import { EmptyState } from '../../components/EmptyState.js';

/**
 * Automations: tasks that run on a schedule. The automations feature fills this page (list,
 * editor with the next run times, history); until then it explains what will be here.
 */
export function AutomationsPage() {
  return (
    <section className="page" aria-labelledby="automations-title">
      <header className="page-header">
        <h2 id="automations-title">Automations</h2>
      </header>
      <EmptyState title="No automations yet" testId="automations-empty">
        <p>
          An automation runs a task on a schedule — every morning, every Monday — on the folders you
          choose. Its results land in your inbox.
        </p>
        <p>Ask the agent in a task to “do this every weekday at 9”, and it will set one up.</p>
      </EmptyState>
    </section>
  );
}
