import { useEffect, useState } from 'react';
import type { DoctorCheck, Res } from '../shared/api.js';
import { getApi } from './api/paddock.js';

/** The shell: for now, what Paddock is running on and whether the machine is ready. */
export function App() {
  const [info, setInfo] = useState<Res<'app:info'> | null>(null);
  const [checks, setChecks] = useState<DoctorCheck[] | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const api = getApi();
    void api['app:info']({}).then((r) => (r.ok ? setInfo(r.value) : setError(r.error.message)));
    void api['doctor:run']({}).then((r) =>
      r.ok ? setChecks(r.value.checks) : setError(r.error.message),
    );
  }, []);

  return (
    <div className="shell">
      <aside className="sidebar" aria-label="Navigation">
        <h1 className="brand">Paddock</h1>
        <button type="button" className="primary" disabled>
          New task
        </button>
        <p className="muted">Tasks will appear here.</p>
      </aside>
      <main className="content">
        <h2>Welcome</h2>
        <p>
          Drag a folder here and say what you want done. Every command runs in a Linux VM that sees
          only the folders you grant.
        </p>
        {error && (
          <p role="alert" className="error">
            {error}
          </p>
        )}
        {info && (
          <p className="muted" data-testid="app-info">
            Version {info.version} · schema {info.schemaVersion} · {info.host} · data in{' '}
            {info.dataDir}
          </p>
        )}
        <section aria-labelledby="doctor-title">
          <h3 id="doctor-title">This machine</h3>
          {checks === null ? (
            <p className="muted">Checking…</p>
          ) : (
            <ul className="checks" data-testid="doctor">
              {checks.map((c) => (
                <li key={c.id} className={`check ${c.status}`}>
                  <span className="label">{c.label}</span>
                  <span className="detail">{c.detail}</span>
                  {c.fix && <code className="fix">{c.fix}</code>}
                </li>
              ))}
            </ul>
          )}
        </section>
      </main>
    </div>
  );
}
