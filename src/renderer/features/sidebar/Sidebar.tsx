import { useEffect, useRef, useState, type KeyboardEvent, type ReactNode } from 'react';
import type { TaskSummary } from '../../../shared/app-contract.js';
import { call, useEvent } from '../../api/hooks.js';
import { statusLabel, statusTone } from '../../lib/format.js';
import { hrefOf, type Route } from '../../lib/route.js';

/** Sorts and merges one changed task into the list. */
function upsert(list: TaskSummary[], t: TaskSummary): TaskSummary[] {
  const rest = list.filter((x) => x.id !== t.id);
  return [t, ...rest].sort((a, b) => b.createdAt - a.createdAt);
}

/**
 * The sidebar: new task, search, the tasks with their status, and the automations, inbox and
 * settings pages. Arrow keys move between tasks.
 */
export function Sidebar(props: { route: Route; go: (r: Route) => void }) {
  const { route, go } = props;
  const [tasks, setTasks] = useState<TaskSummary[] | null>(null);
  const [query, setQuery] = useState('');
  const [error, setError] = useState<string | null>(null);
  const listRef = useRef<HTMLUListElement>(null);

  useEffect(() => {
    const t = setTimeout(
      () => {
        call('tasks:list', query ? { query } : {}).then(
          (r) => setTasks(r.tasks),
          (e: Error) => setError(e.message),
        );
      },
      query ? 150 : 0,
    );
    return () => clearTimeout(t);
  }, [query]);

  const [unread, setUnread] = useState(0);
  useEffect(() => {
    call('inbox:unreadCount', {}).then(
      (r) => setUnread(r.unread),
      () => undefined,
    );
  }, []);
  useEvent('inbox:changed', (e) => setUnread(e.unread));

  useEvent('task:changed', (t) => {
    if (query && !t.title.toLowerCase().includes(query.toLowerCase())) return;
    setTasks((list) => upsert(list ?? [], t));
  });

  const onListKey = (e: KeyboardEvent<HTMLUListElement>) => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
    const links = [...(listRef.current?.querySelectorAll('a') ?? [])];
    const i = links.indexOf(document.activeElement as HTMLAnchorElement);
    const next =
      links[Math.max(0, Math.min(links.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))];
    if (next) {
      e.preventDefault();
      next.focus();
    }
  };

  const navLink = (r: Route, label: string, extra?: ReactNode) => (
    <a
      href={hrefOf(r)}
      className={`nav-link ${route.page === r.page ? 'current' : ''}`}
      aria-current={route.page === r.page ? 'page' : undefined}
    >
      <span>{label}</span>
      {extra}
    </a>
  );

  return (
    <aside className="sidebar" aria-label="Navigation">
      <div className="brand-row">
        <h1 className="brand">Paddock</h1>
      </div>
      <button type="button" className="primary wide" onClick={() => go({ page: 'new' })}>
        New task
      </button>
      <input
        type="search"
        className="search"
        placeholder="Search tasks"
        aria-label="Search tasks"
        value={query}
        onChange={(e) => setQuery(e.target.value)}
      />
      <nav className="task-nav" aria-label="Tasks">
        {error && <p className="error small">{error}</p>}
        {tasks && tasks.length === 0 && (
          <p className="muted small sidebar-empty">
            {query ? 'No task matches.' : 'No tasks yet. Start one with New task.'}
          </p>
        )}
        <ul ref={listRef} className="task-list" onKeyDown={onListKey} data-testid="task-list">
          {(tasks ?? []).map((t) => {
            const current = route.page === 'task' && route.id === t.id;
            return (
              <li key={t.id}>
                <a
                  href={hrefOf({ page: 'task', id: t.id })}
                  className={`task-link ${current ? 'current' : ''}`}
                  aria-current={current ? 'page' : undefined}
                >
                  <span className="task-title">{t.title || 'Untitled task'}</span>
                  <span className={`chip small ${statusTone(t.status, t.pendingApprovals)}`}>
                    {statusLabel(t.status, t.pendingApprovals)}
                  </span>
                </a>
              </li>
            );
          })}
        </ul>
      </nav>
      <nav className="page-nav" aria-label="Pages">
        {navLink({ page: 'automations' }, 'Automations')}
        {navLink(
          { page: 'inbox' },
          'Inbox',
          <span
            className={`badge ${unread > 0 ? 'unread' : ''}`}
            data-testid="inbox-unread"
            aria-label={`${unread} unread`}
          >
            {unread}
          </span>,
        )}
        {navLink({ page: 'settings' }, 'Settings')}
      </nav>
    </aside>
  );
}
