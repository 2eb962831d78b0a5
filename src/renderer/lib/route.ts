/** The pages of the app, addressed by the URL hash so it works from file:// and http:// alike. */
export type Route =
  | { page: 'new' }
  /** `review`: open the review of its staged changes (an inbox item's "Review changes"). */
  | { page: 'task'; id: string; review?: boolean }
  | { page: 'settings' }
  | { page: 'automations' }
  | { page: 'inbox' };

/** Reads a hash such as `#/task/ses_x` or `#/task/ses_x/review`; anything unknown is new-task. */
export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  switch (parts[0]) {
    case 'task':
      if (!parts[1]) return { page: 'new' };
      return parts[2] === 'review'
        ? { page: 'task', id: decodeURIComponent(parts[1]), review: true }
        : { page: 'task', id: decodeURIComponent(parts[1]) };
    case 'settings':
      return { page: 'settings' };
    case 'automations':
      return { page: 'automations' };
    case 'inbox':
      return { page: 'inbox' };
    default:
      return { page: 'new' };
  }
}

/** The hash of a route. */
export function hrefOf(route: Route): string {
  if (route.page !== 'task') return `#/${route.page}`;
  return `#/task/${encodeURIComponent(route.id)}${route.review ? '/review' : ''}`;
}
