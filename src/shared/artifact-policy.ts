/**
 * What the artifact frame and the page that embeds it agree on: the iframe's sandbox, the Electron
 * frame origin, and the two messages they exchange. One place, so the renderer, the frame
 * document built in main, and the tests cannot drift apart.
 */

/**
 * The iframe `sandbox` attribute of every artifact frame. Scripts run (charts, React), but in an
 * opaque origin: no cookies or storage of any origin, no popups, no top navigation, no forms, no
 * modal dialogs.
 */
// SECURITY: never add allow-same-origin (the frame would share an origin and its storage),
// allow-popups, allow-top-navigation, allow-forms or allow-modals.
export const ARTIFACT_SANDBOX = 'allow-scripts';

/** The Electron app's frame scheme; registered standard and secure before the app is ready. */
export const ARTIFACT_SCHEME = 'paddock-artifact';

/** The Electron app's frame origin (the web host reports its own loopback origin instead). */
export const ELECTRON_ARTIFACT_ORIGIN = `${ARTIFACT_SCHEME}://frame`;

/** The path of the frame shell on the frame origin. */
export const ARTIFACT_SHELL_PATH = '/frame.html';

/** The kinds `create_artifact` stores, each rendered by the frame. */
export const ARTIFACT_KINDS = ['html', 'svg', 'markdown', 'mermaid', 'react', 'code'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** The frame tells its parent it listens (no data in it). */
export const FRAME_READY = 'paddock-artifact:ready';
/** The parent hands the frame the artifact to render, once. */
export const FRAME_RENDER = 'paddock-artifact:render';

/** The one message the parent sends: `{ type: FRAME_RENDER, kind, title, content }`. */
export interface ArtifactRenderMessage {
  type: typeof FRAME_RENDER;
  kind: ArtifactKind;
  title: string;
  content: string;
}
