import { beforeEach, describe, expect, it, vi } from 'vitest';
import { notifier } from '../../src/main/electron/notifications.js';
import * as fake from '../helpers/fake-electron.js';

vi.mock('electron', () => import('../helpers/fake-electron.js'));

const task = (status: string) => ({ id: 't1', title: 'Tidy the photos', status });
const shown = () => fake.calls.filter((c) => c[0] === 'new Notification').map((c) => c[1]);

let win: fake.BrowserWindow;
let opened: string[];
let inbox: number;

function make() {
  return notifier(
    () => win as never,
    (id) => opened.push(id),
    () => void inbox++,
    () => 'Morning digest',
  );
}

beforeEach(() => {
  fake.resetFake();
  win = new fake.BrowserWindow({});
  opened = [];
  inbox = 0;
});

describe('notifier', () => {
  it('notifies a finished task only while the window is not focused', () => {
    fake.config.windowFocused = true;
    const n = make();
    n('task:changed', task('running'));
    n('task:changed', task('done'));
    expect(shown()).toEqual([]);

    fake.config.windowFocused = false;
    n('task:changed', task('running'));
    n('task:changed', task('error'));
    expect(shown()).toEqual([{ title: 'Task failed', body: 'Tidy the photos', silent: false }]);
    expect(fake.calls.some((c) => c[0] === 'notification.show')).toBe(true);
  });

  it('notifies only a change out of running, not a task first seen finished', () => {
    const n = make();
    n('task:changed', task('done'));
    n('task:changed', task('done'));
    expect(shown()).toEqual([]);
  });

  it('shows nothing where the system has no notifications', () => {
    fake.config.notificationsSupported = false;
    const n = make();
    n('task:changed', task('running'));
    n('task:changed', task('done'));
    expect(shown()).toEqual([]);
  });

  it('a click restores and focuses the window, then opens the task', () => {
    fake.config.windowMinimized = true;
    const n = make();
    n('task:changed', task('running'));
    n('task:changed', task('cancelled'));
    const notification = fake.calls.find(
      (c) => c[0] === 'notification.show',
    )![1] as fake.Notification;
    (notification.only('click') as () => void)();
    expect(fake.calls).toContainEqual(['win.restore']);
    expect(fake.calls).toContainEqual(['win.focus']);
    expect(opened).toEqual(['t1']);
  });

  it('an automation run that ended notifies with its name, and a click opens the inbox', () => {
    const n = make();
    n('automations:run-changed', { automationId: 'a1', status: 'running' });
    expect(shown()).toEqual([]);
    n('automations:run-changed', { automationId: 'a1', status: 'missed', error: null });
    expect(shown()).toEqual([
      { title: 'Automation run missed', body: 'Morning digest: missed', silent: false },
    ]);
    const notification = fake.calls.find(
      (c) => c[0] === 'notification.show',
    )![1] as fake.Notification;
    (notification.only('click') as () => void)();
    expect(inbox).toBe(1);
    expect(opened).toEqual([]);
  });

  it('an approval the agent waits on notifies while the window is in the background', () => {
    const n = make();
    n('approval:requested', { taskId: 't1', kind: 'network', subject: 'pypi.org', detail: '' });
    expect(shown()).toEqual([
      {
        title: 'The agent wants to reach a website',
        body: 'pypi.org is not on the allowlist.',
        silent: false,
      },
    ]);
  });
});
