import { useEffect, useState } from 'react';
import type { Effort, Res, Settings } from '../../../shared/api.js';
import type { ApiKeyStatus, UsageMonth } from '../../../shared/app-contract.js';
import { call } from '../../api/hooks.js';
import { formatBytes, formatCost } from '../../lib/format.js';
import { ApiKeyForm } from '../first-run/FirstRun.js';
import { SecretsCard } from '../secrets/SecretsCard.js';

/** The effort levels as a person reads them, lowest first. */
const EFFORT_LABEL: Record<Effort, string> = {
  low: 'Low',
  medium: 'Medium',
  high: 'High',
  xhigh: 'Extra high',
  max: 'Max',
};

/**
 * Settings: the API key (masked; never shown in full), model, effort and output limit, default
 * approval mode, this month's and last month's usage, network allowlist, secrets, pinned hosts,
 * VM memory and CPUs, how long applied changes can be undone, theme, the data folder and the logs
 * folder.
 */
export function SettingsPage(props: {
  info: Res<'app:info'>;
  settings: Settings;
  onChange: (s: Settings) => void;
}) {
  const { info, settings, onChange } = props;
  const [key, setKey] = useState<ApiKeyStatus | null>(null);
  const [changingKey, setChangingKey] = useState(false);
  const [models, setModels] = useState<string[]>([]);
  const [memory, setMemory] = useState(String(settings.vmMemoryMb));
  const [cpus, setCpus] = useState(String(settings.vmCpus));
  const [maxTokens, setMaxTokens] = useState(String(settings.maxTokens));
  const [logs, setLogs] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);

  useEffect(() => {
    call('settings:apiKey', {}).then(setKey, (e: Error) => setError(e.message));
    call('models:list', {}).then(
      (r) => setModels(r.models),
      () => undefined, // without a working key the current model is still shown
    );
  }, []);

  const update = (patch: Partial<Settings>, what: string) => {
    setError(null);
    call('settings:update', patch).then(
      (s) => {
        onChange(s);
        setSaved(what);
      },
      (e: Error) => setError(e.message),
    );
  };

  const modelChoices = models.includes(settings.model) ? models : [settings.model, ...models];

  return (
    <section className="page settings" aria-labelledby="settings-title" data-testid="settings">
      <header className="page-header">
        <h2 id="settings-title">Settings</h2>
      </header>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <p className="muted small saved" role="status" aria-live="polite">
        {saved ?? ' '}
      </p>

      <div className="card stack">
        <h3>Anthropic API key</h3>
        <div className="row wrap">
          <code data-testid="masked-key">{key?.masked ?? 'not set'}</code>
          <span className="muted small">
            {key?.source === 'env'
              ? 'from ANTHROPIC_API_KEY'
              : key?.source === 'stored'
                ? key.persistent
                  ? 'kept encrypted by your system keychain'
                  : 'kept in memory until the server stops'
                : ''}
            {key?.baseURL ? ` · ${key.baseURL}` : ''}
          </span>
          <button
            type="button"
            onClick={() => setChangingKey((c) => !c)}
            aria-expanded={changingKey}
          >
            {changingKey ? 'Cancel' : 'Change key'}
          </button>
        </div>
        {changingKey && (
          <ApiKeyForm
            status={key}
            onSaved={(s, list) => {
              setKey(s);
              setModels(list);
              setChangingKey(false);
              setSaved('Key checked and saved.');
            }}
          />
        )}
      </div>

      <div className="card stack">
        <h3>Agent</h3>
        <label className="field">
          <span>Model</span>
          <select
            value={settings.model}
            onChange={(e) => update({ model: e.target.value }, 'Model saved.')}
          >
            {modelChoices.map((m) => (
              <option key={m} value={m}>
                {m}
              </option>
            ))}
          </select>
        </label>
        <label className="field">
          <span>Effort</span>
          <select
            value={settings.effort}
            aria-describedby="effort-hint"
            onChange={(e) =>
              update(
                { effort: e.target.value as Effort },
                'Effort saved; it applies to new replies.',
              )
            }
          >
            {(Object.keys(EFFORT_LABEL) as Effort[]).map((k) => (
              <option key={k} value={k}>
                {EFFORT_LABEL[k]}
              </option>
            ))}
          </select>
          <small id="effort-hint" className="field-hint">
            How hard the model works on each reply: how deeply it thinks, how many tool calls it
            makes, how much it writes. Higher effort costs more.
          </small>
        </label>
        <label className="field">
          <span>Output limit (tokens per reply)</span>
          <input
            type="number"
            min={1024}
            max={128_000}
            step={1024}
            value={maxTokens}
            onChange={(e) => setMaxTokens(e.target.value)}
            onBlur={() => {
              const n = Number(maxTokens);
              if (Number.isInteger(n) && n !== settings.maxTokens)
                update({ maxTokens: n }, 'Output limit saved.');
            }}
          />
        </label>
        <fieldset className="plain-fieldset">
          <legend>Approvals for new tasks</legend>
          <label className="inline">
            <input
              type="radio"
              name="approval"
              checked={settings.approvalMode === 'auto'}
              onChange={() => update({ approvalMode: 'auto' }, 'Saved.')}
            />{' '}
            Run tools without asking (the VM contains them)
          </label>
          <label className="inline">
            <input
              type="radio"
              name="approval"
              checked={settings.approvalMode === 'ask'}
              onChange={() => update({ approvalMode: 'ask' }, 'Saved.')}
            />{' '}
            Ask before each tool
          </label>
        </fieldset>
      </div>

      <UsageCard />

      <div className="card stack">
        <h3>Network allowlist</h3>
        <p className="muted small">
          Hosts every task may reach without asking. <code>example.com</code> allows ports 80 and
          443; <code>*.example.com</code> its subdomains; <code>host:8080</code> one port;{' '}
          <code>host.paddock.internal:8080</code> a service on this computer.
        </p>
        {settings.networkAllowlist.length === 0 ? (
          <p className="muted small" data-testid="allowlist-empty">
            Empty: the agent asks before reaching any host.
          </p>
        ) : (
          <HostList
            hosts={settings.networkAllowlist}
            testId="allowlist"
            onRemove={(h) =>
              update(
                { networkAllowlist: settings.networkAllowlist.filter((x) => x !== h) },
                'Allowlist saved.',
              )
            }
          />
        )}
        {settings.promptAllowlist.length > 0 && (
          <>
            <p className="muted small">
              Allowed when you answered “always” to a question. These never reach this computer or
              your local network; add a host above for that.
            </p>
            <HostList
              hosts={settings.promptAllowlist}
              testId="prompt-allowlist"
              onRemove={(h) =>
                update(
                  { promptAllowlist: settings.promptAllowlist.filter((x) => x !== h) },
                  'Allowlist saved.',
                )
              }
            />
          </>
        )}
        <HostAdder
          placeholder="pypi.org"
          label="Host to allow"
          button="Add host"
          onAdd={(h) => {
            if (!settings.networkAllowlist.includes(h))
              update({ networkAllowlist: [...settings.networkAllowlist, h] }, 'Allowlist saved.');
          }}
        />
      </div>

      <SecretsCard />

      <div className="card stack" data-testid="pinned-hosts-card">
        <h3>Pinned hosts</h3>
        <p className="muted small">
          Requests to these hosts may carry only your secrets; any other credential is refused.
        </p>
        {settings.pinnedHosts.length === 0 ? (
          <p className="muted small" data-testid="pinned-hosts-empty">
            None besides the hosts of secrets marked “pinned”.
          </p>
        ) : (
          <HostList
            hosts={settings.pinnedHosts}
            testId="pinned-hosts"
            onRemove={(h) =>
              update(
                { pinnedHosts: settings.pinnedHosts.filter((x) => x !== h) },
                'Pinned hosts saved.',
              )
            }
          />
        )}
        <HostAdder
          placeholder="api.github.com"
          label="Host to pin"
          button="Pin host"
          onAdd={(h) => {
            if (!settings.pinnedHosts.includes(h))
              update({ pinnedHosts: [...settings.pinnedHosts, h] }, 'Pinned hosts saved.');
          }}
        />
      </div>

      <div className="card stack">
        <h3>Virtual machine</h3>
        <div className="row wrap">
          <label className="field">
            <span>Memory (MB)</span>
            <input
              type="number"
              min={128}
              max={65536}
              step={128}
              value={memory}
              onChange={(e) => setMemory(e.target.value)}
              onBlur={() => {
                const n = Number(memory);
                if (Number.isInteger(n) && n !== settings.vmMemoryMb)
                  update({ vmMemoryMb: n }, 'Memory saved; it applies to new tasks.');
              }}
            />
          </label>
          <label className="field">
            <span>CPUs</span>
            <input
              type="number"
              min={1}
              max={64}
              value={cpus}
              onChange={(e) => setCpus(e.target.value)}
              onBlur={() => {
                const n = Number(cpus);
                if (Number.isInteger(n) && n !== settings.vmCpus)
                  update({ vmCpus: n }, 'CPUs saved; they apply to new tasks.');
              }}
            />
          </label>
        </div>
      </div>

      <JournalCard
        key={settings.journalDays}
        days={settings.journalDays}
        onSave={(journalDays) =>
          update({ journalDays }, `Applied changes can now be undone for ${journalDays} days.`)
        }
      />

      <div className="card stack">
        <h3>Appearance</h3>
        <label className="field">
          <span>Theme</span>
          <select
            value={settings.theme}
            onChange={(e) => update({ theme: e.target.value as Settings['theme'] }, 'Saved.')}
          >
            <option value="system">Follow the system</option>
            <option value="light">Light</option>
            <option value="dark">Dark</option>
          </select>
        </label>
      </div>

      <div className="card stack">
        <h3>Data</h3>
        <p>
          Data folder: <code data-testid="data-dir">{info.dataDir}</code>
        </p>
        <div className="row wrap">
          <button
            type="button"
            onClick={() =>
              call('app:openLogs', {}).then(
                (r) => setLogs(r.opened ? null : r.path),
                (e: Error) => setError(e.message),
              )
            }
          >
            Open logs folder
          </button>
          {logs && (
            <span className="small" data-testid="logs-path">
              The logs are in <code>{logs}</code> on the machine running Paddock.
            </span>
          )}
        </div>
      </div>
    </section>
  );
}

/** A list of allowlist entries, each with a Remove button (typed and prompt-answer entries). */
function HostList(props: {
  hosts: readonly string[];
  testId: string;
  onRemove: (host: string) => void;
}) {
  return (
    <ul className="plain allowlist" data-testid={props.testId}>
      {props.hosts.map((h) => (
        <li key={h} className="row">
          <code className="grow">{h}</code>
          <button
            type="button"
            className="quiet"
            aria-label={`Remove ${h}`}
            onClick={() => props.onRemove(h)}
          >
            Remove
          </button>
        </li>
      ))}
    </ul>
  );
}

/** A host typed and added with Enter or the button (the allowlist and the pinned hosts). */
function HostAdder(props: {
  placeholder: string;
  label: string;
  button: string;
  onAdd: (host: string) => void;
}) {
  const [host, setHost] = useState('');
  const add = () => {
    const h = host.trim();
    if (!h) return;
    props.onAdd(h);
    setHost('');
  };
  return (
    <div className="row">
      <input
        type="text"
        className="grow"
        placeholder={props.placeholder}
        aria-label={props.label}
        value={host}
        onChange={(e) => setHost(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === 'Enter') add();
        }}
      />
      <button type="button" onClick={add} disabled={!host.trim()}>
        {props.button}
      </button>
    </div>
  );
}

/** Tokens and cost of every task and automation run, this calendar month and last. */
function UsageCard() {
  const [summary, setSummary] = useState<Res<'usage:summary'> | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    call('usage:summary', tz ? { tz } : {}).then(setSummary, (e: Error) => setProblem(e.message));
  }, []);
  const row = (label: string, m: UsageMonth, testId: string) => (
    <tr data-testid={testId}>
      <th scope="row">
        {label}{' '}
        <span className="muted small">
          {new Intl.DateTimeFormat(undefined, {
            month: 'long',
            year: 'numeric',
            timeZone: summary!.timeZone,
          }).format(new Date(m.from))}
        </span>
      </th>
      <td>{m.inputTokens.toLocaleString()}</td>
      <td>{m.outputTokens.toLocaleString()}</td>
      <td>{m.cacheReadTokens.toLocaleString()}</td>
      <td>{m.cacheWriteTokens.toLocaleString()}</td>
      <td data-testid="usage-month-cost">{formatCost(m.costUsd)}</td>
    </tr>
  );
  return (
    <div className="card stack" data-testid="usage-summary">
      <h3>Usage</h3>
      <p className="muted small">
        Tokens and cost of every task and automation run, by calendar month in your time zone.
      </p>
      {problem ? (
        <p className="error small" role="alert">
          {problem}
        </p>
      ) : !summary ? (
        <p className="muted small">Loading…</p>
      ) : (
        <table className="usage-table tabular">
          <thead>
            <tr>
              <th scope="col">Month</th>
              <th scope="col">Input</th>
              <th scope="col">Output</th>
              <th scope="col">Cache read</th>
              <th scope="col">Cache write</th>
              <th scope="col">Cost</th>
            </tr>
          </thead>
          <tbody>
            {row('This month', summary.thisMonth, 'usage-this-month')}
            {row('Last month', summary.lastMonth, 'usage-last-month')}
          </tbody>
        </table>
      )}
    </div>
  );
}

/**
 * How long applied changes stay undoable (the `journalDays` setting), and what the staged copies
 * and the undo journal take on disk now. Older journal entries, and copies only they needed, are
 * removed by the core.
 */
function JournalCard(props: { days: number; onSave: (days: number) => void }) {
  const { days, onSave } = props;
  const [value, setValue] = useState(String(days));
  const [storage, setStorage] = useState<Res<'changes:storage'> | null>(null);
  useEffect(() => {
    call('changes:storage', {}).then(setStorage, () => undefined);
  }, [days]);
  const save = () => {
    const n = Number(value);
    if (Number.isInteger(n) && n >= 1 && n <= 3650 && n !== days) onSave(n);
    else setValue(String(days));
  };
  return (
    <div className="card stack" data-testid="journal-settings">
      <h3>Journal</h3>
      <label className="field">
        <span>Applied changes can be undone for (days)</span>
        <input
          type="number"
          min={1}
          max={3650}
          value={value}
          aria-describedby="journal-hint"
          data-testid="journal-days"
          onChange={(e) => setValue(e.target.value)}
          onBlur={save}
          onKeyDown={(e) => {
            if (e.key === 'Enter') save();
          }}
        />
        <small id="journal-hint" className="field-hint">
          When you apply a task’s changes to a folder, Paddock keeps what they replaced so you can
          undo them. After this many days that copy is removed, and Undo is no longer offered.
        </small>
      </label>
      {storage && (
        <p className="muted small" data-testid="journal-storage">
          Staged copies and the journal take {formatBytes(storage.bytes)} ({storage.blobs}{' '}
          {storage.blobs === 1 ? 'copy' : 'copies'}, {storage.journalEntries} journal{' '}
          {storage.journalEntries === 1 ? 'entry' : 'entries'}).
        </p>
      )}
    </div>
  );
}
