import { useCallback, useEffect, useState, type FormEvent } from 'react';
import type { DoctorCheck, Settings } from '../../../shared/api.js';
import type { ApiKeyStatus, ImageProgress } from '../../../shared/app-contract.js';
import { call, useEvent } from '../../api/hooks.js';
import { ProgressBar } from '../../components/ProgressBar.js';

type Step = 'key' | 'model' | 'vm';

/** The API key step: checked with a real call before it is kept. */
export function ApiKeyForm(props: {
  status: ApiKeyStatus | null;
  onSaved: (status: ApiKeyStatus, models: string[]) => void;
  submitLabel?: string;
}) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const r = await call('settings:setApiKey', { key: key.trim() });
      setKey('');
      props.onSaved(r.status, r.models);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit} className="stack" data-testid="api-key-form">
      <label className="field">
        <span>Anthropic API key</span>
        <input
          type="password"
          autoComplete="off"
          spellCheck={false}
          placeholder="sk-ant-…"
          value={key}
          onChange={(e) => setKey(e.target.value)}
          aria-describedby="key-help"
        />
      </label>
      <p id="key-help" className="muted small">
        Create one in the Anthropic Console under API keys.{' '}
        {props.status?.persistent
          ? 'Paddock keeps it encrypted with your system keychain.'
          : 'In the browser version Paddock keeps it in memory until the server stops; set ANTHROPIC_API_KEY to keep it.'}
      </p>
      {error && (
        <p className="error" role="alert" data-testid="key-error">
          {error}
        </p>
      )}
      <div className="row">
        <button type="submit" className="primary" disabled={busy || key.trim().length < 8}>
          {busy ? 'Checking…' : (props.submitLabel ?? 'Check and save')}
        </button>
      </div>
    </form>
  );
}

/** The VM step: the doctor's checks, and building the guest image with a progress bar. */
export function VmCheck(props: { onReady?: (ready: boolean) => void }) {
  const { onReady } = props;
  const [checks, setChecks] = useState<DoctorCheck[] | null>(null);
  const [progress, setProgress] = useState<ImageProgress | null>(null);
  const [error, setError] = useState<string | null>(null);

  const check = useCallback(
    () =>
      call('doctor:run', {}).then(
        (r) => {
          setChecks(r.checks);
          onReady?.(!r.checks.some((c) => c.status === 'fail'));
        },
        (e: Error) => setError(e.message),
      ),
    [onReady],
  );
  const run = () => {
    setChecks(null);
    void check();
  };
  useEffect(() => {
    void check();
  }, [check]);

  useEvent('image:progress', (p) => {
    setProgress(p);
    if (p.state === 'done') run();
  });

  const imageMissing = checks?.some((c) => c.id === 'image' && c.status === 'fail');
  const building = progress?.state === 'running';
  return (
    <div className="stack">
      {error && <p className="error">{error}</p>}
      {checks === null ? (
        <p className="muted" aria-busy="true">
          Checking this machine… (the first check boots the VM once, which can take a few seconds)
        </p>
      ) : (
        <ul className="checks" data-testid="doctor">
          {checks.map((c) => (
            <li key={c.id} className={`check ${c.status}`}>
              <span className="label">{c.label}</span>
              <span className="detail">{c.detail}</span>
              {c.fix && c.status !== 'ok' && <code className="fix">{c.fix}</code>}
            </li>
          ))}
        </ul>
      )}
      {(imageMissing || progress) && (
        <div className="card stack">
          <p>
            The agent’s commands run in a small Linux VM. Its image is built once on this machine (a
            few minutes, about 300 MB).
          </p>
          {progress && progress.state !== 'failed' && (
            <ProgressBar
              fraction={progress.fraction}
              label={progress.state === 'done' ? 'Image ready' : `Building: ${progress.step}`}
            />
          )}
          {progress?.state === 'failed' && (
            <p className="error" role="alert">
              {progress.message}
            </p>
          )}
          {imageMissing && (
            <div className="row">
              <button
                type="button"
                className="primary"
                disabled={building}
                onClick={() =>
                  call('image:build', {}).then(
                    () => undefined,
                    (e: Error) => setError(e.message),
                  )
                }
              >
                {building ? 'Building…' : 'Build the VM image'}
              </button>
            </div>
          )}
        </div>
      )}
    </div>
  );
}

/**
 * First run: the API key (checked with a real call), the model, and the VM (the doctor, with a
 * progress bar while the image builds). Each failure says what to do.
 */
export function FirstRun(props: { settings: Settings; onDone: (s: Settings) => void }) {
  const [step, setStep] = useState<Step>('key');
  const [status, setStatus] = useState<ApiKeyStatus | null>(null);
  const [models, setModels] = useState<string[]>([]);
  const [model, setModel] = useState(props.settings.model);
  const [vmReady, setVmReady] = useState(false);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    call('settings:apiKey', {}).then(setStatus, (e: Error) => setError(e.message));
  }, []);

  const toModels = (list: string[]) => {
    setModels(list);
    if (list.length && !list.includes(model)) setModel(list[0]!);
    setStep('model');
  };

  const takeExisting = () =>
    call('models:list', {}).then(
      (r) => toModels(r.models),
      (e: Error) => setError(e.message),
    );

  const finish = () =>
    call('settings:update', { model, onboarded: true }).then(props.onDone, (e: Error) =>
      setError(e.message),
    );

  const steps: { id: Step; label: string }[] = [
    { id: 'key', label: 'API key' },
    { id: 'model', label: 'Model' },
    { id: 'vm', label: 'This machine' },
  ];
  return (
    <main className="first-run" data-testid="first-run">
      <div className="first-run-card">
        <h1 className="brand big">Welcome to Paddock</h1>
        <p className="muted">
          An AI agent that works on the folders you give it. Every command it runs stays inside a
          Linux VM, and it reaches the internet only where you allow.
        </p>
        <ol className="steps" aria-label="Setup steps">
          {steps.map((s, i) => (
            <li
              key={s.id}
              className={s.id === step ? 'current' : ''}
              aria-current={s.id === step ? 'step' : undefined}
            >
              {i + 1}. {s.label}
            </li>
          ))}
        </ol>
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        {step === 'key' && (
          <section aria-labelledby="key-title" className="stack">
            <h2 id="key-title">Your Anthropic API key</h2>
            {status?.configured && (
              <div className="card row wrap" data-testid="key-present">
                <span>
                  {status.source === 'env' ? 'Found ANTHROPIC_API_KEY' : 'A key is saved'}:{' '}
                  <code>{status.masked}</code>
                </span>
                <button type="button" className="primary" onClick={() => void takeExisting()}>
                  Use this key
                </button>
              </div>
            )}
            <ApiKeyForm
              status={status}
              onSaved={(s, list) => {
                setStatus(s);
                toModels(list);
              }}
            />
          </section>
        )}
        {step === 'model' && (
          <section aria-labelledby="model-title" className="stack">
            <h2 id="model-title">Choose a model</h2>
            <p className="muted small">
              You can change it any time in Settings. Larger models do better on long tasks and cost
              more.
            </p>
            <fieldset className="card model-list">
              <legend className="sr-only">Model</legend>
              {(models.length ? models : [model]).map((m) => (
                <label key={m} className="inline">
                  <input
                    type="radio"
                    name="model"
                    checked={model === m}
                    onChange={() => setModel(m)}
                  />{' '}
                  {m}
                </label>
              ))}
            </fieldset>
            <div className="row">
              <button type="button" onClick={() => setStep('key')}>
                Back
              </button>
              <button type="button" className="primary" onClick={() => setStep('vm')}>
                Continue
              </button>
            </div>
          </section>
        )}
        {step === 'vm' && (
          <section aria-labelledby="vm-title" className="stack">
            <h2 id="vm-title">Checking this machine</h2>
            <VmCheck onReady={setVmReady} />
            <div className="row">
              <button type="button" onClick={() => setStep('model')}>
                Back
              </button>
              <button type="button" className="primary" onClick={() => void finish()}>
                {vmReady ? 'Start using Paddock' : 'Continue without the VM'}
              </button>
            </div>
          </section>
        )}
      </div>
    </main>
  );
}
