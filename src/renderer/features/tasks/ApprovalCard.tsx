import { useState } from 'react';
import {
  folderModeText,
  type Approval,
  type ApprovalAnswer,
} from '../../../shared/app-contract.js';
import { call } from '../../api/hooks.js';

/**
 * The question before the agent creates an automation: everything it would get (schedule,
 * folders, hosts, what each run does), and only yes or no, since it outlives the task.
 */
function AutomationQuestion(props: {
  approval: Approval;
  sent: boolean;
  answer: (x: ApprovalAnswer) => void;
}) {
  const a = props.approval;
  const p = a.automation;
  return (
    <>
      <h3>
        The agent wants to schedule an automation: <code>{a.subject}</code>
      </h3>
      {p ? (
        <dl className="small approval-detail" data-testid="automation-plan">
          <dt>When</dt>
          <dd>
            {p.schedule} ({p.timeZone}){p.firstRun ? `; first run ${p.firstRun}` : ''}
          </dd>
          <dt>Folders</dt>
          <dd>
            {p.folders.length
              ? p.folders.map((f) => `${f.hostPath} (${folderModeText(f)})`).join(', ')
              : 'none'}
          </dd>
          <dt>Network</dt>
          <dd>{p.hosts.length ? p.hosts.join(', ') : 'none'}</dd>
          <dt>Each run</dt>
          <dd>{p.prompt}</dd>
        </dl>
      ) : (
        <p className="muted small approval-detail">{a.detail}</p>
      )}
      <div className="row wrap">
        <button
          type="button"
          className="primary"
          disabled={props.sent}
          onClick={() => props.answer('once')}
        >
          Create automation
        </button>
        <button
          type="button"
          className="danger"
          disabled={props.sent}
          onClick={() => props.answer('deny')}
        >
          Deny
        </button>
      </div>
    </>
  );
}

/**
 * A question the agent is waiting on, inline in the conversation: run this tool? reach this host?
 * create this automation? Network questions can be answered once, for this task, always (added to
 * the allowlist in settings), or no; tool questions once, for this task, or no; automations yes
 * or no, each one.
 */
export function ApprovalCard(props: { approval: Approval }) {
  const a = props.approval;
  const [error, setError] = useState<string | null>(null);
  const [sent, setSent] = useState(false);
  const answer = (x: ApprovalAnswer) => {
    setSent(true);
    call('approvals:answer', { id: a.id, answer: x }).then(
      () => undefined,
      (e: Error) => {
        setSent(false);
        setError(e.message);
      },
    );
  };
  const host = a.subject.replace(/:(80|443)$/, '');
  if (a.kind === 'automation')
    return (
      <article
        className="approval-card"
        data-testid="approval-card"
        aria-label={`Create automation ${a.subject}?`}
      >
        <AutomationQuestion approval={a} sent={sent} answer={answer} />
        {error && <p className="error small">{error}</p>}
      </article>
    );
  return (
    <article
      className="approval-card"
      data-testid="approval-card"
      aria-label={a.kind === 'network' ? `Allow ${a.subject}?` : `Allow ${a.subject}?`}
    >
      <h3>
        {a.kind === 'network' ? (
          <>
            The agent wants to reach <code>{a.subject}</code>
          </>
        ) : (
          <>
            The agent wants to run <code>{a.subject}</code>
          </>
        )}
      </h3>
      <p className="muted small approval-detail">{a.detail}</p>
      <div className="row wrap">
        <button type="button" className="primary" disabled={sent} onClick={() => answer('once')}>
          Allow once
        </button>
        <button type="button" disabled={sent} onClick={() => answer('session')}>
          {a.kind === 'network' ? 'Allow for this task' : `Allow ${a.subject} for this task`}
        </button>
        {a.kind === 'network' && (
          <button type="button" disabled={sent} onClick={() => answer('always')}>
            Always allow {host}
          </button>
        )}
        <button type="button" className="danger" disabled={sent} onClick={() => answer('deny')}>
          Deny
        </button>
      </div>
      {error && <p className="error small">{error}</p>}
    </article>
  );
}
