import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PaddockApi, Settings } from '../../src/shared/api.js';
import { DB_FILE } from '../../src/main/store/open.js';
import { launchChromium } from '../helpers/browser.js';
import { repoRoot } from '../helpers/cli.js';
import { connectApi, startServe, type Served, type ServedApi } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const shots = path.join(repoRoot, 'test-results');
const KEY = 'sk-ant-e2e-key-0123456789scrt';
/** The secret's value: it must appear nowhere the page can show or read back. */
const VALUE = 'ghp_e2eValueThatMustNeverShow0123456789';
const VALUE_2 = 'ghp_e2eReplacedValueNeverShown9876543210';

/** Screenshots the page as it is, in the light and the dark theme. */
async function shoot(page: Page, name: string): Promise<void> {
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    await page.screenshot({ path: path.join(shots, `ui-${name}-${colorScheme}.png`) });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

/**
 * Secrets and pinned hosts in Chromium against `paddock serve` and the local Messages API (the
 * model calls no tool, so no VM): a secret added in Settings is listed by name, variable and
 * hosts but its value is nowhere in the page or the API's answers; a pinned host; choosing the
 * secret for a task and an automation; a task's network list with what the proxy did; removal.
 */
describe('secrets and pinned hosts in the app', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let served: Served;
  let client: ServedApi;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  /** Nothing the page holds (its HTML, its inputs' values) contains a secret's value. */
  async function expectNoValueInPage(): Promise<void> {
    const html = await page.content();
    expect(html).not.toContain(VALUE);
    expect(html).not.toContain(VALUE_2);
    const inputs = await page
      .locator('input, textarea')
      .evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
    expect(inputs.join('\n')).not.toMatch(/ghp_e2e/);
  }

  /** Opens a page from the sidebar (the new task page's hint links to Settings too). */
  async function navTo(name: 'Settings' | 'Automations'): Promise<void> {
    await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name }).click();
  }

  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    api = await startMessagesApi({ apiKey: KEY });
    home = tempDir('paddock-e2e-secrets-');
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
    await page.goto(served.url);
    await page.getByRole('heading', { name: 'New task' }).waitFor();
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await browser?.close();
    await served?.stop();
    await api?.close();
    home?.cleanup();
  });

  it('adds a secret in Settings, lists it with its hosts, and never shows its value', async () => {
    // With no secret stored, the new task page only points to Settings.
    await page.getByTestId('secrets-hint').waitFor();
    await expect(page.getByTestId('secret-chooser').count()).resolves.toBe(0);

    await navTo('Settings');
    const card = page.getByTestId('secrets-card');
    await card.getByTestId('secrets-empty').waitFor();
    await expect(card.getByTestId('secrets-store').textContent()).resolves.not.toBe('');
    await card
      .getByText("The VM only sees a placeholder; Paddock's proxy swaps in the value")
      .waitFor();

    const value = card.getByLabel('Value');
    await expect(value.getAttribute('type')).resolves.toBe('password');
    await expect(value.getAttribute('autocomplete')).resolves.toBe('off');
    await expect(card.getByLabel('Pin these hosts to my account').isChecked()).resolves.toBe(true);
    await expect(card.getByLabel('Also replace in request bodies').isChecked()).resolves.toBe(
      false,
    );

    // A mistake reads as the contract's sentence, in the card.
    await card.getByLabel('Name', { exact: true }).fill('github');
    await expect(card.getByLabel('Environment variable').getAttribute('placeholder')).resolves.toBe(
      'GITHUB',
    );
    await value.fill(VALUE);
    await card.getByRole('button', { name: 'Add secret' }).click();
    await card.getByRole('alert').getByText('Say which hosts it may be sent to.').waitFor();

    // The core's refusal too, in its words; the value stays to be sent again.
    await card.getByLabel('Environment variable').fill('GITHUB_TOKEN');
    const hosts = card.getByLabel('Hosts it may be sent to');
    await hosts.fill('api.github.com\n*.githubusercontent.com');
    await card.getByRole('button', { name: 'Add secret' }).click();
    await card
      .getByRole('alert')
      .getByText('*.githubusercontent.com would allow every site')
      .waitFor();
    await expect(value.inputValue()).resolves.toBe(VALUE);

    await hosts.fill('api.github.com, uploads.github.com');
    await card.getByRole('button', { name: 'Add secret' }).click();

    const row = card.getByTestId('secret-row').filter({ hasText: 'github' });
    await row.waitFor();
    await expect(row.getByTestId('secret-hosts').textContent()).resolves.toBe(
      'Sent only to api.github.com, uploads.github.com',
    );
    const text = (await row.textContent()) ?? '';
    expect(text).toContain('GITHUB_TOKEN');
    expect(text).toContain('pinned');
    expect(text).toContain('Added in Settings');
    expect(text).not.toContain('also in request bodies');
    await expect(value.inputValue()).resolves.toBe('');
    await expectNoValueInPage();

    // What the page's own API answers holds no value either.
    const listed = await page.evaluate(() =>
      (window as unknown as { paddock: PaddockApi }).paddock['secrets:list']({}),
    );
    expect(JSON.stringify(listed)).not.toContain(VALUE);
    expect(listed.ok).toBe(true);
    if (!listed.ok) return;
    expect(listed.value.secrets.map((s) => s.name)).toEqual(['github']);
    expect(Object.keys(listed.value.secrets[0]!)).not.toContain('value');
    expect(listed.value.store.usable).toBe(true);

    // The same name again asks before replacing; "Keep it" leaves it as it was.
    await card.getByLabel('Name', { exact: true }).fill('github');
    await card.getByLabel('Environment variable').fill('GITHUB_TOKEN');
    await hosts.fill('api.github.com');
    await value.fill(VALUE_2);
    await card.getByLabel('Also replace in request bodies').check();
    await card.getByRole('button', { name: 'Add secret' }).click();
    const confirm = card.getByRole('group', { name: 'Confirm replacing' });
    await confirm.getByText('A secret named “github” exists.').waitFor();
    await card.evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await shoot(page, 'secrets-replace');
    await confirm.getByRole('button', { name: 'Keep it' }).click();
    await expect(row.textContent()).resolves.not.toContain('also in request bodies');
    await card.getByRole('button', { name: 'Add secret' }).click();
    await confirm.getByRole('button', { name: 'Replace' }).click();
    await row.getByText('also in request bodies').waitFor();
    await expect(row.getByTestId('secret-hosts').textContent()).resolves.toBe(
      'Sent only to api.github.com',
    );
    await expect(value.inputValue()).resolves.toBe('');
    await expectNoValueInPage();
    await card.evaluate((e) => e.scrollIntoView({ block: 'start' }));
    await shoot(page, 'secrets-settings');
  });

  it('pins a host to the person’s account', async () => {
    const pinned = page.getByTestId('pinned-hosts-card');
    await pinned
      .getByText('Requests to these hosts may carry only your secrets; any other credential is')
      .waitFor();
    await pinned.getByTestId('pinned-hosts-empty').waitFor();
    await pinned.getByLabel('Host to pin').fill('api.openai.com');
    await pinned.getByRole('button', { name: 'Pin host' }).click();
    await pinned.getByTestId('pinned-hosts').getByText('api.openai.com').waitFor();
    const s = await client.call<Settings>('settings:get');
    expect(s.pinnedHosts).toEqual(['api.openai.com']);
    // Typed into the network allowlist's list it is not.
    expect(s.networkAllowlist).toEqual([]);
    await pinned.evaluate((e) => e.scrollIntoView({ block: 'center' }));
    await shoot(page, 'secrets-pinned');
  });

  it('chooses the secret for a task, whose network list shows what the proxy did', async () => {
    await page.getByRole('button', { name: 'New task' }).click();
    const chooser = page.getByTestId('secret-chooser');
    const box = chooser.getByRole('checkbox', { name: /github/ });
    await box.waitFor();
    await chooser.getByText('GITHUB_TOKEN').waitFor();
    await box.check();
    await shoot(page, 'secrets-new-task');

    api.enqueue({
      reply: { content: [{ type: 'text', text: 'Checked the issues.' }], stop_reason: 'end_turn' },
    });
    await page.getByLabel('What should the agent do?').fill('List my open issues');
    await page.getByRole('button', { name: 'Start task' }).click();
    await page.waitForURL(/#\/task\//);
    await page.getByTestId('task-status').getByText('Done').waitFor({ timeout: 30_000 });
    const taskId = decodeURIComponent(page.url().split('#/task/')[1]!);

    // The task keeps the chosen name; the proxy's decisions are written as it would log them.
    const db = new Database(path.join(home.dir, DB_FILE));
    try {
      db.pragma('busy_timeout = 5000');
      const row = db.prepare('SELECT secrets FROM sessions WHERE id = ?').get(taskId) as {
        secrets: string;
      };
      expect(JSON.parse(row.secrets)).toEqual(['github']);
      const log = db.prepare(
        `INSERT INTO egress_log (at, session_id, method, host, port, allowed, reason, secrets,
         pin_refused, intercepted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      const at = Date.now();
      log.run(at, taskId, 'GET', 'api.github.com', 443, 1, 'secret host', '["github"]', 0, 1);
      log.run(at + 1, taskId, 'POST', 'api.openai.com', 443, 0, 'pinned', null, 1, 1);
    } finally {
      db.close();
    }
    await page.reload();
    const net = page.getByTestId('network-log');
    await net.waitFor();
    const granted = net.getByTestId('network-decision').filter({ hasText: 'api.github.com:443' });
    await expect(granted.textContent()).resolves.toMatch(/^allowed api\.github\.com:443 GET/);
    await expect(granted.getByTestId('secret-tag').textContent()).resolves.toBe('secret github');
    await expect(granted.getByTestId('intercepted').getAttribute('title')).resolves.toBe(
      "Paddock's proxy terminated TLS for this host because it has a secret or is pinned",
    );
    const refused = net.getByTestId('network-decision').filter({ hasText: 'api.openai.com:443' });
    await expect(refused.getByTestId('pin-refused').textContent()).resolves.toBe(
      'refused: pinned to your account',
    );
    await expect(refused.getByTestId('secret-tag').count()).resolves.toBe(0);
    await expectNoValueInPage();
    await shoot(page, 'secrets-task');
  }, 60_000);

  it('chooses the secret for an automation, and shows it on the automation', async () => {
    await navTo('Automations');
    await page
      .getByRole('button', { name: /New automation|Create an automation/ })
      .first()
      .click();
    const form = page.getByTestId('automation-form');
    await form.getByLabel('Name').fill('Issue digest');
    await form.getByLabel('What should the agent do each time?').fill('Summarise new issues');
    await form
      .getByTestId('secret-chooser')
      .getByRole('checkbox', { name: /github/ })
      .check();
    await form.getByRole('button', { name: 'Create automation' }).click();
    const card = page.getByTestId('automation-card').filter({ hasText: 'Issue digest' });
    await expect(
      card.getByTestId('automation-secrets').getByTestId('secret-tag').textContent(),
    ).resolves.toBe('secret github');
    await card.getByRole('button', { name: 'Edit' }).click();
    await expect(
      form
        .getByTestId('secret-chooser')
        .getByRole('checkbox', { name: /github/ })
        .isChecked(),
    ).resolves.toBe(true);
    await form.getByRole('button', { name: 'Cancel' }).click();
    await shoot(page, 'secrets-automation');
  });

  it('removes the secret after a confirm', async () => {
    await navTo('Settings');
    const card = page.getByTestId('secrets-card');
    const row = card.getByTestId('secret-row').filter({ hasText: 'github' });
    await row.getByRole('button', { name: 'Remove github' }).click();
    const confirm = row.getByRole('group', { name: 'Confirm removing github' });
    await confirm.getByRole('button', { name: 'Keep it' }).click();
    await expect(row.count()).resolves.toBe(1);
    await row.getByRole('button', { name: 'Remove github' }).click();
    await confirm.getByRole('button', { name: 'Remove' }).click();
    await card.getByTestId('secrets-empty').waitFor();
    await card.getByText('Secret “github” removed.').waitFor();
    await expect(client.call<{ secrets: unknown[] }>('secrets:list')).resolves.toMatchObject({
      secrets: [],
    });

    await page.getByRole('button', { name: 'New task' }).click();
    await page.getByTestId('secrets-hint').waitFor();
    await expect(page.getByTestId('secret-chooser').count()).resolves.toBe(0);
    expect(problems).toEqual([]);
  });
});
