import type { SecretInfo } from '../../../shared/secrets-contract.js';
import { hrefOf } from '../../lib/route.js';

/**
 * Which stored secrets a task or an automation may use, as checkboxes by name with the variable
 * the VM sees. With none stored it is only a hint that Settings is where they are added; a name
 * chosen earlier that is no longer stored stays listed, so it can be unchosen.
 */
export function SecretChooser(props: {
  /** Null while loading or when the list could not be read: nothing is shown. */
  secrets: SecretInfo[] | null;
  chosen: readonly string[];
  onChange(names: string[]): void;
  className: string;
}) {
  const { secrets, chosen, onChange, className } = props;
  if (secrets === null) return null;
  const missing = chosen.filter((n) => !secrets.some((s) => s.name === n));
  if (secrets.length === 0 && missing.length === 0)
    return (
      <p className="muted small" data-testid="secrets-hint">
        To let the agent use a token without the VM seeing it, add a secret in{' '}
        <a href={hrefOf({ page: 'settings' })}>Settings</a>.
      </p>
    );
  const toggle = (name: string, on: boolean) =>
    onChange(on ? [...chosen, name] : chosen.filter((n) => n !== name));
  return (
    <fieldset className={`${className} secret-chooser`} data-testid="secret-chooser">
      <legend>Secrets</legend>
      <p className="muted small">
        The VM sees a placeholder in the variable; Paddock swaps in the value for the secret’s hosts
        only, and allows those hosts.
      </p>
      {secrets.map((s) => (
        <label key={s.name} className="inline" title={`Sent only to ${s.hosts.join(', ')}`}>
          <input
            type="checkbox"
            checked={chosen.includes(s.name)}
            onChange={(e) => toggle(s.name, e.target.checked)}
          />{' '}
          {s.name} <code>{s.envName}</code>
        </label>
      ))}
      {missing.map((name) => (
        <label key={name} className="inline">
          <input type="checkbox" checked onChange={() => toggle(name, false)} /> {name}{' '}
          <span className="error small">no longer stored</span>
        </label>
      ))}
    </fieldset>
  );
}
