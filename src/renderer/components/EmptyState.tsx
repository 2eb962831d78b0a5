import type { ReactNode } from 'react';

/** The calm message a page shows when it has nothing yet, with what to do about it. */
export function EmptyState(props: {
  title: string;
  children: ReactNode;
  action?: ReactNode;
  testId?: string;
}) {
  return (
    <div className="empty" data-testid={props.testId}>
      <h2>{props.title}</h2>
      <div className="muted">{props.children}</div>
      {props.action && <div className="empty-action">{props.action}</div>}
    </div>
  );
}
