import { useLayoutEffect, useRef, useState, type ReactNode } from 'react';
import { boxHeight, isAtBottom, windowFor } from './virtual-window.js';

/** Props of VirtualList. */
export interface VirtualListProps {
  count: number;
  rowHeight: number;
  maxHeight: number;
  renderRow: (index: number) => ReactNode;
  /** Keep the newest rows in view while the person has not scrolled up (live output). */
  follow?: boolean;
  /** Changes whenever rows change, so a follow scroll happens even when count does not. */
  version?: number;
  label: string;
  className?: string;
}

/**
 * A list of fixed-height rows that draws only the rows in view, so a 100,000-line output scrolls
 * as smoothly as a short one. The box is focusable, so it scrolls from the keyboard too.
 */
export function VirtualList(props: VirtualListProps) {
  const { count, rowHeight, maxHeight, renderRow, follow, version, label, className } = props;
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const stuck = useRef(true);
  const frame = useRef(0);
  const height = boxHeight(count, rowHeight, maxHeight);
  const win = windowFor({ scrollTop, viewportHeight: height, rowHeight, count });

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || !follow || !stuck.current) return;
    el.scrollTop = el.scrollHeight;
    setScrollTop(el.scrollTop);
  }, [count, version, follow]);

  useLayoutEffect(() => () => cancelAnimationFrame(frame.current), []);

  const onScroll = () => {
    const el = ref.current;
    if (!el) return;
    stuck.current = isAtBottom(el.scrollTop, el.clientHeight, el.scrollHeight, rowHeight);
    cancelAnimationFrame(frame.current);
    frame.current = requestAnimationFrame(() => setScrollTop(el.scrollTop));
  };

  const rows: ReactNode[] = [];
  for (let i = win.start; i < win.end; i++) {
    rows.push(
      <div key={i} className="vrow" style={{ height: rowHeight }}>
        {renderRow(i)}
      </div>,
    );
  }
  return (
    <div
      ref={ref}
      className={`vlist ${className ?? ''}`}
      style={{ height }}
      onScroll={onScroll}
      tabIndex={0}
      role="log"
      aria-label={label}
      data-rows={count}
    >
      <div className="vspacer" style={{ height: win.totalHeight }}>
        <div className="vwindow" style={{ transform: `translateY(${win.offsetTop}px)` }}>
          {rows}
        </div>
      </div>
    </div>
  );
}
