import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { repoRoot } from '../helpers/cli.js';
import { startServe, type Served } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';

const shots = path.join(repoRoot, 'test-results');

describe('the served UI in Chromium', () => {
  let home: { dir: string; cleanup(): void };
  let served: Served;
  let browser: Browser;

  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    home = tempDir();
    served = await startServe({ PADDOCK_HOME: home.dir });
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    home?.cleanup();
  });

  it('prints exactly one line', () => {
    expect(served.lines).toHaveLength(1);
  });

  it.each(['light', 'dark'] as const)(
    'renders the shell with no console errors (%s)',
    async (colorScheme) => {
      const page = await browser.newPage({ colorScheme });
      const problems: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning')
          problems.push(`${m.type()}: ${m.text()} ${m.location().url}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));

      await page.goto(served.url);
      // A fresh data folder starts at the first-run screen (app.test.ts walks through it).
      await page.getByRole('heading', { name: 'Welcome to Paddock' }).waitFor();
      await page.getByLabel('Anthropic API key', { exact: true }).waitFor();
      // The token moved out of the address bar: into sessionStorage, and a cookie for the files.
      expect(page.url()).not.toContain('token=');
      await page.screenshot({ path: path.join(shots, `shell-${colorScheme}.png`), fullPage: true });
      expect(problems).toEqual([]);
      await page.close();
    },
  );

  it('keeps the API after a reload and in a new tab from the printed address, not on the cookie alone', async () => {
    const context = await browser.newContext();
    const problems: string[] = [];
    const watch = (page: Page) => {
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning')
          problems.push(`${m.type()}: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    };
    const welcome = (page: Page) =>
      page.getByRole('heading', { name: 'Welcome to Paddock' }).waitFor();

    const first = await context.newPage();
    watch(first);
    await first.goto(served.url);
    await welcome(first);
    expect(first.url()).not.toContain('token=');
    // The address no longer has the token: the tab's sessionStorage carries it for the socket.
    await first.reload();
    await welcome(first);

    const second = await context.newPage();
    watch(second);
    await second.goto(served.url);
    await welcome(second);
    expect(problems).toEqual([]);

    // Same browser, so the cookie is there, but the tab was never given the token: the files
    // load, the API socket does not open, and the page says how to get in.
    const bare = await context.newPage();
    const res = await bare.goto(served.url.replace(/\?token=.*/, ''));
    expect(res?.status()).toBe(200);
    await bare
      .getByRole('alert')
      .getByText(/open the address that `paddock serve` printed/i)
      .waitFor();
    await context.close();
  });

  it('shows nothing to a browser without the token', async () => {
    const page = await browser.newPage();
    const res = await page.goto(served.url.replace(/\?token=.*/, ''));
    expect(res?.status()).toBe(401);
    await page.close();
  });
});
