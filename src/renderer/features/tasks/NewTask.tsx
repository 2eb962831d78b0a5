import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { Settings } from '../../../shared/api.js';
import type { Grant } from '../../../shared/app-contract.js';
import { call } from '../../api/hooks.js';
import { getApi } from '../../api/paddock.js';
import { FolderMode } from '../folders/FolderMode.js';
import { GrantAdder } from '../folders/GrantAdder.js';
import { SecretChooser } from '../secrets/SecretChooser.js';
import { useSecrets } from '../secrets/use-secrets.js';

interface Chosen {
  grant: Grant;
  readOnly: boolean;
  /** Read-write: the agent's changes wait for review (the default) or go straight in. */
  review: boolean;
}

/** A folder's mode in the warm-VM key: the pool only hands out a VM shared the same way. */
const modeKey = (f: Chosen) => (f.readOnly ? 'ro' : f.review ? 'rv' : 'rw');

/**
 * A new task: the folders it may use (dropped or picked in the app; typed or browsed in the web
 * host), read-only, reviewed or written directly, what to do, how to approve, the hosts it
 * may reach and the secrets it may use.
 */
export function NewTask(props: {
  host: 'electron' | 'web' | 'cli';
  settings: Settings;
  initialGrant: Grant | null;
  onGrantUsed: () => void;
  onCreated: (id: string) => void;
}) {
  const { host, settings, initialGrant, onGrantUsed, onCreated } = props;
  const [folders, setFolders] = useState<Chosen[]>([]);
  const [prompt, setPrompt] = useState('');
  const [mode, setMode] = useState<'auto' | 'ask'>(settings.approvalMode);
  const [extraHosts, setExtraHosts] = useState('');
  const [secrets, setSecrets] = useState<string[]>([]);
  const stored = useSecrets();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const promptRef = useRef<HTMLTextAreaElement>(null);
  const canDrop = Boolean(getApi().dropFolder);

  const addGrant = (g: Grant) =>
    setFolders((f) =>
      f.some((x) => x.grant.id === g.id)
        ? f
        : [...f, { grant: g, readOnly: g.readOnly, review: true }],
    );

  // A folder dropped (or opened from the menu) while this page is shown joins the list.
  const [seenGrant, setSeenGrant] = useState<Grant | null>(null);
  if (initialGrant && initialGrant !== seenGrant) {
    setSeenGrant(initialGrant);
    addGrant(initialGrant);
  }
  useEffect(() => {
    if (!initialGrant) return;
    onGrantUsed();
    promptRef.current?.focus();
  }, [initialGrant, onGrantUsed]);

  // Boot a VM for these folders while the prompt is typed, so the task starts without waiting.
  const warmKey = prompt.trim()
    ? folders.map((f) => `${f.grant.id}:${modeKey(f)}`).join(',')
    : null;
  useEffect(() => {
    if (warmKey === null) return;
    const t = setTimeout(() => {
      const list = warmKey
        ? warmKey.split(',').map((x) => {
            const [id, mode] = x.split(':');
            return { id: id!, readOnly: mode === 'ro', review: mode === 'rv' };
          })
        : [];
      call('tasks:prewarm', { folders: list }).catch(() => undefined);
    }, 400);
    return () => clearTimeout(t);
  }, [warmKey]);

  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    if (!prompt.trim() || busy) return;
    setBusy(true);
    setError(null);
    try {
      const hosts = extraHosts
        .split(/[\s,]+/)
        .map((h) => h.trim())
        .filter(Boolean);
      const task = await call('tasks:create', {
        prompt,
        folders: folders.map((f) => ({
          id: f.grant.id,
          readOnly: f.readOnly,
          review: !f.readOnly && f.review,
        })),
        approvalMode: mode,
        ...(hosts.length ? { allowlist: hosts } : {}),
        ...(secrets.length ? { secrets } : {}),
      });
      onCreated(task.id);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };

  return (
    <section className="page new-task" aria-labelledby="new-title">
      <header className="page-header">
        <h2 id="new-title">New task</h2>
        <p className="muted">
          Give the agent folders and say what you want done. Every command runs in a Linux VM that
          sees only these folders and reaches only the hosts you allow.
        </p>
      </header>
      <form onSubmit={submit} className="stack">
        <fieldset className="card">
          <legend>Folders</legend>
          {folders.length === 0 && (
            <p className="muted small" data-testid="no-folders">
              {canDrop
                ? 'Drop a folder anywhere on this window, or choose one.'
                : 'Type the path of a folder on this machine, or browse to it.'}{' '}
              Without a folder the agent works in an empty VM.
            </p>
          )}
          <ul className="folder-list" data-testid="chosen-folders">
            {folders.map((f, i) => (
              <li key={f.grant.id} className="folder-row">
                <span className="folder-name">
                  /mnt/{f.grant.name}
                  {i === 0 && <span className="muted small"> · working folder</span>}
                </span>
                <code className="folder-path" title={f.grant.hostPath}>
                  {f.grant.hostPath}
                </code>
                <FolderMode
                  label={f.grant.hostPath}
                  readOnly={f.readOnly}
                  review={f.review}
                  onChange={(mode) =>
                    setFolders((all) =>
                      all.map((x) => (x.grant.id === f.grant.id ? { ...x, ...mode } : x)),
                    )
                  }
                />
                <button
                  type="button"
                  className="quiet"
                  aria-label={`Remove ${f.grant.name}`}
                  onClick={() => setFolders((all) => all.filter((x) => x.grant.id !== f.grant.id))}
                >
                  Remove
                </button>
              </li>
            ))}
          </ul>
          <GrantAdder
            host={host}
            label="Folder path on this machine"
            onGrant={addGrant}
            onError={setError}
          />
        </fieldset>

        <label className="field">
          <span>What should the agent do?</span>
          <textarea
            ref={promptRef}
            rows={5}
            value={prompt}
            placeholder="Sort these invoices into folders by month and write a summary.md"
            onChange={(e) => setPrompt(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) void submit();
            }}
          />
        </label>

        <div className="row wrap fieldsets">
          <fieldset className="card grow">
            <legend>Approvals</legend>
            <label className="inline">
              <input
                type="radio"
                name="mode"
                checked={mode === 'auto'}
                onChange={() => setMode('auto')}
              />{' '}
              Run tools without asking
            </label>
            <label className="inline">
              <input
                type="radio"
                name="mode"
                checked={mode === 'ask'}
                onChange={() => setMode('ask')}
              />{' '}
              Ask before each tool
            </label>
          </fieldset>
          <fieldset className="card grow">
            <legend>Network</legend>
            <p className="muted small">
              {settings.networkAllowlist.length + settings.promptAllowlist.length
                ? `Allowed always: ${[...settings.networkAllowlist, ...settings.promptAllowlist].join(', ')}.`
                : 'No host is allowed by default; the agent asks you first.'}
            </p>
            <input
              type="text"
              placeholder="Also allow, e.g. pypi.org, *.github.com"
              aria-label="Extra hosts to allow for this task"
              value={extraHosts}
              onChange={(e) => setExtraHosts(e.target.value)}
            />
          </fieldset>
        </div>

        <SecretChooser
          secrets={stored.secrets}
          chosen={secrets}
          onChange={setSecrets}
          className="card"
        />

        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <div className="row">
          <button type="submit" className="primary" disabled={!prompt.trim() || busy}>
            {busy ? 'Starting…' : 'Start task'}
          </button>
          <span className="muted small">Ctrl+Enter</span>
        </div>
      </form>
    </section>
  );
}
