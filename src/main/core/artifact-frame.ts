import fs from 'node:fs';
import path from 'node:path';
import {
  ARTIFACT_KINDS,
  ARTIFACT_SANDBOX,
  ARTIFACT_SHELL_PATH,
  FRAME_READY,
  FRAME_RENDER,
  type ArtifactKind,
} from '../../shared/artifact-policy.js';
import { packageRoot } from '../platform/app-paths.js';

/**
 * The artifact frame: the documents that render what the agent made (HTML, SVG, Markdown,
 * Mermaid, React, code) with no network and no way out. Two uses, one rendering script:
 *
 * - the frame shell (`artifactShell()`), served on an origin of its own that holds no app data
 *   (`paddock serve`'s frame server, Electron's `paddock-artifact://`); the embedding page posts
 *   it `{ kind, title, content }` and it loads the libraries it needs from `/lib/<name>`;
 * - a self-contained document (`artifactDocument(a, { inline: true })`), every library inlined and
 *   the CSP in a `<meta>`, which is what `paddock artifacts export` writes.
 */

export { ARTIFACT_SANDBOX };

/**
 * The policy of every artifact document, sent as a header by the frame servers and carried in a
 * `<meta>` by every document (so an exported file keeps it wherever it is opened).
 */
export const ARTIFACT_CSP = [
  // Nothing is allowed unless a directive below says so: this covers connect-src (no fetch, XHR,
  // WebSocket, EventSource, sendBeacon), media-src, object-src, manifest-src and the rest.
  "default-src 'none'",
  // 'self' is the frame origin's /lib/* (the bundled libraries; the frame server serves nothing
  // else). Inline: the frame's own script and the artifact's code. Eval: sucrase's output for a
  // React artifact is run with new Function. All of it inside the sandboxed, offline frame.
  "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
  // The bundled stylesheets, plus the artifact's own and the ones KaTeX and Mermaid inject.
  "style-src 'self' 'unsafe-inline'",
  // Images only from the document itself: data: (SVG artifacts, inline images) and blob:.
  'img-src data: blob:',
  // KaTeX's fonts are inlined as data: URLs; no remote or local font files.
  'font-src data:',
  // No workers: they would be a second realm the frame's guards do not reach.
  "worker-src 'none'",
  // No nested frames: the same reason, and no way to load another page.
  "frame-src 'none'",
  // A form can submit nowhere (the sandbox also withholds allow-forms).
  "form-action 'none'",
  // No <base> that would re-point relative URLs.
  "base-uri 'none'",
].join('; ');

/**
 * The frame document's Connection-Allowlist (Chromium 152 and later): it may connect to its own
 * origin (the shell and /lib/*) and nowhere else. CSP refuses a frame navigating itself
 * (`location.href = …`, a meta refresh) or a nested frame only after Chromium's preconnect has
 * opened a TCP connection to the target (and resolved its name: a covert channel), measured in
 * test/e2e/artifact-frame.test.ts; the allowlist is checked before any connection, for
 * navigations, preconnects, DNS prefetch and WebRTC alike. Only a header can carry it, so the
 * inline export (opened as a top-level page the person chose) has CSP alone.
 */
// SECURITY: the one wall that holds before a socket is opened.
export const ARTIFACT_CONNECTION_ALLOWLIST = '(response-origin)';

/** A library the frame may load: where it comes from, and under which licence it ships. */
export interface ArtifactLibrary {
  /** The npm package it comes from. */
  package: string;
  /** The file(s) in that package (for a built one: the entries the bundle is made from). */
  files: string[];
  licence: string;
  /**
   * Made by scripts/build.mjs into dist/artifact-lib/<name> (the package ships only CommonJS);
   * otherwise read from the package at call time.
   */
  built?: true;
}

/**
 * Every library an artifact frame can load, by the name it is served under (`/lib/<name>`).
 * A React artifact may `import` from react, react-dom, chart.js (and chart.js/auto) and papaparse.
 */
export const ARTIFACT_LIBRARIES = {
  'marked.js': { package: 'marked', files: ['lib/marked.umd.js'], licence: 'MIT' },
  'highlight.js': {
    package: 'highlight.js',
    files: ['lib/common.js'],
    licence: 'BSD-3-Clause',
    built: true,
  },
  'highlight.css': {
    package: 'highlight.js',
    files: ['styles/github.css', 'styles/github-dark.css'],
    licence: 'BSD-3-Clause',
  },
  'katex.js': { package: 'katex', files: ['dist/katex.min.js'], licence: 'MIT' },
  'katex.css': { package: 'katex', files: ['dist/katex.min.css'], licence: 'MIT' },
  'mermaid.js': { package: 'mermaid', files: ['dist/mermaid.min.js'], licence: 'MIT' },
  'sucrase.js': { package: 'sucrase', files: ['dist/index.js'], licence: 'MIT', built: true },
  'react.js': {
    package: 'react',
    // With react-dom's client, from its own package (MIT too), in the same bundle.
    files: ['index.js', '../react-dom/client.js'],
    licence: 'MIT',
    built: true,
  },
  'chart.js': { package: 'chart.js', files: ['dist/chart.umd.min.js'], licence: 'MIT' },
  'papaparse.js': { package: 'papaparse', files: ['papaparse.min.js'], licence: 'MIT' },
} satisfies Record<string, ArtifactLibrary>;

export type ArtifactLibraryName = keyof typeof ARTIFACT_LIBRARIES;

/**
 * Which libraries each kind needs: always, and when the content matches a pattern. Data, not code,
 * so the frame (which loads on demand) and the inline export (which embeds) read the same table.
 */
const KIND_LIBRARIES: Record<
  ArtifactKind,
  { always: ArtifactLibraryName[]; when?: Partial<Record<ArtifactLibraryName, string>> }
> = {
  html: { always: [] },
  svg: { always: [] },
  markdown: {
    always: ['marked.js', 'highlight.js', 'highlight.css'],
    when: { 'katex.js': '\\$', 'katex.css': '\\$', 'mermaid.js': '```\\s*mermaid' },
  },
  mermaid: { always: ['mermaid.js'] },
  react: {
    always: ['sucrase.js', 'react.js'],
    when: { 'chart.js': '[\'"]chart\\.js', 'papaparse.js': '[\'"]papaparse[\'"]' },
  },
  code: { always: ['highlight.js', 'highlight.css'] },
};

/** The libraries an artifact needs, in load order. */
export function librariesFor(kind: string, content: string): ArtifactLibraryName[] {
  const table = KIND_LIBRARIES[kind as ArtifactKind];
  if (!table) return [];
  const when = Object.entries(table.when ?? {}) as [ArtifactLibraryName, string][];
  return [
    ...table.always,
    ...when.filter(([, re]) => new RegExp(re).test(content)).map(([n]) => n),
  ];
}

const libraryCache = new Map<string, string>();

/**
 * The source of one library, read from node_modules (or dist/artifact-lib for the built ones) on
 * first use and cached. Throws for a name that is not in ARTIFACT_LIBRARIES.
 */
export function readArtifactLibrary(name: string): string {
  const cached = libraryCache.get(name);
  if (cached !== undefined) return cached;
  if (!Object.hasOwn(ARTIFACT_LIBRARIES, name)) {
    throw new Error(`${name} is not an artifact library.`);
  }
  const lib: ArtifactLibrary = ARTIFACT_LIBRARIES[name as ArtifactLibraryName];
  const root = packageRoot();
  let text: string;
  if (lib.built) {
    const file = path.join(root, 'dist', 'artifact-lib', name);
    if (!fs.existsSync(file)) {
      throw new Error(`${name} for artifacts is not built yet: run \`npm run build\` first.`);
    }
    text = fs.readFileSync(file, 'utf8');
  } else {
    const dir = packageDir(root, lib.package);
    const [first, second] = lib.files.map((f) => fs.readFileSync(path.join(dir, f), 'utf8'));
    if (name === 'highlight.css') {
      text = `${first}\n@media (prefers-color-scheme: dark) {\n${second}\n}\n`;
    } else if (name === 'katex.css') {
      text = inlineKatexFonts(first!, path.join(dir, 'dist'));
    } else {
      text = first!;
    }
  }
  libraryCache.set(name, text);
  return text;
}

/** node_modules/<pkg> as Node would find it from the package root (hoisted or not). */
function packageDir(root: string, pkg: string): string {
  for (let dir = root; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', pkg);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`The package ${pkg} is not installed.`);
  }
}

/**
 * KaTeX's stylesheet with each @font-face reduced to its woff2 file as a data: URL (font-src
 * allows only data:), so formulas render with their fonts offline and from an opaque origin.
 */
function inlineKatexFonts(css: string, dir: string): string {
  return css.replace(/src:\s*url\((fonts\/[\w-]+\.woff2)\)[^;}]*/g, (_m, file: string) => {
    const data = fs.readFileSync(path.join(dir, file)).toString('base64');
    return `src:url(data:font/woff2;base64,${data}) format("woff2")`;
  });
}

/**
 * Runs first in every frame document, before any library or artifact code. Chromium has no CSP
 * directive for WebRTC, and an RTCPeerConnection given a STUN or TURN server sends UDP (or TCP,
 * and a DNS lookup for its name) past connect-src — measured: 4 STUN datagrams to a loopback
 * listener under ARTIFACT_CSP alone (test/e2e/artifact-frame.test.ts). So the constructors are
 * taken away, for good (non-configurable). A nested frame (its initial about:blank is
 * same-origin with the artifact) would bring a fresh realm: every DOM insertion, document.write,
 * load and mutation sweeps the frame tree and takes them away there too. This is the first wall;
 * Electron's IP handling policy (no UDP but through a proxy) is the second.
 */
// SECURITY: WebRTC is the one network path CSP does not close in Chromium.
const GUARD_SCRIPT = `(function () {
  var names = ['RTCPeerConnection', 'webkitRTCPeerConnection', 'RTCIceTransport', 'RTCDataChannel',
    'RTCRtpSender', 'RTCRtpReceiver', 'RTCRtpTransceiver', 'RTCSessionDescription', 'RTCIceCandidate'];
  function neuter(w) {
    for (var i = 0; i < names.length; i++) {
      try {
        Object.defineProperty(w, names[i], { value: undefined, writable: false, configurable: false });
      } catch (e) {}
    }
  }
  function sweep(w, depth) {
    if (depth > 8) return;
    try {
      for (var i = 0; i < w.length; i++) {
        neuter(w[i]);
        sweep(w[i], depth + 1);
      }
    } catch (e) {}
  }
  function sweepAll() { sweep(window, 0); }
  function after(proto, name) {
    var d = proto && Object.getOwnPropertyDescriptor(proto, name);
    if (!d) return;
    if (typeof d.value === 'function') {
      var f = d.value;
      d.value = function () { try { return f.apply(this, arguments); } finally { sweepAll(); } };
    } else if (d.set) {
      var set = d.set;
      d.set = function (v) { try { set.call(this, v); } finally { sweepAll(); } };
    } else {
      return;
    }
    try { Object.defineProperty(proto, name, d); } catch (e) {}
  }
  neuter(window);
  ['appendChild', 'insertBefore', 'replaceChild'].forEach(function (n) { after(Node.prototype, n); });
  ['append', 'prepend', 'after', 'before', 'replaceWith', 'replaceChildren', 'insertAdjacentElement',
    'insertAdjacentHTML', 'setHTMLUnsafe', 'innerHTML', 'outerHTML'].forEach(function (n) {
    after(Element.prototype, n);
  });
  ['append', 'prepend', 'replaceChildren'].forEach(function (n) {
    after(Document.prototype, n);
    after(DocumentFragment.prototype, n);
  });
  after(ShadowRoot.prototype, 'innerHTML');
  after(ShadowRoot.prototype, 'setHTMLUnsafe');
  after(Range.prototype, 'insertNode');
  after(HTMLIFrameElement.prototype, 'srcdoc');
  after(HTMLIFrameElement.prototype, 'src');
  ['contentWindow', 'contentDocument'].forEach(function (n) {
    var d = Object.getOwnPropertyDescriptor(HTMLIFrameElement.prototype, n);
    if (!d || !d.get) return;
    var get = d.get;
    d.get = function () { sweepAll(); return get.call(this); };
    try { Object.defineProperty(HTMLIFrameElement.prototype, n, d); } catch (e) {}
  });
  after(Document.prototype, 'write');
  after(Document.prototype, 'writeln');
  window.addEventListener('load', sweepAll, true);
  try {
    new MutationObserver(sweepAll).observe(document, { childList: true, subtree: true });
  } catch (e) {}
})();`;

/**
 * The rendering script, shared by the served shell and the inline export. It is called with a
 * config: `{ libBase, inlined, artifact? }`. Without an artifact it waits for the one message from
 * its parent (`FRAME_RENDER`) and says `FRAME_READY` first.
 */
const FRAME_SCRIPT = String.raw`function (config, KIND_LIBRARIES, KINDS, READY, RENDER, GUARD) {
  'use strict';
  var MAX_CONTENT = 20 * 1024 * 1024;
  var loaded = {};
  (config.inlined || []).forEach(function (n) { loaded[n] = Promise.resolve(); });
  var root = document.getElementById('root');

  function librariesFor(kind, content) {
    var t = KIND_LIBRARIES[kind] || { always: [] };
    var out = t.always.slice();
    Object.keys(t.when || {}).forEach(function (n) {
      if (new RegExp(t.when[n]).test(content)) out.push(n);
    });
    return out;
  }

  function load(name) {
    if (loaded[name]) return loaded[name];
    if (typeof config.libBase !== 'string') {
      return Promise.reject(new Error(name + ' is not part of this document.'));
    }
    loaded[name] = new Promise(function (resolve, reject) {
      var url = config.libBase + '/lib/' + name;
      var el;
      if (/\.css$/.test(name)) {
        el = document.createElement('link');
        el.rel = 'stylesheet';
        el.href = url;
      } else {
        el = document.createElement('script');
        el.src = url;
        el.async = false;
      }
      el.onload = function () { resolve(); };
      el.onerror = function () { reject(new Error('Could not load ' + name + '.')); };
      document.head.appendChild(el);
    });
    return loaded[name];
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function highlight(code, lang) {
    if (lang && hljs.getLanguage(lang)) {
      return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
    }
    return hljs.highlightAuto(code).value;
  }

  function dark() {
    return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches;
  }

  function runMermaid(nodes) {
    mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: dark() ? 'dark' : 'default' });
    return mermaid.run({ nodes: nodes });
  }

  function math(display) {
    return function (t) {
      var html = katex.renderToString(t.text, { displayMode: display, throwOnError: false });
      return display ? '<div class="math">' + html + '</div>' : html;
    };
  }

  var renderers = {
    svg: function (a) {
      var img = document.createElement('img');
      img.alt = a.title;
      img.src = 'data:image/svg+xml;charset=utf-8,' + encodeURIComponent(a.content);
      root.appendChild(img);
    },
    code: function (a) {
      var ext = (/\.([\w+#-]+)$/.exec(a.title) || [])[1];
      var code = document.createElement('code');
      code.className = 'hljs';
      code.innerHTML = highlight(a.content, ext);
      var pre = document.createElement('pre');
      pre.appendChild(code);
      root.appendChild(pre);
    },
    markdown: function (a) {
      var md = new marked.Marked();
      if (typeof katex !== 'undefined') {
        md.use({ extensions: [
          { name: 'blockMath', level: 'block',
            start: function (s) { var i = s.indexOf('$$'); return i < 0 ? undefined : i; },
            tokenizer: function (s) {
              var m = /^\$\$([\s\S]+?)\$\$[^\S\n]*(?:\n|$)/.exec(s);
              if (m) return { type: 'blockMath', raw: m[0], text: m[1].trim() };
            },
            renderer: math(true) },
          { name: 'inlineMath', level: 'inline',
            start: function (s) { var i = s.indexOf('$'); return i < 0 ? undefined : i; },
            tokenizer: function (s) {
              var m = /^\$\$([^$]+?)\$\$/.exec(s);
              if (m) return { type: 'inlineMath', raw: m[0], text: m[1].trim(), display: true };
              m = /^\$(?!\s)((?:\\\$|[^$\n])+?)\$(?!\d)/.exec(s);
              if (m && !/\s$/.test(m[1])) return { type: 'inlineMath', raw: m[0], text: m[1] };
            },
            renderer: function (t) { return math(Boolean(t.display))(t); } },
        ] });
      }
      md.use({ renderer: { code: function (t) {
        var lang = (t.lang || '').trim().split(/\s+/)[0];
        if (lang === 'mermaid') return '<pre class="mermaid">' + escapeHtml(t.text) + '</pre>';
        return '<pre><code class="hljs">' + highlight(t.text, lang) + '</code></pre>';
      } } });
      root.className = 'markdown';
      root.innerHTML = md.parse(a.content);
      var diagrams = root.querySelectorAll('pre.mermaid');
      if (diagrams.length && typeof mermaid !== 'undefined') return runMermaid(diagrams);
    },
    mermaid: function (a) {
      var pre = document.createElement('pre');
      pre.className = 'mermaid';
      pre.textContent = a.content;
      root.appendChild(pre);
      return runMermaid([pre]);
    },
    react: function (a) {
      var code = sucrase.transform(a.content, {
        transforms: ['jsx', 'typescript', 'imports'], production: true,
      }).code;
      function esm(value, named) {
        var m = Object.assign({}, value, named || {});
        m.default = value;
        m.__esModule = true;
        return m;
      }
      var modules = { react: esm(React), 'react-dom': esm(ReactDOM), 'react-dom/client': esm(ReactDOM) };
      if (typeof Chart !== 'undefined') {
        modules['chart.js'] = modules['chart.js/auto'] = esm(Chart, { Chart: Chart });
      }
      if (typeof Papa !== 'undefined') modules.papaparse = esm(Papa);
      function require(name) {
        if (!Object.prototype.hasOwnProperty.call(modules, name)) {
          throw new Error('An artifact may import only react, react-dom, chart.js and papaparse, not ' + name + '.');
        }
        return modules[name];
      }
      var module = { exports: {} };
      new Function('require', 'module', 'exports', 'React', code)(require, module, module.exports, React);
      var exp = module.exports;
      var Component = typeof exp === 'function' ? exp : exp.default;
      if (typeof Component !== 'function') {
        Component = Object.keys(exp).map(function (k) { return exp[k]; })
          .filter(function (v) { return typeof v === 'function'; })[0];
      }
      if (typeof Component !== 'function') {
        throw new Error('Export the component, e.g. export default function App() { … }.');
      }
      ReactDOM.createRoot(root).render(React.createElement(Component));
    },
  };

  function fail(e) {
    var pre = document.createElement('pre');
    pre.className = 'artifact-error';
    pre.textContent = 'This artifact could not be shown: ' + ((e && e.message) || String(e));
    root.appendChild(pre);
  }

  function render(a) {
    if (a.kind === 'html') {
      // The served shell becomes the artifact's document; the window and the document's policy
      // (header and meta) stay. document.open drops the guard's listeners: it runs again first.
      document.open();
      document.write('\x3Cscript>' + GUARD + '\x3C/script>' + a.content);
      document.close();
      return;
    }
    document.title = a.title;
    librariesFor(a.kind, a.content)
      .reduce(function (p, n) { return p.then(function () { return load(n); }); }, Promise.resolve())
      .then(function () { return renderers[a.kind](a); })
      .then(undefined, fail);
  }

  function valid(m) {
    return m !== null && typeof m === 'object' && m.type === RENDER &&
      KINDS.indexOf(m.kind) >= 0 && typeof m.title === 'string' &&
      typeof m.content === 'string' && m.content.length <= MAX_CONTENT;
  }

  if (config.artifact) {
    render(config.artifact);
    return;
  }
  var done = false;
  window.addEventListener('message', function (e) {
    // SECURITY: only the embedding page, only the expected shape, only once.
    if (done || window.parent === window || e.source !== window.parent || !valid(e.data)) return;
    done = true;
    render({ kind: e.data.kind, title: e.data.title, content: e.data.content });
  });
  if (window.parent !== window) window.parent.postMessage({ type: READY }, '*');
}`;

/** The frame's own look: readable defaults that follow the system theme. */
const BASE_CSS = `:root{color-scheme:light dark}
body{margin:0;font:14px/1.55 system-ui,-apple-system,"Segoe UI",sans-serif}
#root{padding:16px}
#root>img{max-width:100%;height:auto}
pre{overflow:auto}
pre code.hljs{border-radius:6px;font:13px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.markdown table{border-collapse:collapse}.markdown td,.markdown th{border:1px solid #8884;padding:4px 8px}
.markdown img{max-width:100%}
pre.mermaid{background:none;text-align:center}
.artifact-error{color:#b3261e;white-space:pre-wrap}`;

/**
 * Makes text safe inside a <script> or <style> element: `</script`, `</style` and `<!--` cannot
 * end or re-mode the element. `\x3C` means `<` in JS strings, regexes and templates alike.
 */
function forRawText(s: string): string {
  return s.replace(/<(\/(?:script|style)|!--)/gi, '\\x3C$1');
}

/** JSON that is also safe inside a <script> element. */
function jsonForScript(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The tags that open every artifact document, before anything else can load. */
function headStart(): string {
  return (
    '<meta charset="utf-8">' +
    `<meta http-equiv="Content-Security-Policy" content="${ARTIFACT_CSP}">` +
    // SECURITY: no DNS prefetch of names the artifact mentions (a lookup is a message out).
    '<meta http-equiv="x-dns-prefetch-control" content="off">' +
    '<meta name="referrer" content="no-referrer">' +
    `<script>${GUARD_SCRIPT}</script>`
  );
}

/** The frame script with its arguments, as the text of one inline <script>. */
function frameScript(config: {
  libBase?: string;
  inlined?: string[];
  artifact?: { kind: string; title: string; content: string };
}): string {
  const args = [
    config,
    KIND_LIBRARIES,
    ARTIFACT_KINDS,
    FRAME_READY,
    FRAME_RENDER,
    GUARD_SCRIPT,
  ].map(jsonForScript);
  return `(${FRAME_SCRIPT})(${args.join(', ')});`;
}

/**
 * A complete HTML document that renders one artifact. `inline: true` embeds every library it
 * needs (a file that renders offline anywhere, as `paddock artifacts export` writes it);
 * `inline: false` loads them from `${libBase}/lib/<name>`. Every document carries ARTIFACT_CSP
 * in a <meta> that comes before anything that can load or run.
 */
export function artifactDocument(
  a: { kind: string; title: string; content: string },
  o: { inline: boolean; libBase?: string },
): string {
  if (a.kind === 'html') {
    // An html artifact is the document itself. Its doctype (if any) is replaced by ours, and the
    // CSP goes first: the parser puts it in <head> and merges the artifact's own <html>/<head>.
    const body = a.content.replace(/^\uFEFF?\s*(<!doctype[^>]*>)?/i, '');
    return `<!DOCTYPE html>${headStart()}${body}`;
  }
  const libs = librariesFor(a.kind, a.content);
  const embedded = o.inline
    ? libs
        .map((n) =>
          n.endsWith('.css')
            ? `<style>${forRawText(readArtifactLibrary(n))}</style>`
            : `<script>${forRawText(readArtifactLibrary(n))}</script>`,
        )
        .join('\n')
    : '';
  const config = o.inline
    ? { inlined: libs, artifact: a }
    : { libBase: o.libBase ?? '', artifact: a };
  return shell(a.title, embedded, frameScript(config));
}

/**
 * The frame shell that the frame origin serves at /frame.html: it says it is ready to its parent,
 * renders the one artifact the parent posts, and loads libraries from its own origin's /lib/.
 */
export function artifactShell(): string {
  return shell('Artifact', '', frameScript({ libBase: '' }));
}

/** One file a frame origin serves: its body and the headers every frame host sends with it. */
export interface ArtifactFrameFile {
  body: Buffer<ArrayBuffer>;
  /** Content-Type, ARTIFACT_CSP and the rest of the policy headers; hosts add only their own. */
  headers: Readonly<Record<string, string>>;
}

/**
 * What a frame origin serves at `pathname`: the shell at /frame.html, a library at /lib/<name>,
 * nothing else (null). Shared by `paddock serve`'s frame server and Electron's frame scheme.
 */
export function artifactFrameFile(pathname: string): ArtifactFrameFile | null {
  if (pathname === ARTIFACT_SHELL_PATH) {
    shellCache ??= frameFile('text/html; charset=utf-8', artifactShell());
    return shellCache;
  }
  const name = pathname.startsWith('/lib/') ? pathname.slice('/lib/'.length) : '';
  if (!Object.hasOwn(ARTIFACT_LIBRARIES, name)) return null;
  let file = libraryFileCache.get(name);
  if (!file) {
    const type = name.endsWith('.css')
      ? 'text/css; charset=utf-8'
      : 'text/javascript; charset=utf-8';
    file = frameFile(type, readArtifactLibrary(name));
    libraryFileCache.set(name, file);
  }
  return file;
}
let shellCache: ArtifactFrameFile | undefined;
/** Each library's body, encoded once (not per request). */
const libraryFileCache = new Map<string, ArtifactFrameFile>();

function frameFile(type: string, text: string): ArtifactFrameFile {
  return {
    body: Buffer.from(text),
    headers: {
      'Content-Type': type,
      'Content-Security-Policy': ARTIFACT_CSP,
      'Connection-Allowlist': ARTIFACT_CONNECTION_ALLOWLIST,
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      // SECURITY: no DNS prefetch of names an artifact mentions.
      'X-DNS-Prefetch-Control': 'off',
      // The sandboxed frame's origin is opaque, so even its own /lib/* loads are cross-origin:
      // `same-origin` would block them. Nothing here is secret (public libraries and a shell).
      'Cross-Origin-Resource-Policy': 'cross-origin',
    },
  };
}

function shell(title: string, embedded: string, script: string): string {
  return (
    `<!DOCTYPE html><html><head>${headStart()}<title>${escapeHtml(title)}</title>` +
    `<style>${BASE_CSS}</style>${embedded}</head>` +
    `<body><main id="root"></main><script>${script}</script></body></html>\n`
  );
}
