import { app, protocol, session, type WebContents } from 'electron';
import {
  ARTIFACT_SCHEME,
  ARTIFACT_SHELL_PATH,
  ELECTRON_ARTIFACT_ORIGIN,
} from '../../shared/artifact-policy.js';
import { artifactFrameFile } from '../core/artifact-frame.js';

/**
 * The artifact frame's origin in the Electron app: `paddock-artifact://frame`, a scheme of its
 * own, so a frame shares no origin, storage or cookie with the app page (a file:// page) and
 * reaches nothing but the shell and the bundled libraries.
 */

/** A session for any web contents that shows artifacts alone (a preview window, an export). */
export const ARTIFACT_PARTITION = 'paddock-artifacts';

/** Whether `url` is the frame shell, the one page a subframe of the app may load. */
export function isArtifactShellUrl(url: string): boolean {
  return url === `${ELECTRON_ARTIFACT_ORIGIN}${ARTIFACT_SHELL_PATH}`;
}

/** Whether `url` is anything on the frame scheme (its responses keep ARTIFACT_CSP). */
export function isArtifactUrl(url: string): boolean {
  return url.startsWith(`${ARTIFACT_SCHEME}:`);
}

/**
 * Whether a web contents of the app may make a request for `url`: the app's own files, the frame
 * scheme, and URLs that never reach the network (data:, blob:, about:, devtools:). Electron 39's
 * Chromium predates Connection-Allowlist, so this is the frame's wall before a socket there.
 */
export function isLocalRequest(url: string, isAppUrl: (url: string) => boolean): boolean {
  if (isAppUrl(url) || isArtifactUrl(url)) return true;
  return /^(data|blob|about|devtools):/i.test(url);
}

/**
 * Registers the scheme as standard (URLs with a host and paths, relative /lib/ resolves) and
 * secure; must run before the app is ready. No other privilege: not fetch, not CORS, not
 * service workers, and never bypassCSP.
 */
export function registerArtifactScheme(): void {
  protocol.registerSchemesAsPrivileged([
    { scheme: ARTIFACT_SCHEME, privileges: { standard: true, secure: true } },
  ]);
}

/** The answer to one request on the frame scheme: the shell, a library, or a 404. */
export function artifactProtocolResponse(request: { url: string; method: string }): Response {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return new Response('Bad request.\n', { status: 400 });
  }
  // SECURITY: one host, GET only; everything else is refused.
  // (URL.origin is "null" for a scheme Node's URL does not know, so compare the parts.)
  if (`${url.protocol}//${url.host}` !== ELECTRON_ARTIFACT_ORIGIN) {
    return new Response('Not found.\n', { status: 404 });
  }
  if (request.method !== 'GET') return new Response(null, { status: 405 });
  const file = artifactFrameFile(url.pathname);
  if (!file) return new Response('Not found.\n', { status: 404 });
  return new Response(file.body, { status: 200, headers: file.headers });
}

/**
 * Once the app is ready: serves the frame scheme, and takes WebRTC's way around the proxy-less,
 * network-less frame away from every web contents.
 *
 * An iframe loads through the session of the page that embeds it, so the scheme is served on the
 * default session (the app window's, whose permissions hardenApp already denies) and on the
 * `paddock-artifacts` partition, for web contents that show an artifact on their own; that
 * session denies every permission request and check.
 */
export function serveArtifactFrames(): void {
  const handler = (request: Request) => artifactProtocolResponse(request);
  session.defaultSession.protocol.handle(ARTIFACT_SCHEME, handler);
  const frames = session.fromPartition(ARTIFACT_PARTITION);
  frames.protocol.handle(ARTIFACT_SCHEME, handler);
  // SECURITY: no camera, microphone, notifications, clipboard… for an artifact.
  frames.setPermissionRequestHandler((_wc, _permission, callback) => callback(false));
  frames.setPermissionCheckHandler(() => false);
  // SECURITY: a web contents showing an artifact alone reaches only the frame scheme.
  frames.webRequest.onBeforeRequest((details, callback) =>
    callback({ cancel: !isLocalRequest(details.url, () => false) }),
  );
  app.on('web-contents-created', (_e, contents: WebContents) => hostsArtifacts(contents));
}

/**
 * For a web contents that may host an artifact frame: WebRTC may not send UDP except through a
 * proxy, and there is none, so an RTCPeerConnection cannot reach a STUN or TURN server. The
 * frame shell also removes RTCPeerConnection; this is the wall behind it.
 */
export function hostsArtifacts(contents: WebContents): void {
  // SECURITY: WebRTC is the one network path CSP does not close.
  contents.setWebRTCIPHandlingPolicy('disable_non_proxied_udp');
}
