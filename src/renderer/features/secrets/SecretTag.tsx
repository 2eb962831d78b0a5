/**
 * A secret by name, with a key, wherever one is shown (a task's network list, an automation):
 * names only, never a value.
 */
export function SecretTag(props: { name: string; title?: string }) {
  return (
    <span className="chip small secret-tag" title={props.title} data-testid="secret-tag">
      <svg className="key-icon" viewBox="0 0 16 16" width="11" height="11" aria-hidden="true">
        <circle cx="5" cy="8" r="3" fill="none" stroke="currentColor" strokeWidth="1.8" />
        <path d="M8 8h7M12.5 8v3M15 8v2" fill="none" stroke="currentColor" strokeWidth="1.8" />
      </svg>
      <span className="sr-only">secret </span>
      {props.name}
    </span>
  );
}
