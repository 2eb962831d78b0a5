import { createContext, useContext, useEffect, useRef, useState } from 'react';
import {
  ARTIFACT_SANDBOX,
  ARTIFACT_SHELL_PATH,
  FRAME_READY,
  FRAME_RENDER,
  type ArtifactKind,
  type ArtifactRenderMessage,
} from '../../shared/artifact-policy.js';

/**
 * Where this host serves artifact frames from (`app:info`'s artifactOrigin: Electron's scheme, or
 * `paddock serve`'s frame port). App provides it; without it no frame is shown.
 */
export const ArtifactOriginContext = createContext<string | undefined>(undefined);

/** What the iframe needs that React's typings do not list (Chromium: no cookies on its requests). */
const CREDENTIALLESS = { credentialless: '' } as object;

/**
 * Shows one artifact in a sandboxed frame of its own origin, with no network and no way out. The
 * frame is made only once it scrolls into view; it says when it is ready and is then posted the
 * artifact, once. A changed artifact gets a new frame.
 */
export function ArtifactFrame(props: {
  kind: ArtifactKind;
  title: string;
  content: string;
  /** CSS pixels; 400 by default. */
  height?: number;
}) {
  const { kind, title, content } = props;
  const origin = useContext(ArtifactOriginContext);
  const holder = useRef<HTMLDivElement>(null);
  const frame = useRef<HTMLIFrameElement>(null);
  const [visible, setVisible] = useState(false);
  // A new artifact means a new frame: the frame renders the first message it gets and no other.
  const [shown, setShown] = useState({ kind, title, content, generation: 0 });
  if (shown.kind !== kind || shown.title !== title || shown.content !== content) {
    setShown({ kind, title, content, generation: shown.generation + 1 });
  }

  useEffect(() => {
    const el = holder.current;
    if (!el || visible) return;
    const io = new IntersectionObserver(
      (entries) => {
        if (entries.some((e) => e.isIntersecting)) setVisible(true);
      },
      { rootMargin: '200px' },
    );
    io.observe(el);
    return () => io.disconnect();
  }, [visible]);

  useEffect(() => {
    if (!visible || !origin) return;
    let sent = false;
    const onMessage = (e: MessageEvent) => {
      const win = frame.current?.contentWindow;
      // SECURITY: the frame's origin is opaque ("null"), so what pins the sender is the window:
      // only our own iframe's ready message is answered, and only once.
      if (sent || !win || e.source !== win) return;
      const data: unknown = e.data;
      if (
        typeof data !== 'object' ||
        data === null ||
        (data as { type?: unknown }).type !== FRAME_READY
      ) {
        return;
      }
      sent = true;
      const msg: ArtifactRenderMessage = {
        type: FRAME_RENDER,
        kind: shown.kind,
        title: shown.title,
        content: shown.content,
      };
      // An opaque origin can only be addressed as '*'; the source check above chose the window.
      win.postMessage(msg, '*');
    };
    window.addEventListener('message', onMessage);
    return () => window.removeEventListener('message', onMessage);
  }, [visible, origin, shown]);

  const height = props.height ?? 400;
  return (
    <div ref={holder} className="artifact-frame" style={{ height }} data-testid="artifact-frame">
      {!origin ? (
        <p className="muted">This window cannot show artifacts.</p>
      ) : (
        visible && (
          <iframe
            key={shown.generation}
            ref={frame}
            title={shown.title}
            // SECURITY: scripts only, in an opaque origin (see ARTIFACT_SANDBOX).
            sandbox={ARTIFACT_SANDBOX}
            src={`${origin}${ARTIFACT_SHELL_PATH}`}
            referrerPolicy="no-referrer"
            {...CREDENTIALLESS}
            style={{ width: '100%', height: '100%', border: 0 }}
          />
        )
      )}
    </div>
  );
}
