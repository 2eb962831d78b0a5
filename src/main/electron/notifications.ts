import { Notification, type BrowserWindow } from 'electron';
import type { EventName } from '../../shared/api.js';
import type { Approval, TaskSummary } from '../../shared/app-contract.js';
import type { AutomationRun } from '../../shared/automations-contract.js';

const FINISHED: Record<string, string> = {
  done: 'Task finished',
  error: 'Task failed',
  cancelled: 'Task stopped',
  refusal: 'The model declined the task',
};

const RUN_ENDED: Partial<Record<AutomationRun['status'], string>> = {
  succeeded: 'Automation finished',
  failed: 'Automation failed',
  interrupted: 'Automation interrupted',
  missed: 'Automation run missed',
};

/**
 * Desktop notifications for what needs the person while the window is in the background: a task
 * that finished, failed or stopped, a question the agent waits on, and an automation run that
 * finished or a slot that was missed (its result is in the inbox). Clicking one shows it.
 */
export function notifier(
  window: () => BrowserWindow | undefined,
  openTask: (taskId: string) => void,
  openInbox: () => void = () => undefined,
  automationName: (automationId: string) => string | undefined = () => undefined,
): (event: EventName, payload: unknown) => void {
  const lastStatus = new Map<string, string>();
  const show = (title: string, body: string, taskId: string | null) => {
    const w = window();
    if (!Notification.isSupported() || (w && w.isFocused())) return;
    const n = new Notification({ title, body, silent: false });
    n.on('click', () => {
      const win = window();
      if (win) {
        if (win.isMinimized()) win.restore();
        win.focus();
      }
      if (taskId) openTask(taskId);
      else openInbox();
    });
    n.show();
  };
  return (event, payload) => {
    if (event === 'task:changed') {
      const t = payload as TaskSummary;
      const before = lastStatus.get(t.id);
      lastStatus.set(t.id, t.status);
      if (before === 'running' && t.status !== 'running' && FINISHED[t.status])
        show(FINISHED[t.status]!, t.title, t.id);
    } else if (event === 'automations:run-changed') {
      const r = payload as AutomationRun;
      const title = RUN_ENDED[r.status];
      if (!title) return;
      const name = automationName(r.automationId) ?? 'An automation';
      const body =
        r.status === 'succeeded'
          ? `${name}: ${r.summary ?? 'finished'}`
          : `${name}: ${r.error ?? r.status}`;
      show(title, body.length > 200 ? body.slice(0, 199) + '…' : body, null);
    } else if (event === 'approval:requested') {
      const a = payload as Approval;
      show(
        a.kind === 'network'
          ? 'The agent wants to reach a website'
          : 'The agent asks to run a tool',
        a.kind === 'network' ? `${a.subject} is not on the allowlist.` : a.detail,
        a.taskId,
      );
    }
  };
}
