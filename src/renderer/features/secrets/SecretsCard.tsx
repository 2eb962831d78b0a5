import { useState, type FormEvent } from 'react';
import {
  defaultSecretEnvName,
  secretAddSchema,
  type SecretAdd,
} from '../../../shared/secrets-contract.js';
import { call } from '../../api/hooks.js';
import { parseHosts, useSecrets } from './use-secrets.js';

const dateText = (at: number) =>
  new Date(at).toLocaleDateString(undefined, { day: 'numeric', month: 'short', year: 'numeric' });

/**
 * Settings' Secrets card: the stored secrets by name, variable and hosts (a value is never shown
 * or read back), where the store keeps them, a form to add or replace one, and removal.
 */
export function SecretsCard() {
  const { secrets, store, error: listError, reload } = useSecrets();
  const [name, setName] = useState('');
  const [envName, setEnvName] = useState('');
  const [hosts, setHosts] = useState('');
  const [value, setValue] = useState('');
  const [inBody, setInBody] = useState(false);
  const [pin, setPin] = useState(true);
  const [confirmReplace, setConfirmReplace] = useState(false);
  const [removing, setRemoving] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const usable = store?.usable !== false;

  const add = async (replace: boolean) => {
    setError(null);
    setSaved(null);
    const req: SecretAdd = {
      name: name.trim(),
      ...(envName.trim() ? { envName: envName.trim() } : {}),
      hosts: parseHosts(hosts),
      value,
      inBody,
      pin,
      ...(replace ? { replace: true } : {}),
    };
    // The contract's own rules, so a mistake reads as its sentence rather than a schema report.
    const checked = secretAddSchema.safeParse(req);
    if (!checked.success) {
      setError(checked.error.issues[0]?.message ?? 'Check the fields.');
      return;
    }
    if (!replace && secrets?.some((s) => s.name === req.name)) {
      setConfirmReplace(true);
      return;
    }
    setConfirmReplace(false);
    setBusy(true);
    try {
      const s = await call('secrets:add', req);
      setName('');
      setEnvName('');
      setHosts('');
      setInBody(false);
      setPin(true);
      // SECURITY: the value leaves the page's state once the core has it.
      setValue('');
      setSaved(`Secret “${s.name}” saved; tasks see it as ${s.envName}.`);
      reload();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  const remove = async (secret: string) => {
    setRemoving(null);
    setError(null);
    setSaved(null);
    try {
      await call('secrets:remove', { name: secret });
      setSaved(`Secret “${secret}” removed.`);
      reload();
    } catch (e) {
      setError((e as Error).message);
    }
  };

  return (
    <div className="card stack" data-testid="secrets-card">
      <h3>Secrets</h3>
      <p className="muted small">
        The VM only sees a placeholder; Paddock's proxy swaps in the value for these hosts only.
      </p>
      {store && (
        <p className="muted small" data-testid="secrets-store">
          {store.detail}
        </p>
      )}
      {listError && (
        <p className="error small" role="alert">
          {listError}
        </p>
      )}
      {secrets?.length === 0 && (
        <p className="muted small" data-testid="secrets-empty">
          No secrets yet.
        </p>
      )}
      {secrets && secrets.length > 0 && (
        <ul className="plain secret-list" data-testid="secret-list">
          {secrets.map((s) => (
            <li key={s.name} className="secret-row" data-testid="secret-row">
              <div className="row wrap">
                <strong data-testid="secret-name">{s.name}</strong>
                <code>{s.envName}</code>
                {s.pin && (
                  <span
                    className="chip small active"
                    title="Requests to its hosts may carry only your secrets"
                  >
                    pinned
                  </span>
                )}
                {s.inBody && <span className="chip small">also in request bodies</span>}
                <span className="grow" />
                <button
                  type="button"
                  className="quiet"
                  aria-label={`Remove ${s.name}`}
                  onClick={() => setRemoving(s.name)}
                >
                  Remove…
                </button>
              </div>
              <p className="small" data-testid="secret-hosts">
                <span className="muted">Sent only to </span>
                {s.hosts.map((h, i) => (
                  <span key={h}>
                    {i > 0 && ', '}
                    <code>{h}</code>
                  </span>
                ))}
              </p>
              <p className="muted small">
                Added {s.source === 'cli' ? 'from the CLI' : 'in Settings'} on{' '}
                {dateText(s.createdAt)}
                {s.updatedAt > s.createdAt ? `, replaced on ${dateText(s.updatedAt)}` : ''}
              </p>
              {removing === s.name && (
                <div className="row confirm" role="group" aria-label={`Confirm removing ${s.name}`}>
                  <span className="grow">
                    Remove “{s.name}”? Tasks and automations that use it no longer get it.
                  </span>
                  <button type="button" className="danger" onClick={() => void remove(s.name)}>
                    Remove
                  </button>
                  <button type="button" autoFocus onClick={() => setRemoving(null)}>
                    Keep it
                  </button>
                </div>
              )}
            </li>
          ))}
        </ul>
      )}

      <form
        className="stack secret-form"
        aria-label="Add a secret"
        onSubmit={(e: FormEvent) => {
          e.preventDefault();
          void add(false);
        }}
      >
        {!usable && (
          <p className="error small" data-testid="secrets-unusable">
            This Paddock cannot decrypt the secrets stored here (another Paddock host added them),
            so adding one here is turned off.
          </p>
        )}
        <fieldset className="plain-fieldset stack" disabled={!usable || busy}>
          <div className="row wrap secret-fields">
            <label className="field grow">
              <span>Name</span>
              <input
                type="text"
                value={name}
                placeholder="github"
                autoComplete="off"
                spellCheck={false}
                onChange={(e) => {
                  setName(e.target.value);
                  setConfirmReplace(false);
                }}
              />
            </label>
            <label className="field grow">
              <span>Environment variable</span>
              <input
                type="text"
                value={envName}
                placeholder={defaultSecretEnvName(name || 'github')}
                autoComplete="off"
                spellCheck={false}
                onChange={(e) => setEnvName(e.target.value)}
              />
            </label>
          </div>
          <label className="field">
            <span>Hosts it may be sent to</span>
            <textarea
              rows={2}
              value={hosts}
              placeholder={'api.github.com\nuploads.github.com'}
              spellCheck={false}
              aria-describedby="secret-hosts-hint"
              onChange={(e) => setHosts(e.target.value)}
            />
            <small id="secret-hosts-hint" className="field-hint">
              One per line or separated by commas, as in the allowlist.
            </small>
          </label>
          <label className="field">
            <span>Value</span>
            <input
              type="password"
              value={value}
              autoComplete="off"
              spellCheck={false}
              onChange={(e) => setValue(e.target.value)}
            />
          </label>
          <label className="inline">
            <input type="checkbox" checked={inBody} onChange={(e) => setInBody(e.target.checked)} />{' '}
            Also replace in request bodies
          </label>
          <label className="inline">
            <input type="checkbox" checked={pin} onChange={(e) => setPin(e.target.checked)} /> Pin
            these hosts to my account
          </label>
          {confirmReplace ? (
            <div className="row confirm" role="group" aria-label="Confirm replacing">
              <span className="grow">
                A secret named “{name.trim()}” exists. Replace its value, variable and hosts?
              </span>
              <button type="button" className="danger" onClick={() => void add(true)}>
                Replace
              </button>
              <button type="button" autoFocus onClick={() => setConfirmReplace(false)}>
                Keep it
              </button>
            </div>
          ) : (
            <div className="row">
              <button type="submit" className="primary">
                {busy ? 'Saving…' : 'Add secret'}
              </button>
            </div>
          )}
        </fieldset>
        {error && (
          <p className="error small" role="alert">
            {error}
          </p>
        )}
        <p className="muted small" role="status" aria-live="polite">
          {saved ?? ' '}
        </p>
      </form>
    </div>
  );
}
