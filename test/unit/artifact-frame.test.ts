import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ARTIFACT_CONNECTION_ALLOWLIST,
  ARTIFACT_CSP,
  ARTIFACT_LIBRARIES,
  ARTIFACT_SANDBOX as REEXPORTED_SANDBOX,
  artifactDocument,
  artifactShell,
  librariesFor,
  readArtifactLibrary,
} from '../../src/main/core/artifact-frame.js';
import { Core } from '../../src/main/core/core.js';
import {
  ARTIFACT_PARTITION,
  artifactProtocolResponse,
  registerArtifactScheme,
  serveArtifactFrames,
} from '../../src/main/electron/artifact-protocol.js';
import { startFrameServer, type FrameServer } from '../../src/main/web/frame-server.js';
import { startWebHost } from '../../src/main/web/server.js';
import {
  ARTIFACT_SANDBOX,
  ARTIFACT_SCHEME,
  ELECTRON_ARTIFACT_ORIGIN,
  FRAME_READY,
  FRAME_RENDER,
} from '../../src/shared/artifact-policy.js';
import { repoRoot } from '../helpers/cli.js';
import * as fake from '../helpers/fake-electron.js';
import { connectApi } from '../helpers/serve.js';
import { cspDirectives as directives, request } from '../helpers/http.js';
import { tempDir } from '../helpers/temp-dir.js';

const get = (port: number, urlPath: string, opts: { host?: string; method?: string } = {}) =>
  request(port, urlPath, {
    ...(opts.method ? { method: opts.method } : {}),
    ...(opts.host ? { headers: { host: opts.host } } : {}),
  });

vi.mock('electron', () => import('../helpers/fake-electron.js'));

/** The document with the text of every <script> and <style> element taken out. */
function markupOnly(html: string): string {
  return html
    .replace(/<script\b[^>]*>[\s\S]*?<\/script>/gi, '<script></script>')
    .replace(/<style\b[^>]*>[\s\S]*?<\/style>/gi, '<style></style>');
}

beforeAll(() => {
  // The CommonJS-only libraries (React, sucrase, highlight.js) are bundled by the build.
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'artifact-lib', 'react.js'))) {
    execFileSync(process.execPath, [path.join(repoRoot, 'scripts', 'build.mjs')], {
      cwd: repoRoot,
    });
  }
}, 120_000);

describe('the artifact policy', () => {
  it('allows no network: nothing by default, no connect-src, nothing remote', () => {
    const d = directives(ARTIFACT_CSP);
    expect(d.get('default-src')).toBe("'none'");
    expect(d.has('connect-src')).toBe(false);
    expect(d.get('img-src')).toBe('data: blob:');
    expect(d.get('font-src')).toBe('data:');
    expect(d.get('form-action')).toBe("'none'");
    expect(d.get('frame-src')).toBe("'none'");
    expect(d.get('worker-src')).toBe("'none'");
    expect(d.get('base-uri')).toBe("'none'");
    expect(d.get('script-src')).toBe("'self' 'unsafe-inline' 'unsafe-eval'");
    expect(d.get('style-src')).toBe("'self' 'unsafe-inline'");
    expect(ARTIFACT_CSP).not.toMatch(/https?:|\*|ws:|file:|filesystem:/);
  });

  it('sandboxes the frame with scripts only, from one place', () => {
    expect(ARTIFACT_SANDBOX).toBe('allow-scripts');
    expect(REEXPORTED_SANDBOX).toBe(ARTIFACT_SANDBOX);
    for (const never of [
      'allow-same-origin',
      'allow-popups',
      'allow-top-navigation',
      'allow-forms',
      'allow-modals',
    ]) {
      expect(ARTIFACT_SANDBOX).not.toContain(never);
    }
  });
});

describe('artifactDocument', () => {
  const art = (kind: string, content: string, title = 'A title') => ({ kind, title, content });

  it('opens every kind with the CSP meta, before anything can load or run', () => {
    for (const kind of ['html', 'svg', 'markdown', 'mermaid', 'react', 'code']) {
      for (const inline of [true, false]) {
        const doc = artifactDocument(art(kind, '<script>evil()</script>x'), { inline });
        const meta = `<meta http-equiv="Content-Security-Policy" content="${ARTIFACT_CSP}">`;
        expect(doc.startsWith('<!DOCTYPE html>'), kind).toBe(true);
        expect(doc.indexOf(meta), kind).toBeGreaterThan(0);
        expect(doc.indexOf(meta), kind).toBeLessThan(doc.indexOf('<script'));
        // The WebRTC guard is the first script.
        expect(doc.slice(doc.indexOf('<script>'))).toMatch(
          /^<script>\(function \(\) \{\n\s+var names = \['RTCPeerConnection'/,
        );
      }
    }
  });

  it('makes an html artifact the document itself, its doctype replaced by ours', () => {
    const content =
      '\uFEFF <!doctype html>\n<html lang="fr"><head><title>Hi</title></head><body><p>hello</p></body></html>';
    const doc = artifactDocument(art('html', content), { inline: true });
    expect(doc.match(/<!doctype/gi)).toHaveLength(1);
    expect(doc).toContain('<html lang="fr"><head><title>Hi</title></head><body><p>hello</p>');
    expect(doc.indexOf('Content-Security-Policy')).toBeLessThan(doc.indexOf('<html lang="fr">'));
  });

  it('shows svg through an <img> data: URL and embeds its source as data', () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>';
    const doc = artifactDocument(art('svg', svg), { inline: true });
    expect(doc).toContain("'data:image/svg+xml;charset=utf-8,'");
    // The content travels as JSON in the frame script; no '<' of it reaches the markup.
    expect(doc).toContain('\\u003csvg xmlns=');
    expect(markupOnly(doc)).not.toContain('<svg');
  });

  it('embeds exactly the libraries each kind needs when inline', () => {
    const has = (doc: string, name: keyof typeof ARTIFACT_LIBRARIES) =>
      doc.includes(
        readArtifactLibrary(name)
          .slice(0, 200)
          .replace(/<(\/(?:script|style)|!--)/gi, '\\x3C$1'),
      );
    const md = artifactDocument(art('markdown', '# Hi\n\n```js\nlet a = 1\n```'), {
      inline: true,
    });
    expect(has(md, 'marked.js')).toBe(true);
    expect(has(md, 'highlight.js')).toBe(true);
    expect(has(md, 'highlight.css')).toBe(true);
    expect(has(md, 'katex.js')).toBe(false);
    expect(has(md, 'mermaid.js')).toBe(false);
    const math = artifactDocument(
      art('markdown', 'E = $mc^2$\n\n```mermaid\ngraph TD; A-->B\n```'),
      {
        inline: true,
      },
    );
    expect(has(math, 'katex.js')).toBe(true);
    expect(has(math, 'katex.css')).toBe(true);
    expect(has(math, 'mermaid.js')).toBe(true);
    expect(
      has(artifactDocument(art('mermaid', 'graph TD; A-->B'), { inline: true }), 'mermaid.js'),
    ).toBe(true);
    const jsx =
      "import { Chart } from 'chart.js';\nexport default function App() { return <p>hi</p>; }";
    const react = artifactDocument(art('react', jsx), { inline: true });
    expect(has(react, 'sucrase.js')).toBe(true);
    expect(has(react, 'react.js')).toBe(true);
    expect(has(react, 'chart.js')).toBe(true);
    expect(has(react, 'papaparse.js')).toBe(false);
    const code = artifactDocument(art('code', 'print(1)', 'main.py'), { inline: true });
    expect(has(code, 'highlight.js')).toBe(true);
    expect(librariesFor('html', '$ ```mermaid')).toEqual([]);
    expect(librariesFor('svg', '')).toEqual([]);
  });

  it('refers to no external URL when inline: no src, href, url() or @import out', () => {
    const docs = [
      artifactDocument(art('markdown', '$x$ ```mermaid\ngraph TD; A-->B\n```'), { inline: true }),
      artifactDocument(art('react', "import Papa from 'papaparse'; import 'chart.js';"), {
        inline: true,
      }),
      artifactDocument(art('code', 'x'), { inline: true }),
      artifactDocument(art('svg', '<svg/>'), { inline: true }),
    ];
    for (const doc of docs) {
      const markup = markupOnly(doc);
      expect(markup).not.toMatch(/https?:|\/\/|\ssrc=|\shref=/i);
      expect(doc).not.toMatch(/src="http|href="http/i);
      expect(doc).not.toMatch(/<link\b|<script\s+src/i);
      for (const css of doc.match(/<style>[\s\S]*?<\/style>/g) ?? []) {
        expect(css).not.toMatch(/@import/);
        for (const url of css.match(/url\([^)]*\)/g) ?? []) expect(url).toMatch(/^url\(data:/);
      }
    }
  });

  it('loads libraries from libBase when not inline, embedding none', () => {
    const doc = artifactDocument(
      { kind: 'markdown', title: 't', content: '# x' },
      { inline: false, libBase: 'http://127.0.0.1:9' },
    );
    expect(doc).toContain('"libBase":"http://127.0.0.1:9"');
    expect(doc.length).toBeLessThan(30_000);
  });

  it('keeps content and title from breaking out of their elements', () => {
    const doc = artifactDocument(
      { kind: 'markdown', title: '</title><script>x()</script>', content: '</script><!--<script>' },
      { inline: false },
    );
    expect(doc).toContain('<title>&#60;/title&#62;&#60;script&#62;x()&#60;/script&#62;</title>');
    expect(doc).toContain('\\u003c/script>\\u003c!--\\u003cscript>');
    expect(doc.match(/<script>/g)).toHaveLength(2);
  });

  it('serves a shell that waits for its parent and embeds no artifact', () => {
    const shell = artifactShell();
    expect(shell).toContain(JSON.stringify(FRAME_READY));
    expect(shell).toContain(JSON.stringify(FRAME_RENDER));
    expect(shell).toContain('e.source !== window.parent');
    expect(shell).toContain('{"libBase":""}');
  });
});

describe('the frame server', () => {
  let frame: FrameServer;
  beforeAll(async () => {
    frame = await startFrameServer({ frameAncestors: () => ['http://127.0.0.1:1234'] });
  });
  afterAll(() => frame?.close());

  it('listens on loopback, on a port of its own', () => {
    expect(frame.origin).toBe(`http://127.0.0.1:${frame.port}`);
  });

  it('answers the shell with the CSP header, framed only by the app page, and no cookie', async () => {
    const r = await get(frame.port, '/frame.html');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toBe(
      `${ARTIFACT_CSP}; frame-ancestors http://127.0.0.1:1234`,
    );
    expect(r.headers['connection-allowlist']).toBe('(response-origin)');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['set-cookie']).toBeUndefined();
    expect(r.body).toBe(artifactShell());
  });

  it('answers each library with the CSP header and its type', async () => {
    for (const name of Object.keys(ARTIFACT_LIBRARIES)) {
      const r = await get(frame.port, `/lib/${name}`);
      expect(r.status, name).toBe(200);
      expect(r.headers['content-security-policy'], name).toBe(ARTIFACT_CSP);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['content-type']).toMatch(
        name.endsWith('.css') ? /^text\/css/ : /^text\/javascript/,
      );
      expect(r.body.length, name).toBeGreaterThan(1000);
    }
  });

  it('refuses every other path, method and host', async () => {
    for (const p of [
      '/',
      '/index.html',
      '/api',
      '/lib/',
      '/lib/nope.js',
      '/lib/../package.json',
      '/lib/%2e%2e/package.json',
      '/frame.html/',
      '/lib/constructor',
      '/lib/__proto__',
    ]) {
      expect((await get(frame.port, p)).status, p).toBe(404);
    }
    expect((await get(frame.port, '/frame.html', { method: 'POST' })).status).toBe(405);
    for (const host of ['evil.example', `evil.example:${frame.port}`, '127.0.0.1:1']) {
      expect((await get(frame.port, '/frame.html', { host })).status, host).toBe(403);
    }
    const upgraded = await new Promise<string>((resolve) => {
      const s = net.connect(frame.port, '127.0.0.1', () =>
        s.write(
          `GET /frame.html HTTP/1.1\r\nHost: 127.0.0.1:${frame.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n`,
        ),
      );
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString()));
      s.on('close', () => resolve(out));
      s.on('error', () => undefined);
    });
    expect(upgraded).toBe('');
  });
});

describe('paddock serve and its frame origin', () => {
  it('starts and stops the frame server, reports it in app:info and frames only it', async () => {
    const home = tempDir();
    const staticDir = path.join(home.dir, 'renderer');
    fs.mkdirSync(staticDir);
    fs.writeFileSync(path.join(staticDir, 'index.html'), '<!doctype html>');
    const core = new Core({ dataDir: path.join(home.dir, 'data'), host: 'web', env: {} });
    const host = await startWebHost({ core, port: 0, staticDir, token: 'frame-token-0123456789' });
    try {
      expect(host.artifactOrigin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(host.artifactOrigin).not.toBe(`http://127.0.0.1:${host.port}`);
      const page = await get(host.port, '/?token=frame-token-0123456789');
      const csp = directives(page.headers['content-security-policy'] as string);
      expect(csp.get('frame-src')).toBe(host.artifactOrigin);
      const framePort = Number(new URL(host.artifactOrigin).port);
      const shell = await get(framePort, '/frame.html');
      expect(
        directives(shell.headers['content-security-policy'] as string).get('frame-ancestors'),
      ).toBe(`http://127.0.0.1:${host.port} http://localhost:${host.port}`);
      const api = await connectApi(host.url);
      const info = await api.call<{ artifactOrigin?: string; host: string }>('app:info');
      api.close();
      expect(info).toMatchObject({ host: 'web', artifactOrigin: host.artifactOrigin });
      await host.close();
      await expect(get(framePort, '/frame.html')).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      await host.close();
      core.dispose();
      home.cleanup();
    }
  });
});

describe("Electron's frame scheme", () => {
  beforeEach(() => fake.resetFake());

  it('registers paddock-artifact as standard and secure, and nothing more', () => {
    registerArtifactScheme();
    expect(fake.protocol.privileged).toEqual([
      { scheme: ARTIFACT_SCHEME, privileges: { standard: true, secure: true } },
    ]);
  });

  it('serves the shell and libraries on the default session and its own partition', async () => {
    serveArtifactFrames();
    const partition = fake.partitions.get(ARTIFACT_PARTITION)!;
    for (const protocol of [fake.session.defaultSession.protocol, partition.protocol]) {
      const handle = protocol.handlers.get(ARTIFACT_SCHEME) as (r: unknown) => Response;
      const shell = handle({ url: `${ELECTRON_ARTIFACT_ORIGIN}/frame.html`, method: 'GET' });
      expect(shell.status).toBe(200);
      expect(shell.headers.get('content-security-policy')).toBe(ARTIFACT_CSP);
      expect(shell.headers.get('connection-allowlist')).toBe(ARTIFACT_CONNECTION_ALLOWLIST);
      expect(shell.headers.get('x-content-type-options')).toBe('nosniff');
      expect(await shell.text()).toBe(artifactShell());
      const lib = handle({ url: `${ELECTRON_ARTIFACT_ORIGIN}/lib/marked.js`, method: 'GET' });
      expect(lib.status).toBe(200);
      expect(lib.headers.get('content-type')).toMatch(/^text\/javascript/);
    }
  });

  it('answers 404 for any other path or host, and 405 for anything but GET', () => {
    for (const url of [
      `${ELECTRON_ARTIFACT_ORIGIN}/`,
      `${ELECTRON_ARTIFACT_ORIGIN}/lib/nope.js`,
      `${ELECTRON_ARTIFACT_ORIGIN}/index.html`,
      `${ARTIFACT_SCHEME}://other/frame.html`,
    ]) {
      expect(artifactProtocolResponse({ url, method: 'GET' }).status, url).toBe(404);
    }
    expect(
      artifactProtocolResponse({ url: `${ELECTRON_ARTIFACT_ORIGIN}/frame.html`, method: 'POST' })
        .status,
    ).toBe(405);
  });

  it('denies every permission in its partition and turns off non-proxied WebRTC UDP', () => {
    serveArtifactFrames();
    const partition = fake.partitions.get(ARTIFACT_PARTITION)!;
    const callback = vi.fn();
    (partition.permissionRequestHandler as (...a: unknown[]) => void)({}, 'media', callback, {});
    expect(callback).toHaveBeenCalledWith(false);
    expect((partition.permissionCheckHandler as (...a: unknown[]) => unknown)({}, 'media')).toBe(
      false,
    );
    const contents = new fake.FakeWebContents();
    (fake.app.only('web-contents-created') as (e: unknown, c: unknown) => void)({}, contents);
    expect(contents.webRTCIPHandlingPolicy).toBe('disable_non_proxied_udp');
  });

  it('lets its partition request the frame scheme and nothing that leaves the machine', () => {
    serveArtifactFrames();
    const onBefore = fake.partitions.get(ARTIFACT_PARTITION)!.beforeRequest as (
      d: { url: string },
      cb: (r: { cancel: boolean }) => void,
    ) => void;
    const cancelled = (url: string) => {
      let cancel: boolean | undefined;
      onBefore({ url }, (r) => (cancel = r.cancel));
      return cancel;
    };
    expect(cancelled(`${ELECTRON_ARTIFACT_ORIGIN}/frame.html`)).toBe(false);
    expect(cancelled('data:text/plain,x')).toBe(false);
    expect(cancelled('http://127.0.0.1:9/self')).toBe(true);
    expect(cancelled('https://exfil.example/')).toBe(true);
    expect(cancelled('file:///etc/passwd')).toBe(true);
  });
});
