/** Which rows of a fixed-row-height list are drawn, and where. */
export interface VirtualWindow {
  /** First row drawn (inclusive). */
  start: number;
  /** Last row drawn (exclusive). */
  end: number;
  /** Offset of row `start` from the top of the content, in px. */
  offsetTop: number;
  /** Height of all rows together, in px (the scrollable height). */
  totalHeight: number;
}

/**
 * The windowing math of VirtualList: only the rows in view, plus `overscan` either side, are
 * drawn, so a 100,000-line output costs the same to scroll as a 50-line one.
 */
export function windowFor(opts: {
  scrollTop: number;
  viewportHeight: number;
  rowHeight: number;
  count: number;
  overscan?: number;
}): VirtualWindow {
  const { rowHeight, count } = opts;
  const overscan = opts.overscan ?? 8;
  const totalHeight = Math.max(0, count * rowHeight);
  if (count <= 0 || rowHeight <= 0) return { start: 0, end: 0, offsetTop: 0, totalHeight: 0 };
  const maxTop = Math.max(0, totalHeight - opts.viewportHeight);
  const top = Math.min(Math.max(0, opts.scrollTop), maxTop);
  const first = Math.floor(top / rowHeight);
  const last = Math.ceil((top + Math.max(0, opts.viewportHeight)) / rowHeight);
  const start = Math.max(0, first - overscan);
  const end = Math.min(count, Math.max(last, first + 1) + overscan);
  return { start, end, offsetTop: start * rowHeight, totalHeight };
}

/** Whether a scrolled box is at (or within `slack` px of) its bottom: then it follows new rows. */
export function isAtBottom(
  scrollTop: number,
  viewportHeight: number,
  scrollHeight: number,
  slack = 4,
): boolean {
  return scrollTop + viewportHeight >= scrollHeight - slack;
}

/** The height a list box takes: its rows, up to `maxHeight`, at least one row. */
export function boxHeight(count: number, rowHeight: number, maxHeight: number): number {
  return Math.min(maxHeight, Math.max(1, count) * rowHeight);
}
