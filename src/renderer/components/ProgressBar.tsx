/** A determinate progress bar with its label, for long steps such as building the VM image. */
export function ProgressBar(props: { fraction: number; label: string }) {
  const pct = Math.round(Math.min(1, Math.max(0, props.fraction)) * 100);
  return (
    <div className="progress-wrap">
      <div
        className="progress"
        role="progressbar"
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        aria-label={props.label}
      >
        <div className="progress-fill" style={{ width: `${pct}%` }} />
      </div>
      <span className="muted tabular">
        {props.label} · {pct}%
      </span>
    </div>
  );
}
