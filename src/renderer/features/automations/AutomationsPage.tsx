import { useCallback, useEffect, useState } from 'react';
import { folderModeText } from '../../../shared/app-contract.js';
import type { Automation, AutomationRun } from '../../../shared/automations-contract.js';
import { call, useEvent } from '../../api/hooks.js';
import { EmptyState } from '../../components/EmptyState.js';
import { formatCost, formatTokens } from '../../lib/format.js';
import { hrefOf } from '../../lib/route.js';
import type { UsageTotals } from '../../../shared/usage.js';
import { SecretTag } from '../secrets/SecretTag.js';
import { AutomationForm } from './AutomationForm.js';
import { formatRunTime, personTimeZone, runLabel, runTone } from './automation-format.js';

/** `12k in · 3.1k out · 40k cache read · 1.0k cache write · $0.42`. */
function usageLine(u: UsageTotals): string {
  return (
    `${formatTokens(u.inputTokens)} in · ${formatTokens(u.outputTokens)} out · ` +
    `${formatTokens(u.cacheReadTokens)} cache read · ${formatTokens(u.cacheWriteTokens)} cache write · ` +
    formatCost(u.costUsd)
  );
}

type FormState = { mode: 'closed' } | { mode: 'create' } | { mode: 'edit'; automation: Automation };

/** The history of one automation's runs, missed ones included, each linking to its task. */
function RunHistory(props: { automation: Automation; runs: AutomationRun[] | null }) {
  const { automation, runs } = props;
  const tz = personTimeZone();
  return (
    <section
      className="card stack run-history"
      aria-labelledby="history-title"
      data-testid="run-history"
    >
      <h3 id="history-title">History of “{automation.name}”</h3>
      {runs === null ? (
        <p className="muted small">Loading…</p>
      ) : runs.length === 0 ? (
        <p className="muted small" data-testid="history-empty">
          No runs yet. The first is{' '}
          {automation.nextRunAt ? formatRunTime(automation.nextRunAt, tz) : 'not scheduled'}; or
          press Run now.
        </p>
      ) : (
        <ul className="plain run-list">
          {runs.map((r) => (
            <li key={r.id} className="run-row" data-testid="run-row">
              <span className="tabular run-when">{formatRunTime(r.slotAt, tz)}</span>
              <span className={`chip small ${runTone(r.status)}`} data-testid="run-status">
                {runLabel(r.status)}
              </span>
              <span className="muted small">
                {r.trigger === 'manual' ? 'run now' : r.late ? 'late' : 'on schedule'}
                {r.attempt > 1 ? ` · attempt ${r.attempt}` : ''}
              </span>
              <span className="run-detail">
                {/* A failed run says why first; its partial answer is in its task. */}
                {r.status === 'failed' || r.status === 'interrupted'
                  ? (r.error ?? r.summary ?? '')
                  : (r.summary ?? r.error ?? '')}
                {r.usage && (
                  <span className="run-usage tabular" data-testid="run-usage">
                    {usageLine(r.usage)}
                  </span>
                )}
              </span>
              {r.sessionId && (
                <a href={hrefOf({ page: 'task', id: r.sessionId })} className="small">
                  Open task
                </a>
              )}
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}

/**
 * Automations: tasks that run on a schedule. The list with each one's next run and status;
 * creating and editing with a live preview of the next run times; pause, resume, run now and
 * remove (confirmed); and the history of the selected one's runs, missed ones included.
 */
export function AutomationsPage(props: { host: 'electron' | 'web' | 'cli' }) {
  const [list, setList] = useState<Automation[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form, setForm] = useState<FormState>({ mode: 'closed' });
  const [selected, setSelected] = useState<string | null>(null);
  const [runs, setRuns] = useState<AutomationRun[] | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const tz = personTimeZone();

  const load = useCallback(() => {
    call('automations:list', {}).then(
      (r) => setList(r.automations),
      (e: Error) => setError(e.message),
    );
  }, []);
  const loadRuns = useCallback((id: string | null) => {
    if (!id) return;
    call('automations:runs', { automationId: id, limit: 100 }).then(
      (r) => setRuns(r.runs),
      () => setRuns([]),
    );
  }, []);
  useEffect(load, [load]);
  useEffect(() => loadRuns(selected), [selected, loadRuns]);
  const refresh = () => {
    load();
    loadRuns(selected);
  };
  useEvent('automations:changed', refresh);
  useEvent('automations:run-changed', refresh);

  const act = async (fn: () => Promise<unknown>) => {
    setError(null);
    try {
      await fn();
      refresh();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  const current = list?.find((a) => a.id === selected) ?? null;

  return (
    <section className="page automations" aria-labelledby="automations-title">
      <header className="page-header with-action">
        <h2 id="automations-title" className="grow">
          Automations
        </h2>
        {form.mode === 'closed' && (
          <button type="button" className="primary" onClick={() => setForm({ mode: 'create' })}>
            New automation
          </button>
        )}
      </header>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      {form.mode !== 'closed' && (
        <AutomationForm
          key={form.mode === 'edit' ? form.automation.id : 'new'}
          host={props.host}
          editing={form.mode === 'edit' ? form.automation : null}
          onCancel={() => setForm({ mode: 'closed' })}
          onDone={(a) => {
            setForm({ mode: 'closed' });
            if (selected && selected !== a.id) setSelected(null);
            load();
          }}
        />
      )}
      {list && list.length === 0 && form.mode === 'closed' && (
        <EmptyState
          title="No automations yet"
          testId="automations-empty"
          action={
            <button type="button" className="primary" onClick={() => setForm({ mode: 'create' })}>
              Create an automation
            </button>
          }
        >
          <p>
            An automation runs a task on a schedule — every morning, every Monday — on the folders
            you choose. Its results land in your inbox.
          </p>
          <p>Create one here, or ask the agent in a task to “do this every weekday at 9”.</p>
        </EmptyState>
      )}
      {list && list.length > 0 && (
        <ul className="plain automation-list" data-testid="automation-list">
          {list.map((a) => {
            const status = a.running ? 'Running' : a.enabled ? 'Active' : 'Paused';
            const tone = a.running ? 'active' : a.enabled ? 'ok' : 'neutral';
            return (
              <li
                key={a.id}
                className={`card automation-card ${selected === a.id ? 'selected' : ''}`}
                data-testid="automation-card"
              >
                <div className="row">
                  <h3 className="grow automation-name">{a.name}</h3>
                  <span className={`chip small ${tone}`} data-testid="automation-status">
                    {status}
                  </span>
                </div>
                <p className="muted small">
                  <span>{a.scheduleText}</span>
                  {a.tzid !== tz && <span> ({a.tzid})</span>}
                  {' · '}
                  <span data-testid="automation-next">
                    {a.nextRunAt
                      ? `next ${formatRunTime(a.nextRunAt, tz)}`
                      : a.enabled
                        ? 'no run left'
                        : 'paused'}
                  </span>
                  {a.lastRun && (
                    <>
                      {' · last: '}
                      <span>{runLabel(a.lastRun.status).toLowerCase()}</span>
                    </>
                  )}
                </p>
                <p className="automation-prompt">{a.prompt}</p>
                <p className="muted small tabular" data-testid="automation-usage">
                  {a.spendLimitUsd !== null && (
                    <span data-testid="automation-spend-limit">
                      Limit {formatCost(a.spendLimitUsd)} per run ·{' '}
                    </span>
                  )}
                  {a.usage.costUsd > 0 || a.usage.inputTokens > 0
                    ? `All runs: ${usageLine(a.usage)}`
                    : 'No usage yet'}
                </p>
                {a.folders.length > 0 && (
                  <p className="muted small">
                    {a.folders.map((f) => `${f.hostPath} (${folderModeText(f)})`).join(', ')}
                  </p>
                )}
                {a.secrets.length > 0 && (
                  <p className="row wrap small" data-testid="automation-secrets">
                    <span className="muted">Secrets:</span>
                    {a.secrets.map((n) => (
                      <SecretTag key={n} name={n} />
                    ))}
                  </p>
                )}
                {confirming === a.id ? (
                  <div className="row confirm" role="group" aria-label="Confirm removal">
                    <span className="grow">
                      Remove “{a.name}”? It stops running; its history and inbox items stay.
                    </span>
                    <button
                      type="button"
                      className="danger"
                      onClick={() => {
                        setConfirming(null);
                        if (selected === a.id) setSelected(null);
                        void act(() => call('automations:remove', { id: a.id }));
                      }}
                    >
                      Remove
                    </button>
                    <button type="button" autoFocus onClick={() => setConfirming(null)}>
                      Keep it
                    </button>
                  </div>
                ) : (
                  <div className="row wrap">
                    <button
                      type="button"
                      aria-pressed={selected === a.id}
                      onClick={() => {
                        setRuns(null);
                        setSelected(selected === a.id ? null : a.id);
                      }}
                    >
                      History
                    </button>
                    <button
                      type="button"
                      disabled={a.running}
                      onClick={() => void act(() => call('automations:runNow', { id: a.id }))}
                    >
                      Run now
                    </button>
                    {a.enabled ? (
                      <button
                        type="button"
                        onClick={() => void act(() => call('automations:pause', { id: a.id }))}
                      >
                        Pause
                      </button>
                    ) : (
                      <button
                        type="button"
                        onClick={() => void act(() => call('automations:resume', { id: a.id }))}
                      >
                        Resume
                      </button>
                    )}
                    <button type="button" onClick={() => setForm({ mode: 'edit', automation: a })}>
                      Edit
                    </button>
                    <button type="button" className="quiet" onClick={() => setConfirming(a.id)}>
                      Remove…
                    </button>
                    {a.createdBySession && (
                      <a className="small" href={hrefOf({ page: 'task', id: a.createdBySession })}>
                        Set up by a task
                      </a>
                    )}
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      )}
      {current && <RunHistory automation={current} runs={runs} />}
    </section>
  );
}
