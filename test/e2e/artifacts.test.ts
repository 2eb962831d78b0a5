import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContext, FrameLocator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Store } from '../../src/main/store/store.js';
import { launchChromium } from '../helpers/browser.js';
import { repoRoot } from '../helpers/cli.js';
import { startServe, type Served } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const shots = path.join(repoRoot, 'test-results');
const KEY = 'sk-ant-e2e-key-0123456789arts';

/** Screenshots the page as it is, in the light and the dark theme. */
async function shoot(page: Page, name: string, settle?: () => Promise<unknown>): Promise<void> {
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await settle?.();
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    await page.screenshot({ path: path.join(shots, `ui-artifacts-${name}-${colorScheme}.png`) });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

const MARKDOWN_V1 = [
  '# Quarterly notes',
  '',
  '| Region | Sales |',
  '|---|---|',
  '| North | 12 |',
  '| South | 9 |',
  '',
  '```mermaid',
  'graph LR',
  '  A[Plan] --> B[Ship]',
  '```',
  '',
  'The area grows as $x^2$.',
  '',
].join('\n');
const MARKDOWN_V2 = MARKDOWN_V1.replace('| South | 9 |', '| South | 14 |\n| East | 5 |');

const REACT_CHART = `import { useEffect, useRef } from 'react';
import Chart from 'chart.js/auto';

export default function SalesChart() {
  const ref = useRef(null);
  useEffect(() => {
    const chart = new Chart(ref.current, {
      type: 'bar',
      data: { labels: ['Q1', 'Q2', 'Q3'], datasets: [{ label: 'Sales', data: [12, 19, 7] }] },
      options: { animation: false },
    });
    return () => chart.destroy();
  }, []);
  return (
    <div>
      <h2>Sales by quarter</h2>
      <canvas ref={ref} width="480" height="240" />
    </div>
  );
}
`;

/** One create_artifact per kind, with what each must show once rendered in its frame. */
const ARTIFACTS: {
  title: string;
  kind: string;
  content: string;
  check(f: FrameLocator): Promise<unknown>;
}[] = [
  {
    title: 'Welcome page',
    kind: 'html',
    content:
      '<!doctype html><html><body><h1 id="hello">Hello from HTML</h1><script>document.getElementById("hello").dataset.ran = "yes";</script></body></html>',
    check: (f) => f.locator('#hello[data-ran="yes"]').waitFor(),
  },
  {
    title: 'Logo',
    kind: 'svg',
    content:
      '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="100"><rect width="160" height="100" rx="12" fill="#2f6f4f"/><circle cx="80" cy="50" r="30" fill="#e1efe6"/></svg>',
    check: (f) => f.locator('img').waitFor(),
  },
  {
    title: 'Quarterly notes',
    kind: 'markdown',
    content: MARKDOWN_V1,
    check: async (f) => {
      await f.locator('table td', { hasText: 'North' }).waitFor();
      await f.locator('.katex').first().waitFor();
      await f.locator('pre.mermaid svg, .mermaid svg').first().waitFor({ timeout: 20_000 });
    },
  },
  {
    title: 'Hand-off',
    kind: 'mermaid',
    content: 'sequenceDiagram\n  Alice->>Bob: Hello\n  Bob-->>Alice: Hi\n',
    check: (f) => f.locator('svg').first().waitFor({ timeout: 20_000 }),
  },
  {
    title: 'Sales chart',
    kind: 'react',
    content: REACT_CHART,
    check: async (f) => {
      await f.getByText('Sales by quarter').waitFor();
      await f.locator('canvas').waitFor();
    },
  },
  {
    title: 'fib.py',
    kind: 'code',
    content: 'def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n',
    check: (f) => f.locator('code.hljs span').first().waitFor(),
  },
];

/**
 * Artifacts in the app, in Chromium against `paddock serve` and the local Messages API: a task
 * makes one artifact of every kind and then revises one; each renders in the panel; versions
 * step back and forth with a line diff; the export is a standalone file with nothing to fetch.
 * create_artifact runs on the host, so no VM is involved.
 */
describe('artifacts in the app', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let served: Served;
  let browser: Browser;
  let ctx: BrowserContext;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    api = await startMessagesApi({ apiKey: KEY });
    home = tempDir('paddock-e2e-artifacts-');
    const store = Store.open(home.dir);
    store.settings.update({ onboarded: true, model: 'claude-opus-5-5' });
    store.dispose();
    served = await startServe({
      PADDOCK_HOME: home.dir,
      ANTHROPIC_BASE_URL: api.url,
      ANTHROPIC_API_KEY: KEY,
    });
    browser = await launchChromium();
    ctx = await browser.newContext({
      viewport: { width: 1440, height: 900 },
      acceptDownloads: true,
    });
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], {
      origin: new URL(served.url).origin,
    });
    page = await ctx.newPage();
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    await page.goto(served.url);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    await api?.close();
    home?.cleanup();
  });

  const panel = () => page.getByTestId('artifacts-panel');
  const frame = () => page.frameLocator('.artifacts-panel iframe');
  const version = () => panel().getByTestId('artifact-version');

  it('shows every kind the agent made, in the panel and as a card where it was made', async () => {
    api.enqueue(
      {
        reply: {
          content: [
            { type: 'text', text: 'Here is one of each.' },
            ...ARTIFACTS.map((a) => ({
              type: 'tool_use' as const,
              name: 'create_artifact',
              input: { title: a.title, kind: a.kind, content: a.content },
            })),
          ],
          stop_reason: 'tool_use',
        },
      },
      {
        reply: { content: [{ type: 'text', text: 'All six are saved.' }], stop_reason: 'end_turn' },
      },
    );
    await page.getByLabel('What should the agent do?').fill('Make one artifact of every kind');
    await page.getByRole('button', { name: 'Start task' }).click();
    await page.getByTestId('task-status').getByText('Done').waitFor({ timeout: 60_000 });
    // The panel lists the task's artifacts once it has asked for them: wait for the last one.
    await panel()
      .getByTestId('artifact-item')
      .nth(ARTIFACTS.length - 1)
      .waitFor();
    await expect(page.getByTestId('artifact-card').count()).resolves.toBe(ARTIFACTS.length);
    await expect(panel().getByTestId('artifact-item').count()).resolves.toBe(ARTIFACTS.length);

    for (const a of ARTIFACTS) {
      await panel().getByTestId('artifact-item').filter({ hasText: a.title }).click();
      await expect(
        panel()
          .getByTestId('artifact-item')
          .filter({ hasText: a.title })
          .getAttribute('aria-current'),
      ).resolves.toBe('true');
      await a.check(frame()).catch(async (e: Error) => {
        const body = await frame()
          .locator('body')
          .evaluate((b) => (b.textContent ?? '').slice(0, 500))
          .catch(() => '(no frame)');
        throw new Error(`${a.kind} did not render (${e.message}); the frame shows: ${body}`);
      });
      await shoot(page, a.kind, () => a.check(frame()));
    }

    // A card in the conversation opens its artifact in the panel.
    await page.getByTestId('artifact-card').filter({ hasText: 'Logo' }).click();
    await expect(
      panel().getByTestId('artifact-item').filter({ hasText: 'Logo' }).getAttribute('aria-current'),
    ).resolves.toBe('true');
    await frame().locator('img').waitFor();
  }, 240_000);

  it('follows a revision, steps through versions, and shows the lines that changed', async () => {
    const notes = panel().getByTestId('artifact-item').filter({ hasText: 'Quarterly notes' });
    const id = (await notes.getAttribute('data-artifact'))!;
    expect(id).toMatch(/^art_/);
    api.enqueue(
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              name: 'create_artifact',
              input: {
                title: 'Quarterly notes',
                kind: 'markdown',
                content: MARKDOWN_V2,
                artifact_id: id,
              },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      { reply: { content: [{ type: 'text', text: 'Updated.' }], stop_reason: 'end_turn' } },
    );
    // Another artifact is shown, so following the revision is visible.
    await panel().getByTestId('artifact-item').filter({ hasText: 'fib.py' }).click();
    await page.getByLabel('Follow-up message').fill('South was 14, and add East');
    await page.getByRole('button', { name: 'Send' }).click();
    // The card of the new version appears live, where the revision was made.
    await page
      .locator(`[data-testid="artifact-card"][data-artifact="${id}"][data-version="2"]`)
      .waitFor({ timeout: 60_000 });
    await page.getByText('Updated.').waitFor({ timeout: 60_000 });

    // The panel followed it: the revised artifact, at its new version.
    await version().getByText('v2 of 2').waitFor();
    await expect(notes.getAttribute('aria-current')).resolves.toBe('true');
    await frame().locator('table td', { hasText: 'East' }).waitFor();

    await panel().getByTestId('artifact-prev').click();
    await version().getByText('v1 of 2').waitFor();
    await frame().locator('table td', { hasText: 'South' }).waitFor();
    await expect(frame().locator('table td', { hasText: 'East' }).count()).resolves.toBe(0);
    await shoot(page, 'version-1', () => frame().locator('.katex').first().waitFor());
    await panel().getByTestId('artifact-next').click();
    await version().getByText('v2 of 2').waitFor();
    await frame().locator('table td', { hasText: 'East' }).waitFor();

    await panel().getByTestId('artifact-diff-toggle').click();
    const diff = panel().getByTestId('artifact-diff');
    await diff.waitFor();
    await expect(panel().getByTestId('artifact-diff-summary').textContent()).resolves.toMatch(
      /\+2\s*−1 lines/,
    );
    await expect(diff.locator('.diff-line.del').allTextContents()).resolves.toEqual([
      expect.stringContaining('| South | 9 |'),
    ]);
    await expect(diff.locator('.diff-line.add').allTextContents()).resolves.toEqual([
      expect.stringContaining('| South | 14 |'),
      expect.stringContaining('| East | 5 |'),
    ]);
    await shoot(page, 'diff');
    await panel().getByTestId('artifact-diff-toggle').click();
    await frame().locator('table td', { hasText: 'East' }).waitFor();

    // Reopened from the store, the revision's card and the panel are the same.
    await page.reload();
    await version().getByText('v2 of 2').waitFor();
    await expect(page.getByTestId('artifact-card').count()).resolves.toBe(ARTIFACTS.length + 1);
  }, 180_000);

  it('copies, saves and exports a standalone file with nothing to fetch', async () => {
    await panel().getByTestId('artifact-copy').click();
    await panel().getByRole('status').getByText('Copied.').waitFor();
    await expect(page.evaluate('navigator.clipboard.readText()')).resolves.toBe(MARKDOWN_V2);

    const [saved] = await Promise.all([
      page.waitForEvent('download'),
      panel().getByTestId('artifact-save').click(),
    ]);
    expect(saved.suggestedFilename()).toBe('quarterly-notes-v2.md');
    expect(fs.readFileSync((await saved.path())!, 'utf8')).toBe(MARKDOWN_V2);

    for (const a of ARTIFACTS) {
      await panel().getByTestId('artifact-item').filter({ hasText: a.title }).click();
      const [download] = await Promise.all([
        page.waitForEvent('download'),
        panel().getByTestId('artifact-export').click(),
      ]);
      expect(download.suggestedFilename()).toMatch(/-v\d+\.html$/);
      const html = fs.readFileSync((await download.path())!, 'utf8');
      expect(html).toContain('Content-Security-Policy');
      // SECURITY: nothing in the file loads from the network.
      expect(html).not.toMatch(/<script\b[^>]*\bsrc\s*=\s*["']?\s*https?:/i);
      expect(html).not.toMatch(/<link\b[^>]*\bhref\s*=\s*["']?\s*https?:/i);
      expect(html).not.toMatch(/@import\s+(url\()?["']?https?:/i);
    }

    // Full view: the panel over the whole window, rendered larger; Escape goes back.
    await panel().getByTestId('artifact-item').filter({ hasText: 'Sales chart' }).click();
    await frame().locator('canvas').waitFor();
    const small = (await frame().locator('body').boundingBox())!;
    await panel().getByTestId('artifact-open').click();
    await expect(panel().getAttribute('class')).resolves.toContain('full');
    await frame().getByText('Sales by quarter').waitFor();
    await expect
      .poll(async () => (await frame().locator('body').boundingBox())!.width)
      .toBeGreaterThan(small.width * 1.5);
    await shoot(page, 'full-view', () => frame().locator('canvas').waitFor());
    await page.keyboard.press('Escape');
    await expect(panel().getAttribute('class')).resolves.not.toContain('full');

    expect(problems.filter((p) => !/artifact/i.test(p))).toEqual([]);
  }, 120_000);
});
