/**
 * How one granted folder is shared, as the new-task page and the automation form ask it:
 * read-only or not, and for a read-write folder whether the agent's changes wait for review
 * (recommended) or are written straight to it.
 */
export function FolderMode(props: {
  /** The folder as shown, for the controls' accessible names. */
  label: string;
  readOnly: boolean;
  review: boolean;
  onChange(mode: { readOnly: boolean; review: boolean }): void;
}) {
  const { label, readOnly, review, onChange } = props;
  return (
    <span className="row folder-mode">
      <label className="inline">
        <input
          type="checkbox"
          checked={readOnly}
          onChange={(e) => onChange({ readOnly: e.target.checked, review })}
        />{' '}
        read-only
      </label>
      {!readOnly && (
        <select
          value={review ? 'review' : 'direct'}
          aria-label={`How changes reach ${label}`}
          data-testid="folder-mode"
          title={
            review
              ? 'The agent’s changes are staged; you review them before they reach the folder'
              : 'The agent writes straight to the folder'
          }
          onChange={(e) => onChange({ readOnly, review: e.target.value === 'review' })}
        >
          <option value="review">Review changes (recommended)</option>
          <option value="direct">Write directly</option>
        </select>
      )}
    </span>
  );
}
