import { useEffect, useState, type FormEvent } from 'react';
import type { Grant } from '../../../shared/app-contract.js';
import { SPEND_LIMIT_RULE, type Automation } from '../../../shared/automations-contract.js';
import type { Res } from '../../../shared/api.js';
import { call } from '../../api/hooks.js';
import { FolderMode } from '../folders/FolderMode.js';
import { GrantAdder } from '../folders/GrantAdder.js';
import { SecretChooser } from '../secrets/SecretChooser.js';
import { useSecrets } from '../secrets/use-secrets.js';
import { formatRunTime, MISSED_LABEL, personTimeZone } from './automation-format.js';

interface FolderChoice {
  key: string;
  label: string;
  readOnly: boolean;
  /** Read-write: the runs' writes wait for review (true) or go straight to the folder. */
  review: boolean;
  /** A folder the automation already had (kept by path), or a new grant (by id). */
  kept?: string;
  grantId?: string;
}

/** The next run times of a schedule as it is typed, or what is wrong with it. */
function usePreview(schedule: string, tz: string): Res<'automations:preview'> | null {
  const [preview, setPreview] = useState<Res<'automations:preview'> | null>(null);
  useEffect(() => {
    let live = true;
    const t = setTimeout(() => {
      call('automations:preview', { schedule, tz }).then(
        (p) => live && setPreview(p),
        (e: Error) => live && setPreview({ problem: e.message, tzid: null, times: [] }),
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [schedule, tz]);
  return preview;
}

/**
 * Creating or editing an automation: name, what to do, when (a phrase or iCalendar text, with the
 * next 5 run times in the person's time zone as they type), folders (each read-write one reviewed
 * or written directly), whether reviewed changes are applied automatically, hosts, the secrets
 * its runs may use and missed-run policy.
 */
export function AutomationForm(props: {
  host: 'electron' | 'web' | 'cli';
  editing: Automation | null;
  onDone: (a: Automation) => void;
  onCancel: () => void;
}) {
  const { host, editing, onDone, onCancel } = props;
  const tz = personTimeZone();
  const [name, setName] = useState(editing?.name ?? '');
  const [prompt, setPrompt] = useState(editing?.prompt ?? '');
  const [schedule, setSchedule] = useState(editing?.scheduleText ?? 'every weekday at 9:00');
  const [missed, setMissed] = useState<Automation['missedPolicy']>(editing?.missedPolicy ?? 'once');
  const [hosts, setHosts] = useState((editing?.allowlist ?? []).join(', '));
  const [spendLimit, setSpendLimit] = useState(
    editing?.spendLimitUsd ? String(editing.spendLimitUsd) : '',
  );
  const [folders, setFolders] = useState<FolderChoice[]>(
    (editing?.folders ?? []).map((f) => ({
      key: `keep:${f.hostPath}`,
      label: f.hostPath,
      readOnly: f.readOnly,
      review: f.review === true,
      kept: f.hostPath,
    })),
  );
  const [applyAuto, setApplyAuto] = useState(editing?.applyChanges === 'auto');
  const [foldersTouched, setFoldersTouched] = useState(false);
  const [secrets, setSecrets] = useState<string[]>(editing?.secrets ?? []);
  const stored = useSecrets();
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const scheduleTz = editing && schedule.trim() === editing.scheduleText ? editing.tzid : tz;
  const preview = usePreview(schedule, scheduleTz);

  const addGrant = (g: Grant) => {
    setFoldersTouched(true);
    setFolders((f) =>
      f.some((x) => x.grantId === g.id || x.kept === g.hostPath)
        ? f
        : [
            ...f,
            // Review is the default for a new read-write folder: nothing lands unseen.
            { key: g.id, label: g.hostPath, readOnly: g.readOnly, review: true, grantId: g.id },
          ],
    );
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    // As the CLI takes it: dollars (`2`, `0.50`, `$2`), or empty or `none` for no limit.
    const limitText = spendLimit.trim().replace(/^\$/, '');
    const spendLimitUsd = /^(none|off)?$/i.test(limitText) ? null : Number(limitText);
    // A number that is not one would travel as null and quietly remove the limit.
    if (spendLimitUsd !== null && !(Number.isFinite(spendLimitUsd) && spendLimitUsd > 0)) {
      setError(SPEND_LIMIT_RULE);
      return;
    }
    setBusy(true);
    setError(null);
    const allowlist = hosts
      .split(/[\s,]+/)
      .map((h) => h.trim())
      .filter(Boolean);
    const newFolders = folders
      .filter((f) => f.grantId)
      .map((f) => ({ id: f.grantId!, readOnly: f.readOnly, review: f.review }));
    const applyChanges = applyAuto ? ('auto' as const) : ('review' as const);
    try {
      const a = editing
        ? await call('automations:update', {
            id: editing.id,
            name,
            prompt,
            schedule,
            tz: scheduleTz,
            allowlist,
            missed,
            spendLimitUsd,
            applyChanges,
            secrets,
            ...(foldersTouched
              ? {
                  folders: newFolders,
                  keepFolders: folders
                    .filter((f) => f.kept)
                    .map((f) => ({ hostPath: f.kept!, readOnly: f.readOnly, review: f.review })),
                }
              : {}),
          })
        : await call('automations:create', {
            name,
            prompt,
            schedule,
            tz,
            folders: newFolders,
            allowlist,
            missed,
            spendLimitUsd,
            applyChanges,
            ...(secrets.length ? { secrets } : {}),
          });
      onDone(a);
    } catch (err) {
      setError((err as Error).message);
      setBusy(false);
    }
  };

  return (
    <form
      className="card stack automation-form"
      onSubmit={submit}
      aria-labelledby="automation-form-title"
      data-testid="automation-form"
    >
      <h3 id="automation-form-title">{editing ? `Edit “${editing.name}”` : 'New automation'}</h3>
      <label className="field">
        <span>Name</span>
        <input
          type="text"
          value={name}
          onChange={(e) => setName(e.target.value)}
          placeholder="Morning summary"
          required
          autoFocus
        />
      </label>
      <label className="field">
        <span>What should the agent do each time?</span>
        <textarea
          rows={3}
          value={prompt}
          onChange={(e) => setPrompt(e.target.value)}
          placeholder="Summarise the new files in this folder"
          required
        />
      </label>
      <div className="schedule-row">
        <label className="field">
          <span>When</span>
          <input
            type="text"
            value={schedule}
            onChange={(e) => setSchedule(e.target.value)}
            aria-describedby="schedule-preview"
            placeholder="every weekday at 9:00"
          />
          <small className="muted schedule-hint">
            e.g. “every day at 9:00”, “every 2 hours”, “every Monday at 8:30”, “once on 2026-12-01
            at 08:00”, or iCalendar RRULE text.
          </small>
        </label>
        <div
          id="schedule-preview"
          className="schedule-preview"
          data-testid="schedule-preview"
          aria-live="polite"
        >
          {preview?.problem ? (
            <p className="error small" data-testid="schedule-problem">
              {preview.problem}
            </p>
          ) : preview ? (
            <>
              <p className="small muted">
                Next runs ({preview.tzid ?? scheduleTz}
                {preview.tzid && preview.tzid !== tz ? `; shown in ${tz}` : ''}):
              </p>
              <ol className="plain preview-times">
                {preview.times.map((t) => (
                  <li key={t} data-at={t} className="tabular">
                    {formatRunTime(t, tz)}
                  </li>
                ))}
              </ol>
            </>
          ) : (
            <p className="small muted">Working out the next run times…</p>
          )}
        </div>
      </div>
      <fieldset className="plain-fieldset stack">
        <legend>Folders</legend>
        {folders.length === 0 && (
          <p className="muted small">No folder: each run works in an empty VM.</p>
        )}
        <ul className="folder-list">
          {folders.map((f) => (
            <li key={f.key} className="folder-row">
              <code className="folder-path" title={f.label}>
                {f.label}
              </code>
              <FolderMode
                label={f.label}
                readOnly={f.readOnly}
                review={f.review}
                onChange={(mode) => {
                  setFoldersTouched(true);
                  setFolders((all) => all.map((x) => (x.key === f.key ? { ...x, ...mode } : x)));
                }}
              />
              <button
                type="button"
                className="quiet"
                aria-label={`Remove folder ${f.label}`}
                onClick={() => {
                  setFoldersTouched(true);
                  setFolders((all) => all.filter((x) => x.key !== f.key));
                }}
              >
                Remove
              </button>
            </li>
          ))}
        </ul>
        <GrantAdder
          host={host}
          label="Automation folder path on this machine"
          onGrant={addGrant}
          onError={setError}
        />
        {folders.some((f) => !f.readOnly && f.review) && (
          <div className="apply-changes">
            <label className="inline">
              <input
                type="checkbox"
                checked={applyAuto}
                onChange={(e) => setApplyAuto(e.target.checked)}
                aria-describedby="apply-changes-hint"
              />{' '}
              Apply changes automatically
            </label>
            <small id="apply-changes-hint" className="field-hint">
              Each run’s changes to reviewed folders reach them as it ends; you can still undo them
              for a while, and conflicts wait for your review.
            </small>
          </div>
        )}
      </fieldset>
      <SecretChooser
        secrets={stored.secrets}
        chosen={secrets}
        onChange={setSecrets}
        className="plain-fieldset stack"
      />
      <div className="row wrap">
        <label className="field grow">
          <span>Extra hosts it may reach</span>
          <input
            type="text"
            value={hosts}
            onChange={(e) => setHosts(e.target.value)}
            placeholder="example.com, *.example.org"
          />
        </label>
        <label className="field">
          <span>If Paddock was not running at a run time</span>
          <select
            value={missed}
            onChange={(e) => setMissed(e.target.value as Automation['missedPolicy'])}
          >
            {(Object.keys(MISSED_LABEL) as (keyof typeof MISSED_LABEL)[]).map((k) => (
              <option key={k} value={k}>
                {MISSED_LABEL[k]}
              </option>
            ))}
          </select>
        </label>
      </div>
      <label className="field spend-limit">
        <span>Spend limit per run (US dollars)</span>
        <input
          type="text"
          inputMode="decimal"
          value={spendLimit}
          onChange={(e) => {
            setSpendLimit(e.target.value);
            setError(null);
          }}
          placeholder="No limit"
          aria-describedby="spend-limit-hint"
        />
        <small id="spend-limit-hint" className="field-hint">
          A run stops once its model calls have cost this much, and the inbox says so. Leave it
          empty for no limit.
        </small>
      </label>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="row">
        <button type="submit" className="primary" disabled={busy || Boolean(preview?.problem)}>
          {editing ? 'Save changes' : 'Create automation'}
        </button>
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
      </div>
    </form>
  );
}
