import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import csharp from 'highlight.js/lib/languages/csharp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import dockerfile from 'highlight.js/lib/languages/dockerfile';
import go from 'highlight.js/lib/languages/go';
import ini from 'highlight.js/lib/languages/ini';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import kotlin from 'highlight.js/lib/languages/kotlin';
import makefile from 'highlight.js/lib/languages/makefile';
import markdown from 'highlight.js/lib/languages/markdown';
import php from 'highlight.js/lib/languages/php';
import plaintext from 'highlight.js/lib/languages/plaintext';
import python from 'highlight.js/lib/languages/python';
import ruby from 'highlight.js/lib/languages/ruby';
import rust from 'highlight.js/lib/languages/rust';
import shell from 'highlight.js/lib/languages/shell';
import sql from 'highlight.js/lib/languages/sql';
import swift from 'highlight.js/lib/languages/swift';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';
import { Lexer, type Token } from 'marked';

/**
 * The pure half of how the agent's answers are shown as Markdown: lexing (cached by text), which
 * link and image addresses may be used and how, and syntax highlighting as a tree of class names
 * and text. No HTML string from the answer ever reaches the page: Markdown.tsx turns these into
 * React elements.
 */

// Only the languages people commonly see in answers, so the bundle stays small.
const LANGUAGES = {
  bash,
  c,
  cpp,
  csharp,
  css,
  diff,
  dockerfile,
  go,
  ini,
  java,
  javascript,
  json,
  kotlin,
  makefile,
  markdown,
  php,
  plaintext,
  python,
  ruby,
  rust,
  shell,
  sql,
  swift,
  typescript,
  xml,
  yaml,
};
for (const [name, lang] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, lang);

/** The lexer's output is kept for the last few texts, so a re-render of the same text is free. */
const CACHE_SIZE = 64;
const cache = new Map<string, Token[]>();

/**
 * GFM tokens of `text` (tables, task lists, strikethrough, autolinks). Cached by text: React
 * redraws the same message many times. With `cache: false` (a streaming answer, where every delta
 * is a new prefix) a cached result is still used, but nothing is added, so finished answers stay.
 */
export function lexMarkdown(text: string, opts: { cache?: boolean } = {}): Token[] {
  const have = cache.get(text);
  if (have) return have;
  const tokens = new Lexer({ gfm: true, breaks: false }).lex(text);
  if (opts.cache === false) return tokens;
  cache.set(text, tokens);
  if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value!);
  return tokens;
}

/**
 * The address a link may open, normalised the way a browser would go there (so the person sees
 * what will really open: punycode host, resolved escapes), or null when it is not an http(s)
 * address. `javascript:`, `data:`, `file:`, `vbscript:` and relative links are never links.
 */
// SECURITY: the allowlist of link schemes; anything else is shown as text.
export function safeLinkUrl(href: string | null | undefined): string | null {
  if (!href) return null;
  let u: URL;
  try {
    u = new URL(href.trim());
  } catch {
    return null;
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
  return u.href;
}

/** Image types shown inline when they come as a `data:` address (scripts never run in <img>). */
const INLINE_IMAGE =
  /^data:image\/(png|jpeg|gif|webp|svg\+xml)(;[a-z0-9=.+-]+)*;base64,[a-z0-9+/=\s]+$/i;

/** How a Markdown image is shown. */
export type ImageView =
  { kind: 'inline'; src: string } | { kind: 'link'; url: string } | { kind: 'text' };

/**
 * Only `data:` images are drawn; an image at an address is shown as a link the person may choose
 * to open, because loading it would tell that server the answer was read (and from where).
 */
// SECURITY: no remote image is ever fetched by the page.
export function imageView(href: string | null | undefined): ImageView {
  const h = (href ?? '').trim();
  if (INLINE_IMAGE.test(h)) return { kind: 'inline', src: h.replace(/\s+/g, '') };
  const url = safeLinkUrl(h);
  return url ? { kind: 'link', url } : { kind: 'text' };
}

const ENTITIES: Record<string, string> = {
  amp: '&',
  lt: '<',
  gt: '>',
  quot: '"',
  apos: "'",
  nbsp: '\u00a0',
  copy: '©',
  reg: '®',
  hellip: '…',
  mdash: '—',
  ndash: '–',
};

/** Text with the common HTML entities decoded (marked leaves them for an HTML renderer). */
export function decodeEntities(s: string): string {
  if (!s.includes('&')) return s;
  return s.replace(/&(#x[0-9a-f]{1,6}|#[0-9]{1,7}|[a-z]{2,8});/gi, (m, e: string) => {
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return n > 0 && n <= 0x10ffff ? String.fromCodePoint(n) : m;
    }
    return ENTITIES[e.toLowerCase()] ?? m;
  });
}

/** A piece of highlighted code: text, or a span with highlight.js's class and its children. */
export type HighlightNode = string | { cls: string; children: HighlightNode[] };

/** Longer code is shown plain: highlighting it would hold the page up. */
export const MAX_HIGHLIGHT_CHARS = 200_000;

const ALIASES: Record<string, string> = {
  sh: 'bash',
  zsh: 'bash',
  console: 'shell',
  js: 'javascript',
  jsx: 'javascript',
  mjs: 'javascript',
  cjs: 'javascript',
  ts: 'typescript',
  tsx: 'typescript',
  py: 'python',
  rb: 'ruby',
  rs: 'rust',
  html: 'xml',
  svg: 'xml',
  md: 'markdown',
  yml: 'yaml',
  toml: 'ini',
  'c++': 'cpp',
  cs: 'csharp',
  kt: 'kotlin',
  text: 'plaintext',
  txt: 'plaintext',
};

/** The language word of a fence's info string, lower-cased: `TS title="x"` → `ts`; '' if none. */
export function fenceLanguage(lang: string | null | undefined): string {
  return (lang ?? '').trim().split(/\s+/)[0]!.toLowerCase();
}

/** The registered highlight.js language for a fence's info string or a file's language, if any. */
export function languageOf(lang: string | null | undefined): string | null {
  const l = fenceLanguage(lang);
  if (!l) return null;
  const name = ALIASES[l] ?? l;
  return hljs.getLanguage(name) ? name : null;
}

/**
 * Highlights `code` as a tree of class names and text. highlight.js escapes every character of
 * the code and emits only `<span class="…">`, so its output is read back with a tiny parser
 * instead of being handed to innerHTML; anything unexpected falls back to the plain code.
 */
export function highlightCode(code: string, lang: string | null | undefined): HighlightNode[] {
  const name = languageOf(lang);
  if (!name || name === 'plaintext' || code.length > MAX_HIGHLIGHT_CHARS) return [code];
  let html: string;
  try {
    html = hljs.highlight(code, { language: name, ignoreIllegals: true }).value;
  } catch {
    return [code];
  }
  return parseHighlight(html) ?? [code];
}

/** Reads highlight.js's HTML back into nodes; null when it holds anything but spans and text. */
export function parseHighlight(html: string): HighlightNode[] | null {
  const root: HighlightNode[] = [];
  const stack: HighlightNode[][] = [root];
  const re = /<span class="([\w\s-]*)">|<\/span>|[^<]+/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < html.length && (m = re.exec(html))) {
    at = re.lastIndex;
    const top = stack[stack.length - 1]!;
    if (m[1] !== undefined) {
      const node = { cls: m[1], children: [] as HighlightNode[] };
      top.push(node);
      stack.push(node.children);
    } else if (m[0] === '</span>') {
      if (stack.length === 1) return null;
      stack.pop();
    } else {
      top.push(decodeEntities(m[0]));
    }
  }
  return at === html.length && stack.length === 1 ? root : null;
}
