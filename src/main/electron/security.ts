import { app, session, shell, type WebContents } from 'electron';
import { ELECTRON_ARTIFACT_ORIGIN } from '../../shared/artifact-policy.js';
import { isArtifactShellUrl, isArtifactUrl, isLocalRequest } from './artifact-protocol.js';

/**
 * The CSP for the app's pages: `paddock serve`'s policy minus `frame-ancestors`, which browsers
 * ignore in the `<meta>` tag that carries it for a file:// page. No inline scripts, no remote.
 * Frames: only artifact frames, from Electron's frame scheme or a loopback frame server. The
 * `<meta>` in index.html carries this string in both hosts, so it names both; `paddock serve`'s
 * header narrows it to its own frame port, and here will-frame-navigate admits only the scheme.
 */
export const APP_CSP = `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-src ${ELECTRON_ARTIFACT_ORIGIN} http://127.0.0.1:*`;

/**
 * Applies the window rules of STYLE.md to every web contents the app ever creates: navigation and
 * window.open denied (https links go to the system browser), webviews refused, permissions denied.
 */
export function hardenApp(isAppUrl: (url: string) => boolean): void {
  app.on('web-contents-created', (_e, contents: WebContents) => {
    // SECURITY: the page can never navigate away from the bundled app.
    contents.on('will-navigate', (event, url) => {
      if (!isAppUrl(url)) event.preventDefault();
    });
    contents.on('will-redirect', (event, url) => {
      if (!isAppUrl(url)) event.preventDefault();
    });
    // SECURITY: frames inside the page may not navigate anywhere either, but for a subframe to
    // the artifact frame shell (which renders what the page posts it, offline).
    contents.on('will-frame-navigate', (event) => {
      if (isAppUrl(event.url)) return;
      if (!event.isMainFrame && isArtifactShellUrl(event.url)) return;
      event.preventDefault();
    });
    // SECURITY: no new windows; https links open in the person's browser instead.
    contents.setWindowOpenHandler(({ url }) => {
      if (url.startsWith('https://')) void shell.openExternal(url);
      return { action: 'deny' };
    });
    // SECURITY: no <webview>, whatever the page asks for.
    contents.on('will-attach-webview', (event) => event.preventDefault());
  });

  app.whenReady().then(
    () => {
      const ses = session.defaultSession;
      // SECURITY: camera, microphone, notifications from the page, etc. are all denied by default.
      ses.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
      ses.setPermissionCheckHandler(() => false);
      // SECURITY: the app's pages and artifact frames load only local files and the frame
      // scheme; a request to anywhere else (an artifact frame navigating itself, a nested frame,
      // anything CSP missed) is cancelled before the network is asked.
      ses.webRequest.onBeforeRequest((details, callback) =>
        callback({ cancel: !isLocalRequest(details.url, isAppUrl) }),
      );
      ses.webRequest.onHeadersReceived((details, callback) => {
        // The artifact frame keeps its own, stricter policy (ARTIFACT_CSP, from its handler).
        if (isArtifactUrl(details.url)) return callback({});
        callback({
          responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [APP_CSP] },
        });
      });
    },
    () => undefined,
  );
}
