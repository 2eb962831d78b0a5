import { Notification, type BrowserWindow } from 'electron';
import type { EventName } from '../../shared/api.js';
import type { Approval, TaskSummary } from '../../shared/app-contract.js';

const FINISHED: Record<string, string> = {
  done: 'Task finished',
  error: 'Task failed',
  cancelled: 'Task stopped',
  refusal: 'The model declined the task',
};

/**
 * Desktop notifications for what needs the person while the window is in the background: a task
 * that finished, failed or stopped, and a question the agent waits on. Clicking one shows it.
 */
export function notifier(
  window: () => BrowserWindow | undefined,
  openTask: (taskId: string) => void,
): (event: EventName, payload: unknown) => void {
  const lastStatus = new Map<string, string>();
  const show = (title: string, body: string, taskId: string) => {
    const w = window();
    if (!Notification.isSupported() || (w && w.isFocused())) return;
    const n = new Notification({ title, body, silent: false });
    n.on('click', () => {
      const win = window();
      if (win) {
        if (win.isMinimized()) win.restore();
        win.focus();
      }
      openTask(taskId);
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
