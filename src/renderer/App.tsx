import { useCallback, useEffect, useState } from 'react';
import type { Res, Settings } from '../shared/api.js';
import type { Grant } from '../shared/app-contract.js';
import { call, useEvent } from './api/hooks.js';
import { getApi } from './api/paddock.js';
import { ArtifactOriginContext } from './components/ArtifactFrame.js';
import { CoreStatusBanner } from './components/CoreStatusBanner.js';
import { AutomationsPage } from './features/automations/AutomationsPage.js';
import { FirstRun } from './features/first-run/FirstRun.js';
import { InboxPage } from './features/inbox/InboxPage.js';
import { SettingsPage } from './features/settings/SettingsPage.js';
import { Sidebar } from './features/sidebar/Sidebar.js';
import { NewTask } from './features/tasks/NewTask.js';
import { TaskView } from './features/tasks/TaskView.js';
import { hrefOf, parseRoute, type Route } from './lib/route.js';

function useRoute(): [Route, (r: Route) => void] {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  const go = useCallback((r: Route) => {
    location.hash = hrefOf(r);
  }, []);
  return [route, go];
}

/** Applies the theme setting: `system` follows the OS, the others pin it. */
function useTheme(theme: Settings['theme'] | undefined) {
  useEffect(() => {
    const root = document.documentElement;
    if (!theme || theme === 'system') delete root.dataset.theme;
    else root.dataset.theme = theme;
  }, [theme]);
}

/**
 * The app: first run until the person has a key, a model and a VM; then the sidebar and the page
 * the URL hash names. The same bundle runs in Electron and in `paddock serve`.
 */
export function App() {
  const [info, setInfo] = useState<Res<'app:info'> | null>(null);
  const [settings, setSettings] = useState<Settings | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [route, go] = useRoute();
  const [pendingGrant, setPendingGrant] = useState<Grant | null>(null);
  const [toast, setToast] = useState<string | null>(null);
  // Bumped when the engine is back after a crash, so a start that failed with it tries again.
  const [boot, setBoot] = useState(0);
  useTheme(settings?.theme);

  useEffect(() => {
    Promise.all([call('app:info', {}), call('settings:get', {})]).then(
      ([i, s]) => {
        setError(null);
        setInfo(i);
        setSettings(s);
      },
      (e: Error) => setError(e.message),
    );
  }, [boot]);
  const banner = <CoreStatusBanner onReady={() => error && setBoot((n) => n + 1)} />;

  const ready = Boolean(info && settings);
  useEffect(() => {
    if (!ready || document.documentElement.dataset.ready) return;
    // Time to interactive, for the UI benchmark: the first page is drawn and answers input.
    document.documentElement.dataset.ready = '1';
    performance.mark('paddock-interactive');
  }, [ready]);

  useEvent('settings:changed', setSettings);
  useEvent('ui:command', (c) => {
    if (c.command === 'settings') go({ page: 'settings' });
    else if (c.command === 'open-task' && c.taskId) go({ page: 'task', id: c.taskId });
    else if (c.command === 'inbox') go({ page: 'inbox' });
    else if (c.command === 'new-task') {
      setPendingGrant(c.grant ?? null);
      go({ page: 'new' });
    }
  });

  // A folder dropped anywhere on the window: in Electron it becomes a grant and a new task.
  useEffect(() => {
    const over = (e: DragEvent) => {
      if (e.dataTransfer?.types.includes('Files')) e.preventDefault();
    };
    const drop = (e: DragEvent) => {
      const file = e.dataTransfer?.files[0];
      if (!file) return;
      e.preventDefault();
      const api = getApi();
      if (!api.dropFolder) {
        setToast('In the browser, type the folder’s path or browse to it on the new-task page.');
        return;
      }
      void api.dropFolder(file).then((r) => {
        if (r.ok) {
          setPendingGrant(r.value);
          go({ page: 'new' });
        } else setToast(r.error.message);
      });
    };
    window.addEventListener('dragover', over);
    window.addEventListener('drop', drop);
    return () => {
      window.removeEventListener('dragover', over);
      window.removeEventListener('drop', drop);
    };
  }, [go]);

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 'n' && !e.shiftKey) {
        e.preventDefault();
        go({ page: 'new' });
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, [go]);

  useEffect(() => {
    if (!toast) return;
    const t = setTimeout(() => setToast(null), 6000);
    return () => clearTimeout(t);
  }, [toast]);

  if (error) {
    return (
      <main className="boot-error" role="alert">
        <h1>Paddock could not start</h1>
        <p>{error}</p>
        {banner}
      </main>
    );
  }
  if (!info || !settings) {
    return (
      <div className="boot" aria-busy="true">
        {banner}
      </div>
    );
  }
  if (!settings.onboarded) {
    return (
      <>
        <FirstRun settings={settings} onDone={setSettings} />
        {banner}
      </>
    );
  }

  const page = (
    <div className="shell">
      <Sidebar route={route} go={go} />
      <main className="content" id="main">
        {route.page === 'new' && (
          <NewTask
            host={info.host}
            settings={settings}
            initialGrant={pendingGrant}
            onGrantUsed={() => setPendingGrant(null)}
            onCreated={(id) => go({ page: 'task', id })}
          />
        )}
        {route.page === 'task' && (
          <TaskView key={route.id} id={route.id} openReview={route.review === true} />
        )}
        {route.page === 'settings' && (
          <SettingsPage info={info} settings={settings} onChange={setSettings} />
        )}
        {route.page === 'automations' && <AutomationsPage host={info.host} />}
        {route.page === 'inbox' && <InboxPage />}
      </main>
      {toast && (
        <div className="toast" role="status">
          {toast}
        </div>
      )}
      {banner}
    </div>
  );
  // Artifact frames (ArtifactFrame) come from the origin this host reports.
  return <ArtifactOriginContext value={info.artifactOrigin}>{page}</ArtifactOriginContext>;
}
