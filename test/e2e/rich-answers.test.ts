import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { repoRoot } from '../helpers/cli.js';
import { connectApi, startServe, type Served, type ServedApi } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const shots = path.join(repoRoot, 'test-results');
const KEY = 'sk-ant-e2e-key-0123456789rich';
const DOCS = 'https://docs.example.com/guide/start?from=paddock#install';

/** A loopback HTTP server that records every request it gets: what a tracking pixel would see. */
async function startRecorder(): Promise<{
  url: string;
  requests: string[];
  /** Referer headers seen: the app's address must never leak in one. */
  referers: string[];
  close(): Promise<void>;
}> {
  const requests: string[] = [];
  const referers: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (req.headers.referer) referers.push(req.headers.referer);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('recorded');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    referers,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/**
 * The agent's answer as rich text in Chromium against `paddock serve` and the local Messages API
 * (the model calls no tool, so no VM): a table, highlighted code, a Mermaid diagram in its frame,
 * an image at an address that is never fetched, a link that shows its full address before
 * anything opens; and the preview of the files the task changed.
 */
describe('answers as rich text, and changed files to open', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let work: { dir: string; cleanup(): void };
  let recorder: Awaited<ReturnType<typeof startRecorder>>;
  let served: Served;
  let client: ServedApi;
  let browser: Browser;
  let page: Page;
  let taskId: string;
  const problems: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    api = await startMessagesApi({ apiKey: KEY });
    recorder = await startRecorder();
    home = tempDir('paddock-e2e-rich-');
    work = tempDir('paddock-e2e-rich-work-');
    served = await startServe({
      PADDOCK_HOME: home.dir,
      ANTHROPIC_BASE_URL: api.url,
      ANTHROPIC_API_KEY: KEY,
    });
    client = await connectApi(served.url);
    await client.call('settings:update', { onboarded: true });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await browser?.close();
    await served?.stop();
    await api?.close();
    await recorder?.close();
    home?.cleanup();
    work?.cleanup();
  });

  it('draws the table, the highlighted code and the diagram; the remote image is never fetched', async () => {
    const answer = [
      'Here is the summary.',
      '',
      '| Fruit | Count |',
      '|:------|------:|',
      '| pears | 3 |',
      '| apples | 10 |',
      '',
      '- [x] counted',
      '- [ ] shipped',
      '',
      '```python',
      'def total(xs):',
      '    return sum(xs)  # "<b>"',
      '```',
      '',
      '```mermaid',
      'graph TD',
      '  A[Pears] --> B[Basket]',
      '```',
      '',
      `The chart: ![sales chart](${recorder.url}/pixel.png?reader=me) <img src="${recorder.url}/raw.png">`,
      '',
      `Read [the guide](${DOCS}) next. <script>document.title = 'owned'</script>`,
    ].join('\n');
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: answer }],
        stop_reason: 'end_turn',
        usage: { input_tokens: 900, output_tokens: 200 },
      },
    });
    const grant = await client.call<{ id: string }>('grants:add', {
      path: work.dir,
      readOnly: false,
    });
    const task = await client.call<{ id: string }>('tasks:create', {
      prompt: 'Count the fruit',
      folders: [{ id: grant.id, readOnly: false }],
    });
    taskId = task.id;
    // What the task "changed" in its folder (found by modification time; no tool ran).
    fs.writeFileSync(path.join(work.dir, 'count.py'), 'def total(xs):\n    return sum(xs)\n');
    fs.writeFileSync(path.join(work.dir, 'notes.md'), '# Notes\n\n- pears: 3\n');
    fs.writeFileSync(path.join(work.dir, 'blob.bin'), Buffer.from([0, 1, 2, 3]));

    await page.goto(served.url);
    await page.evaluate((id) => (location.hash = `#/task/${id}`), taskId);
    await page.getByTestId('task-status').getByText('Done').waitFor({ timeout: 30_000 });
    const msg = page.getByTestId('msg-assistant').last();

    const table = msg.getByTestId('md-table');
    await table.waitFor();
    await expect(table.locator('th').allTextContents()).resolves.toEqual(['Fruit', 'Count']);
    await expect(table.locator('td.md-align-right').first().textContent()).resolves.toBe('3');
    await expect(msg.locator('input[type=checkbox]:checked').count()).resolves.toBe(1);

    const code = msg.getByTestId('md-code');
    await expect(code.locator('.hljs-keyword', { hasText: 'def' }).count()).resolves.toBe(1);
    await expect(code.locator('.hljs-comment').textContent()).resolves.toBe('# "<b>"');
    await expect(code.getByRole('button', { name: 'Copy' }).count()).resolves.toBe(1);

    const diagram = msg.getByTestId('md-mermaid');
    // The frame is made once it scrolls into view.
    await diagram.scrollIntoViewIfNeeded();
    await diagram.locator('iframe').waitFor({ timeout: 15_000 });
    await expect(diagram.locator('iframe').getAttribute('sandbox')).resolves.toBe('allow-scripts');

    // Raw HTML is text; the image is a link; nothing reached the recorder.
    await expect(msg.locator('script').count()).resolves.toBe(0);
    await expect(page.title()).resolves.not.toBe('owned');
    await expect(msg.locator('img').count()).resolves.toBe(0);
    await expect(msg.getByText(`<img src="${recorder.url}/raw.png">`).count()).resolves.toBe(1);
    const imageLink = msg.getByTestId('md-image-link');
    await expect(imageLink.textContent()).resolves.toContain('sales chart');
    await page.waitForTimeout(1000);
    expect(recorder.requests).toEqual([]);

    for (const colorScheme of ['light', 'dark'] as const) {
      await page.emulateMedia({ colorScheme });
      await page.screenshot({ path: path.join(shots, `rich-answer-${colorScheme}.png`) });
    }
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('shows the full address before a link opens, and opens nothing on Cancel', async () => {
    const msg = page.getByTestId('msg-assistant').last();
    const opened: string[] = [];
    page.context().on('page', (p) => opened.push(p.url()));

    await msg.getByTestId('md-link').click();
    const dialog = page.getByTestId('link-confirm');
    await dialog.waitFor();
    await expect(dialog.getByTestId('link-confirm-url').textContent()).resolves.toBe(DOCS);
    await expect(dialog.textContent()).resolves.toContain('docs.example.com');
    expect(page.url()).not.toContain('docs.example.com');
    await page.screenshot({ path: path.join(shots, 'rich-answer-link-confirm.png') });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });

    // The image's address too: only after the person says Open does anything reach it.
    await msg.getByTestId('md-image-link').click();
    await expect(dialog.getByTestId('link-confirm-url').textContent()).resolves.toBe(
      `${recorder.url}/pixel.png?reader=me`,
    );
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await page.waitForTimeout(300);
    expect(opened).toEqual([]);
    expect(recorder.requests).toEqual([]);

    await msg.getByTestId('md-image-link').click();
    const popup = page.context().waitForEvent('page');
    await dialog.getByRole('button', { name: 'Open' }).click();
    const tab = await popup;
    await tab.waitForLoadState();
    // Opened without an opener and without a referrer.
    await expect(tab.evaluate(() => window.opener === null)).resolves.toBe(true);
    await tab.close();
    // (The new tab asks for its favicon too.)
    expect(recorder.requests.filter((r) => !r.endsWith('/favicon.ico'))).toEqual([
      'GET /pixel.png?reader=me',
    ]);
    // Opened with no referrer: the app's address never reaches the site.
    const app = new URL(served.url).origin;
    expect(recorder.referers.filter((r) => r.startsWith(app))).toEqual([]);
  });

  it('opens a changed file: code highlighted, Markdown rendered in a frame, binary named', async () => {
    const files = page.getByTestId('files-changed');
    await files.getByText('paddock-e2e-rich-work-', { exact: false }).first().waitFor();
    const open = async (name: string) => {
      await files
        .getByRole('button', { name: new RegExp(`/${name.replace('.', '\\.')}$`) })
        .click();
      const preview = page.getByTestId('file-preview');
      await preview.waitFor();
      return preview;
    };

    let preview = await open('count.py');
    // The preview loads the file, then highlights it.
    await preview.locator('.hljs-keyword', { hasText: 'def' }).first().waitFor();
    await expect(
      preview.locator('.hljs-keyword', { hasText: 'def' }).count(),
    ).resolves.toBeGreaterThan(0);
    await page.screenshot({ path: path.join(shots, 'file-preview-code.png') });
    await preview.getByRole('button', { name: 'Close' }).click();
    await preview.waitFor({ state: 'detached' });

    preview = await open('notes.md');
    await preview.getByRole('tab', { name: 'Rendered' }).waitFor();
    await preview.locator('iframe').waitFor({ timeout: 15_000 });
    await preview.getByRole('tab', { name: 'Source' }).click();
    await preview.getByText('- pears: 3').waitFor();
    await page.keyboard.press('Escape');
    await preview.waitFor({ state: 'detached' });

    preview = await open('blob.bin');
    await preview.getByText(/binary file/).waitFor();
    await page.keyboard.press('Escape');

    expect(problems.filter((p) => /Content Security Policy|pageerror/.test(p))).toEqual([]);
  });
});
