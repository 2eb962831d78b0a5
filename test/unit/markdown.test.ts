import * as React from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  decodeEntities,
  highlightCode,
  imageView,
  lexMarkdown,
  parseHighlight,
  safeLinkUrl,
} from '../../src/renderer/lib/markdown.js';

const PNG_DATA =
  'data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==';

// The unit project compiles .tsx with the classic JSX transform (no renderer tsconfig here), which
// calls a global React; the renderer's own build uses the automatic one.
(globalThis as { React?: unknown }).React = React;

type MarkdownProps = { text: string; streaming?: boolean };
let Markdown: (props: MarkdownProps) => React.ReactElement;
beforeAll(async () => {
  // Imported by a name tsc does not follow: the main tsconfig has no JSX.
  const file = '../../src/renderer/components/Markdown.js';
  ({ Markdown } = (await import(/* @vite-ignore */ file)) as { Markdown: typeof Markdown });
});

/** The agent's answer as the task view draws it, as HTML (React's own server renderer). */
function html(text: string, streaming = false): string {
  return renderToStaticMarkup(React.createElement(Markdown, { text, streaming }));
}

/** Every `<tag …>` opening in the markup, e.g. all `<img …>`. */
function tags(markup: string, name: string): string[] {
  return markup.match(new RegExp(`<${name}\\b[^>]*>`, 'gi')) ?? [];
}

describe('answers as Markdown', () => {
  it('draws GFM tables with their alignment as classes (the CSP allows no inline style)', () => {
    const out = html('| Fruit | Count |\n|:--|--:|\n| **pear** | 3 |\n| apple & co | 10 |\n');
    expect(out).toContain('<table data-testid="md-table">');
    expect(out).toContain('<th class="md-align-left">Fruit</th>');
    expect(out).toContain('<th class="md-align-right">Count</th>');
    expect(out).toContain('<td class="md-align-left"><strong>pear</strong></td>');
    expect(out).toContain('apple &amp; co');
    expect(out).not.toContain('style=');
  });

  it('draws task lists with checkboxes the person cannot tick', () => {
    const out = html('- [x] wrote the report\n- [ ] sent it\n');
    const boxes = tags(out, 'input');
    expect(boxes).toHaveLength(2);
    expect(boxes[0]).toMatch(/type="checkbox"/);
    expect(boxes[0]).toMatch(/checked=""/);
    expect(boxes[0]).toMatch(/disabled=""/);
    expect(boxes[1]).not.toMatch(/checked/);
    expect(out).toContain('wrote the report');
    expect(out).toContain('<ul class="md-tasks">');
  });

  it('highlights code by class, with its language and a copy button', () => {
    const out = html('Run this:\n\n```ts\nconst a: number = 1; // "<b>"\n```\n');
    expect(out).toContain('data-testid="md-code"');
    expect(out).toContain('<code class="hljs language-typescript">');
    expect(out).toContain('<span class="hljs-keyword">const</span>');
    expect(out).toContain('<span class="hljs-comment">// &quot;&lt;b&gt;&quot;</span>');
    expect(out).toMatch(/<button[^>]*>Copy<\/button>/);
    expect(tags(out, 'b')).toEqual([]);
    // Unknown languages and plain fences are shown as they are.
    expect(html('```nosuchlang\n<i>x</i>\n```')).toContain('&lt;i&gt;x&lt;/i&gt;');
  });

  it('draws a finished Mermaid block in an artifact frame, and a streaming one as code', () => {
    const diagram = '```mermaid\ngraph TD\n  A-->B\n```\n';
    expect(html(`Here:\n\n${diagram}`)).toContain('data-testid="md-mermaid"');
    const partial = html('Here:\n\n```mermaid\ngraph TD\n  A-->', true);
    expect(partial).not.toContain('md-mermaid');
    expect(partial).toContain('data-testid="md-code"');
    // Once its fence closes it is drawn, even while the answer goes on streaming.
    expect(html(`Here:\n\n${diagram}`, true)).toContain('data-testid="md-mermaid"');
  });

  it('shows an image at an address as a link to open, never as an <img> that loads it', () => {
    const out = html(
      'Chart: ![the chart](https://tracker.example/pixel.png?who=me) and ![b](//cdn.example/x.png) and <https://ok.example/>',
    );
    const imgs = tags(out, 'img');
    expect(imgs).toEqual([]);
    expect(out).toContain('tracker.example');
    const link = tags(out, 'button').find((a) => a.includes('md-image-link'))!;
    expect(link).toContain('data-url="https://tracker.example/pixel.png?who=me"');
    expect(link).not.toContain('href=');
    expect(out).toContain('the chart');
    // A protocol-relative address is neither loaded nor a link.
    expect(out).not.toContain('cdn.example/x.png"');
  });

  it('draws data: images inline', () => {
    const out = html(`![dot](${PNG_DATA})`);
    expect(tags(out, 'img')).toEqual([`<img src="${PNG_DATA}" alt="dot" class="md-img"/>`]);
    expect(tags(html('![x](data:text/html;base64,PHNjcmlwdD4=)'), 'img')).toEqual([]);
  });

  it('neutralises raw HTML: <script>, <img onerror>, <iframe>, event handlers', () => {
    const out = html(
      [
        '<script>alert(1)</script>',
        '',
        'Hi <img src=x onerror=alert(2)> there <a href="javascript:alert(3)">x</a>',
        '',
        '<iframe src="https://evil.example"></iframe>',
        '',
        '<div onclick="alert(4)">click</div>',
      ].join('\n'),
    );
    for (const t of ['script', 'img', 'iframe', 'a', 'div'])
      expect(
        tags(out, t).filter((x) => !x.startsWith('<div class="md"')),
        t,
      ).toEqual([]);
    expect(out).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(out).toContain('&lt;img src=x onerror=alert(2)&gt;');
    // No element anywhere carries an event handler (the text may mention one).
    const elements = out.match(/<[a-z][^>]*>/gi) ?? [];
    expect(elements.filter((e) => /\son\w+=/i.test(e))).toEqual([]);
  });

  it('turns javascript:, data:, vbscript:, file: and relative links into plain text', () => {
    const out = html(
      '[a](javascript:alert(1)) [b](JaVaScRiPt:alert(1)) [c](data:text/html,<script>alert(1)</script>) [d](vbscript:x) [e](file:///etc/passwd) [f](notes.md) [g](  javascript:alert(1))',
    );
    expect(tags(out, 'a')).toEqual([]);
    expect(out).not.toContain('md-link');
    expect(out).toContain('a b c d e f g');
    expect(out.toLowerCase()).not.toContain('javascript:');
  });

  it('makes http(s) links that ask first, showing the normalised full address', () => {
    const out = html('See [the docs](https://ExAmple.com/a%20b?q=1#top) or www.example.org.');
    // Buttons without an href: a middle click or "open in new tab" cannot skip the dialog.
    expect(tags(out, 'a')).toEqual([]);
    const links = tags(out, 'button').filter((b) => b.includes('md-link'));
    expect(links).toHaveLength(2);
    expect(links[0]).toContain('data-url="https://example.com/a%20b?q=1#top"');
    expect(links[0]).toContain('title="https://example.com/a%20b?q=1#top"');
    expect(links[0]).toContain('aria-haspopup="dialog"');
    expect(links[1]).toContain('data-url="http://www.example.org/"');
  });

  it('keeps headings, emphasis, quotes, code spans and entities', () => {
    const out = html('# Title\n\n> *so* ~~not~~ `a<b` &copy; &lt;ok&gt;\n\n1. one\n2. two\n');
    expect(out).toContain('<h1>Title</h1>');
    expect(out).toContain(
      '<blockquote><p><em>so</em> <del>not</del> <code>a&lt;b</code> © &lt;ok&gt;</p></blockquote>',
    );
    expect(out).toContain('<ol start="1"><li>one</li><li>two</li></ol>');
  });
});

describe('the dialog before a link opens', () => {
  it('shows the full address and, apart, the host it really goes to', async () => {
    const file = '../../src/renderer/components/Markdown.js';
    const { LinkConfirm } = (await import(/* @vite-ignore */ file)) as {
      LinkConfirm: (p: { url: string; onClose: () => void }) => React.ReactElement;
    };
    const url = 'https://bank.example.com@evil.example/login?next=%2F';
    const out = renderToStaticMarkup(
      React.createElement(LinkConfirm, { url, onClose: () => undefined }),
    );
    expect(out).toContain(`data-testid="link-confirm-url">${url}</p>`);
    expect(out).toContain('on evil.example.');
    expect(out).toMatch(/<button[^>]*>Cancel<\/button>/);
    expect(out).toMatch(/<button[^>]*>Open<\/button>/);
  });
});

describe('the pure parts', () => {
  it('allows only http(s) link addresses, normalised', () => {
    expect(safeLinkUrl('https://xn--e1afmkfd.example/')).toBe('https://xn--e1afmkfd.example/');
    expect(safeLinkUrl('https://пример.example/')).toBe('https://xn--e1afmkfd.example/');
    expect(safeLinkUrl('HTTP://a.b')).toBe('http://a.b/');
    for (const bad of [
      'javascript:alert(1)',
      'data:,x',
      'file:///x',
      'mailto:a@b',
      '/rel',
      '',
      null,
    ])
      expect(safeLinkUrl(bad)).toBeNull();
  });

  it('shows data: images of image types only; everything else as a link or text', () => {
    expect(imageView(PNG_DATA)).toEqual({ kind: 'inline', src: PNG_DATA });
    expect(imageView('https://a.example/x.png')).toEqual({
      kind: 'link',
      url: 'https://a.example/x.png',
    });
    expect(imageView('data:image/svg+xml;base64,PHN2Zz4=')).toMatchObject({ kind: 'inline' });
    expect(imageView('data:text/html;base64,PHNjcmlwdD4=')).toEqual({ kind: 'text' });
    expect(imageView('data:image/png,"><script>')).toEqual({ kind: 'text' });
    expect(imageView('x.png')).toEqual({ kind: 'text' });
  });

  it('reads highlight.js output back, refusing anything but spans and text', () => {
    expect(parseHighlight('<span class="hljs-a">x &amp; <span class="b">y</span></span>z')).toEqual(
      [{ cls: 'hljs-a', children: ['x & ', { cls: 'b', children: ['y'] }] }, 'z'],
    );
    expect(parseHighlight('<img src=x onerror=alert(1)>')).toBeNull();
    expect(parseHighlight('<span class="a" onclick="x">y</span>')).toBeNull();
    expect(parseHighlight('</span>')).toBeNull();
    expect(highlightCode('<script>', 'html').flat(3).join('')).not.toContain('<script');
    expect(highlightCode('x'.repeat(300_000), 'js')).toEqual(['x'.repeat(300_000)]);
  });

  it('caches the tokens of a text, so a redraw of the same answer is free', () => {
    const t = 'some **text** to lex';
    expect(lexMarkdown(t)).toBe(lexMarkdown(t));
    expect(decodeEntities('&amp;lt; &#x41;&#66; &bogus;')).toBe('&lt; AB &bogus;');
  });
});
