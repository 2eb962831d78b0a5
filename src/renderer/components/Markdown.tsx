import {
  createContext,
  Fragment,
  memo,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import type { Token, Tokens } from 'marked';
import { copyText } from '../lib/clipboard.js';
import {
  decodeEntities,
  fenceLanguage,
  highlightCode,
  imageView,
  languageOf,
  lexMarkdown,
  safeLinkUrl,
  type HighlightNode,
} from '../lib/markdown.js';
import { ArtifactFrame } from './ArtifactFrame.js';

/**
 * Markdown as React elements: the agent's answers (and file previews) with GFM tables, task
 * lists, highlighted code with a copy button, and Mermaid diagrams in an artifact frame.
 *
 * SECURITY: tokens become elements one by one, so raw HTML in the text is shown as text, never
 * parsed; links are http(s) only, carry no href, and open only after the person saw the full
 * address; images at an address are never fetched (shown as a link to open); only `data:` images
 * are drawn.
 */
export const Markdown = memo(function Markdown(props: {
  text: string;
  /** While true, the last block may be incomplete (a Mermaid block is shown as code until done). */
  streaming?: boolean;
}) {
  const [pending, setPending] = useState<string | null>(null);
  // A streaming answer is not cached: each delta is a new prefix that would push finished
  // answers out of the cache.
  const tokens = useMemo(
    () => lexMarkdown(props.text, { cache: !props.streaming }),
    [props.text, props.streaming],
  );
  const last = tokens.length - 1;
  return (
    <OpenLink.Provider value={setPending}>
      <div className="md" data-testid="markdown">
        {tokens.map((t, i) => (
          <Block key={i} token={t} raw={t.raw} partial={!!props.streaming && i === last} />
        ))}
      </div>
      {pending && <LinkConfirm url={pending} onClose={() => setPending(null)} />}
    </OpenLink.Provider>
  );
});

/** Asks the nearest Markdown to confirm opening a (normalised, http(s)) address. */
const OpenLink = createContext<(url: string) => void>(() => undefined);

/**
 * One top-level block, redrawn only when its source changes: while an answer streams, only the
 * last block is drawn again per frame.
 */
const Block = memo(
  function Block(props: { token: Token; raw: string; partial: boolean }) {
    return <>{block(props.token, props.partial)}</>;
  },
  (a, b) => a.raw === b.raw && a.partial === b.partial,
);

function blocks(tokens: Token[] | undefined): ReactNode {
  return (tokens ?? []).map((t, i) => <Fragment key={i}>{block(t, false)}</Fragment>);
}

function block(t: Token, partial: boolean): ReactNode {
  switch (t.type) {
    case 'space':
    case 'def':
      return null;
    case 'heading': {
      const h = t as Tokens.Heading;
      const Tag = `h${Math.min(Math.max(h.depth, 1), 6)}` as 'h1';
      return <Tag>{inline(h.tokens)}</Tag>;
    }
    case 'paragraph':
      return <p>{inline((t as Tokens.Paragraph).tokens)}</p>;
    case 'text': {
      const x = t as Tokens.Text;
      return x.tokens ? inline(x.tokens) : decodeEntities(x.text);
    }
    case 'blockquote':
      return <blockquote>{blocks((t as Tokens.Blockquote).tokens)}</blockquote>;
    case 'hr':
      return <hr />;
    case 'code': {
      const c = t as Tokens.Code;
      const lang = fenceLanguage(c.lang);
      // A diagram is drawn only once its block is complete; while it streams it is code.
      if (lang === 'mermaid' && !(partial && !/\n? {0,3}(`{3,}|~{3,})\s*$/.test(c.raw)))
        return (
          <div className="md-mermaid" data-testid="md-mermaid">
            <ArtifactFrame kind="mermaid" title="Diagram" content={c.text} />
          </div>
        );
      return <CodeBlock code={c.text} lang={lang} />;
    }
    case 'list':
      return list(t as Tokens.List);
    case 'table':
      return table(t as Tokens.Table);
    case 'html':
      // SECURITY: raw HTML is shown as its source text, never parsed.
      return <p className="md-raw">{(t as Tokens.HTML).text}</p>;
    default:
      return 'tokens' in t && Array.isArray(t.tokens) ? inline(t.tokens as Token[]) : t.raw;
  }
}

function list(l: Tokens.List): ReactNode {
  const items = l.items.map((it, i) => (
    <li key={i} className={it.task ? 'md-task' : undefined}>
      {it.task && (
        <input
          type="checkbox"
          checked={!!it.checked}
          disabled
          aria-label={it.checked ? 'done' : 'not done'}
        />
      )}
      {it.loose
        ? blocks(it.tokens.filter((x) => x.type !== 'checkbox'))
        : it.tokens
            .filter((x) => x.type !== 'checkbox')
            .map((x, j) => <Fragment key={j}>{block(x, false)}</Fragment>)}
    </li>
  ));
  if (l.ordered) {
    const start = typeof l.start === 'number' ? l.start : undefined;
    return <ol start={start}>{items}</ol>;
  }
  return <ul className={l.items.some((i) => i.task) ? 'md-tasks' : undefined}>{items}</ul>;
}

function alignClass(a: 'center' | 'left' | 'right' | null): string | undefined {
  // Classes rather than style attributes: the CSP allows no inline styles.
  return a ? `md-align-${a}` : undefined;
}

function table(t: Tokens.Table): ReactNode {
  return (
    <div className="md-table-wrap">
      <table data-testid="md-table">
        <thead>
          <tr>
            {t.header.map((c, i) => (
              <th key={i} className={alignClass(c.align)}>
                {inline(c.tokens)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {t.rows.map((r, i) => (
            <tr key={i}>
              {r.map((c, j) => (
                <td key={j} className={alignClass(c.align)}>
                  {inline(c.tokens)}
                </td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function inline(tokens: Token[] | undefined): ReactNode {
  return (tokens ?? []).map((t, i) => <Fragment key={i}>{span(t)}</Fragment>);
}

function span(t: Token): ReactNode {
  switch (t.type) {
    case 'text': {
      const x = t as Tokens.Text;
      return x.tokens ? inline(x.tokens) : decodeEntities(x.text);
    }
    case 'escape':
      return (t as Tokens.Escape).text;
    case 'strong':
      return <strong>{inline((t as Tokens.Strong).tokens)}</strong>;
    case 'em':
      return <em>{inline((t as Tokens.Em).tokens)}</em>;
    case 'del':
      return <del>{inline((t as Tokens.Del).tokens)}</del>;
    case 'codespan':
      return <code>{decodeEntities((t as Tokens.Codespan).text)}</code>;
    case 'br':
      return <br />;
    case 'link': {
      const l = t as Tokens.Link;
      const url = safeLinkUrl(l.href);
      if (!url) return inline(l.tokens);
      return <Link url={url}>{inline(l.tokens)}</Link>;
    }
    case 'image': {
      const im = t as Tokens.Image;
      const v = imageView(im.href);
      const alt = decodeEntities(im.text);
      if (v.kind === 'inline') return <img src={v.src} alt={alt} className="md-img" />;
      if (v.kind === 'link')
        return (
          <Link url={v.url} image>
            {alt || 'image'}
          </Link>
        );
      return alt;
    }
    case 'html':
      // SECURITY: inline HTML (<img onerror>, <script>, <a>) is shown as text.
      return (t as Tokens.Tag).text;
    case 'checkbox':
      return null;
    default:
      return 'tokens' in t && Array.isArray(t.tokens) ? inline(t.tokens as Token[]) : t.raw;
  }
}

/**
 * A link, drawn as a button that asks first. It has no href on purpose: a middle click, a
 * modifier click or the browser's "open in new tab" would open an href without the dialog.
 */
// SECURITY: the only way to the address is through LinkConfirm.
function Link(props: { url: string; image?: boolean; children: ReactNode }) {
  const open = useContext(OpenLink);
  return (
    <button
      type="button"
      className={props.image ? 'md-link md-image-link' : 'md-link'}
      data-testid={props.image ? 'md-image-link' : 'md-link'}
      data-url={props.url}
      title={props.url}
      aria-haspopup="dialog"
      onClick={() => open(props.url)}
    >
      {props.image && <span className="md-image-tag">image</span>}
      {props.children}
    </button>
  );
}

/**
 * The small dialog shown before a link opens: the full address, and Open / Cancel. In the web
 * host it opens a new tab; in the desktop app main's window-open handler sends https addresses to
 * the system browser and refuses the rest.
 */
export function LinkConfirm(props: { url: string; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
  }, []);
  let host = '';
  try {
    host = new URL(props.url).host;
  } catch {
    // safeLinkUrl made it; it parses
  }
  return (
    <dialog
      ref={ref}
      className="link-confirm"
      data-testid="link-confirm"
      aria-labelledby="link-confirm-title"
      onClose={props.onClose}
      onCancel={props.onClose}
    >
      <h3 id="link-confirm-title">Open this address?</h3>
      <p className="small muted">It opens outside Paddock, on {host}.</p>
      <p className="link-confirm-url" data-testid="link-confirm-url">
        {props.url}
      </p>
      <div className="link-confirm-actions">
        <button type="button" className="quiet" onClick={() => ref.current?.close()} autoFocus>
          Cancel
        </button>
        <button
          type="button"
          className="primary"
          onClick={() => {
            // SECURITY: no opener and no referrer for the page that opens.
            window.open(props.url, '_blank', 'noopener,noreferrer');
            ref.current?.close();
          }}
        >
          Open
        </button>
      </div>
    </dialog>
  );
}

/** Highlighted code with its language and a copy button. */
export const CodeBlock = memo(function CodeBlock(props: { code: string; lang?: string | null }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const nodes = highlightCode(props.code, props.lang);
  const name = languageOf(props.lang);
  const copy = () => {
    copyText(props.code).then(
      (ok) => setCopied(ok ? 'yes' : 'failed'),
      () => setCopied('failed'),
    );
    setTimeout(() => setCopied(null), 1500);
  };
  return (
    <div className="md-code" data-testid="md-code">
      <div className="md-code-bar">
        <span className="small muted">{props.lang || 'text'}</span>
        <button type="button" className="quiet small" onClick={copy} aria-live="polite">
          {copied === 'yes' ? 'Copied' : copied === 'failed' ? 'Copy failed' : 'Copy'}
        </button>
      </div>
      <pre>
        <code className={name ? `hljs language-${name}` : 'hljs'}>{renderHighlight(nodes)}</code>
      </pre>
    </div>
  );
});

/** highlightCode's nodes as spans with highlight.js's classes (themed in app.css). */
export function renderHighlight(nodes: HighlightNode[]): ReactNode {
  return nodes.map((n, i) =>
    typeof n === 'string' ? (
      n
    ) : (
      <span key={i} className={n.cls}>
        {renderHighlight(n.children)}
      </span>
    ),
  );
}
