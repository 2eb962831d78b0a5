/** The pages of the app, addressed by the URL hash so it works from file:// and http:// alike. */
export type Route =
  | { page: 'new' }
  | { page: 'task'; id: string }
  | { page: 'settings' }
  | { page: 'automations' }
  | { page: 'inbox' };

/** Reads a hash such as `#/task/ses_x`; anything unknown is the new-task page. */
export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, '').split('/').filter(Boolean);
  switch (parts[0]) {
    case 'task':
      return parts[1] ? { page: 'task', id: decodeURIComponent(parts[1]) } : { page: 'new' };
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
  return route.page === 'task' ? `#/task/${encodeURIComponent(route.id)}` : `#/${route.page}`;
}
