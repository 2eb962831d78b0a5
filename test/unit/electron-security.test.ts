import fs from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { APP_CSP, hardenApp } from '../../src/main/electron/security.js';
import { createMainWindow } from '../../src/main/electron/windows.js';
import { appPagePolicy, CONTENT_SECURITY_POLICY } from '../../src/main/web/server.js';
import * as fake from '../helpers/fake-electron.js';
import { cspDirectives as directives } from '../helpers/http.js';

vi.mock('electron', () => import('../helpers/fake-electron.js'));

const APP_URL = 'file:///opt/paddock/dist/renderer/index.html';
const isAppUrl = (url: string) => url.split('#')[0] === APP_URL;

/** A navigation-style event whose preventDefault is recorded. */
function navEvent() {
  return { preventDefault: vi.fn() };
}

/** Runs hardenApp with "ready" resolved, and one web contents created after it. */
async function hardened() {
  fake.config.whenReady = () => Promise.resolve();
  hardenApp(isAppUrl);
  await Promise.resolve();
  await Promise.resolve();
  const contents = new fake.FakeWebContents();
  const created = fake.app.only('web-contents-created') as (e: unknown, c: unknown) => void;
  created({}, contents);
  return contents;
}

beforeEach(() => fake.resetFake());

describe('createMainWindow', () => {
  it('turns every renderer safety switch on and loads the bundled page', () => {
    const distDir = path.join('/opt', 'paddock', 'dist');
    const win = createMainWindow(distDir) as unknown as fake.BrowserWindow;
    const prefs = win.options.webPreferences as Record<string, unknown>;
    expect(prefs).toMatchObject({
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webviewTag: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      preload: path.join(distDir, 'preload', 'index.cjs'),
    });
    expect(fake.calls).toContainEqual([
      'win.loadFile',
      path.join(distDir, 'renderer', 'index.html'),
    ]);
    // Nothing loads from a URL: the only page is the bundled file.
    expect(fake.calls.filter((c) => String(c[0]).startsWith('win.load'))).toHaveLength(1);
  });

  it('stays hidden until the page is ready to show', () => {
    const win = createMainWindow('/d') as unknown as fake.BrowserWindow;
    expect(win.options.show).toBe(false);
    expect(fake.calls).not.toContainEqual(['win.show']);
    win.only('ready-to-show')();
    expect(fake.calls).toContainEqual(['win.show']);
  });
});

describe('hardenApp', () => {
  it('prevents navigation and redirects to anything but the app page', async () => {
    const contents = await hardened();
    for (const event of ['will-navigate', 'will-redirect']) {
      const handler = contents.only(event) as (e: unknown, url: string) => void;
      for (const url of [
        'https://evil.example/',
        'http://127.0.0.1:8080/',
        'file:///etc/passwd',
        'file:///opt/paddock/dist/renderer/other.html',
        `${APP_URL}?x=1`,
      ]) {
        const e = navEvent();
        handler(e, url);
        expect(e.preventDefault, `${event} ${url}`).toHaveBeenCalled();
      }
      for (const url of [APP_URL, `${APP_URL}#/settings`]) {
        const e = navEvent();
        handler(e, url);
        expect(e.preventDefault, `${event} ${url}`).not.toHaveBeenCalled();
      }
    }
  });

  it('prevents frames inside the page from navigating away', async () => {
    const contents = await hardened();
    const handler = contents.only('will-frame-navigate') as (e: unknown) => void;
    for (const url of ['https://evil.example/', 'file:///etc/passwd', 'javascript:alert(1)']) {
      const e = { ...navEvent(), url };
      handler(e);
      expect(e.preventDefault, url).toHaveBeenCalled();
    }
    const ok = { ...navEvent(), url: APP_URL };
    handler(ok);
    expect(ok.preventDefault).not.toHaveBeenCalled();
  });

  it('lets a subframe load the artifact frame shell, and nothing else on its scheme', async () => {
    const contents = await hardened();
    const handler = contents.only('will-frame-navigate') as (e: unknown) => void;
    const shell = { ...navEvent(), url: 'paddock-artifact://frame/frame.html', isMainFrame: false };
    handler(shell);
    expect(shell.preventDefault).not.toHaveBeenCalled();
    for (const e of [
      // The window itself never becomes the frame shell.
      { ...navEvent(), url: 'paddock-artifact://frame/frame.html', isMainFrame: true },
      { ...navEvent(), url: 'paddock-artifact://frame/lib/marked.js', isMainFrame: false },
      { ...navEvent(), url: 'paddock-artifact://other/frame.html', isMainFrame: false },
      // What an artifact's meta refresh or location change would ask for.
      { ...navEvent(), url: 'http://127.0.0.1:9/x', isMainFrame: false },
      { ...navEvent(), url: 'data:text/html,hi', isMainFrame: false },
    ]) {
      handler(e);
      expect(e.preventDefault, `${e.url} main=${e.isMainFrame}`).toHaveBeenCalled();
    }
  });

  it('denies every window.open and sends only https links to the system browser', async () => {
    const contents = await hardened();
    const open = contents.windowOpenHandler as (d: { url: string }) => unknown;
    expect(open({ url: 'https://docs.example/help' })).toEqual({ action: 'deny' });
    for (const url of [
      'http://example.com/',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'data:text/html,hi',
      'smb://host/share',
      APP_URL,
    ]) {
      expect(open({ url }), url).toEqual({ action: 'deny' });
    }
    const opened = fake.calls.filter((c) => c[0] === 'shell.openExternal').map((c) => c[1]);
    expect(opened).toEqual(['https://docs.example/help']);
  });

  it('refuses to attach a webview', async () => {
    const contents = await hardened();
    const e = navEvent();
    (contents.only('will-attach-webview') as (e: unknown) => void)(e);
    expect(e.preventDefault).toHaveBeenCalled();
  });

  it('denies permission requests and permission checks', async () => {
    await hardened();
    const ses = fake.session.defaultSession;
    for (const permission of ['media', 'notifications', 'geolocation', 'clipboard-read']) {
      const callback = vi.fn();
      (ses.permissionRequestHandler as (...a: unknown[]) => void)({}, permission, callback, {});
      expect(callback).toHaveBeenCalledWith(false);
      expect((ses.permissionCheckHandler as (...a: unknown[]) => unknown)({}, permission)).toBe(
        false,
      );
    }
  });

  it('injects the app CSP into every response, replacing none of the other headers', async () => {
    await hardened();
    const onHeaders = fake.session.defaultSession.headersReceived as (
      d: unknown,
      cb: (r: unknown) => void,
    ) => void;
    const callback = vi.fn();
    onHeaders({ url: 'https://x.example/', responseHeaders: { 'X-Other': ['1'] } }, callback);
    expect(callback).toHaveBeenCalledWith({
      responseHeaders: { 'X-Other': ['1'], 'Content-Security-Policy': [APP_CSP] },
    });
  });

  it('leaves the artifact frame its own policy', async () => {
    await hardened();
    const onHeaders = fake.session.defaultSession.headersReceived as (
      d: unknown,
      cb: (r: unknown) => void,
    ) => void;
    const callback = vi.fn();
    const responseHeaders = { 'Content-Security-Policy': ["default-src 'none'"] };
    onHeaders({ url: 'paddock-artifact://frame/frame.html', responseHeaders }, callback);
    expect(callback).toHaveBeenCalledWith({});
  });

  it('cancels every request that is not the app, the frame scheme or local, before the network', async () => {
    await hardened();
    const onBefore = fake.session.defaultSession.beforeRequest as (
      d: { url: string },
      cb: (r: { cancel: boolean }) => void,
    ) => void;
    const answer = (url: string) => {
      let cancel: boolean | undefined;
      onBefore({ url }, (r) => (cancel = r.cancel));
      return cancel;
    };
    for (const url of [
      APP_URL,
      `${APP_URL}#/task/1`,
      'paddock-artifact://frame/frame.html',
      'paddock-artifact://frame/lib/marked.js',
      'data:image/png;base64,AA==',
      'blob:file:///0b1c',
      'about:blank',
    ]) {
      expect(answer(url), url).toBe(false);
    }
    for (const url of [
      'http://127.0.0.1:9/self',
      'https://exfil.example/?d=secret',
      'ws://127.0.0.1:9/',
      'file:///etc/passwd',
      'file:///opt/paddock/dist/renderer/other.html',
      'ftp://x.example/',
      'paddock-artifactx://frame/frame.html',
    ]) {
      expect(answer(url), url).toBe(true);
    }
  });

  it('does not touch the session before the app is ready', () => {
    hardenApp(isAppUrl);
    expect(fake.session.defaultSession.permissionRequestHandler).toBeUndefined();
  });
});

describe('the content security policy', () => {
  it('is strict: nothing by default, no inline or eval scripts, no remote origins', () => {
    const d = directives(APP_CSP);
    expect(d.get('default-src')).toBe("'none'");
    expect(d.get('script-src')).toBe("'self'");
    expect(APP_CSP).not.toMatch(/unsafe-inline|unsafe-eval/);
    // Frames: only artifact frames, from Electron's scheme or a loopback frame server (whose
    // exact port `paddock serve` sends in its header; see below).
    expect(d.get('frame-src')).toBe('paddock-artifact://frame http://127.0.0.1:*');
    d.delete('frame-src');
    expect([...d.values()].join(' ')).not.toMatch(/https?:|\*/);
  });

  it('is the one the web host sends, except frame-ancestors (a header-only directive)', () => {
    const electron = directives(APP_CSP);
    const web = directives(CONTENT_SECURITY_POLICY);
    // Reported difference: `paddock serve` also sends frame-ancestors 'none'. Browsers ignore
    // frame-ancestors in a <meta> tag, and index.html's <meta> must equal APP_CSP (below), so the
    // Electron policy leaves it out. Every other directive must match exactly.
    expect(web.get('frame-ancestors')).toBe("'none'");
    web.delete('frame-ancestors');
    // frame-src: the web host sends its own frame port, one of those the shared <meta> allows.
    const sent = directives(appPagePolicy('http://127.0.0.1:43210'));
    expect(sent.get('frame-src')).toBe('http://127.0.0.1:43210');
    expect(electron.get('frame-src')).toContain('http://127.0.0.1:*');
    electron.delete('frame-src');
    expect(electron).toEqual(web);
  });

  it('is the one in the bundled index.html <meta>, which covers the file:// page', () => {
    const html = fs.readFileSync(path.resolve('src/renderer/index.html'), 'utf8');
    const meta = /http-equiv="Content-Security-Policy"\s+content="([^"]+)"/.exec(html);
    expect(meta?.[1]).toBe(APP_CSP);
  });
});
