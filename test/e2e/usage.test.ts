import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DB_FILE } from '../../src/main/store/open.js';
import { launchChromium } from '../helpers/browser.js';
import { repoRoot } from '../helpers/cli.js';
import { connectApi, startServe, type Served, type ServedApi } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const shots = path.join(repoRoot, 'test-results');
const KEY = 'sk-ant-e2e-key-0123456789used';

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
 * Usage in Chromium against `paddock serve` and the local Messages API (the model calls no tool,
 * so no VM): a task's tokens with cache reads and writes, where its conversation was compacted,
 * the effort setting, this month's total, and an automation run stopped at its spend limit.
 */
describe('usage, effort and spend limits in the app', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let served: Served;
  let client: ServedApi;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    api = await startMessagesApi({ apiKey: KEY });
    home = tempDir('paddock-e2e-usage-');
    served = await startServe({
      PADDOCK_HOME: home.dir,
      ANTHROPIC_BASE_URL: api.url,
      ANTHROPIC_API_KEY: KEY,
    });
    client = await connectApi(served.url);
    await client.call('settings:update', { onboarded: true });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(served.url);
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await browser?.close();
    await served?.stop();
    await api?.close();
    home?.cleanup();
  });

  it('shows a task’s tokens as input · output · cache read · cache write, and where it was compacted', async () => {
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'The logs are quiet.' }],
        stop_reason: 'end_turn',
        usage: {
          input_tokens: 1200,
          output_tokens: 80,
          cache_read_input_tokens: 0,
          cache_creation_input_tokens: 15_000,
        },
      },
    });
    await page.getByRole('heading', { name: 'New task' }).waitFor();
    await page.getByLabel('What should the agent do?').fill('Summarise the logs');
    await page.getByRole('button', { name: 'Start task' }).click();
    await page.waitForURL(/#\/task\//);
    await page.getByTestId('task-status').getByText('Done').waitFor({ timeout: 30_000 });
    const taskId = decodeURIComponent(page.url().split('#/task/')[1]!);

    // The agent loop records a `context` event where it compacts the conversation, before the
    // next model call; one is written here as it would store it.
    const db = new Database(path.join(home.dir, DB_FILE));
    try {
      db.pragma('busy_timeout = 5000');
      db.prepare(
        `INSERT INTO session_events (session_id, seq, type, payload, created_at)
         SELECT ?, COALESCE(MAX(seq), 0) + 1, 'context', ?, ? FROM session_events WHERE session_id = ?`,
      ).run(
        taskId,
        JSON.stringify({
          action: 'compacted',
          tokensBefore: 182_000,
          tokensAfter: 14_000,
          message: 'The conversation so far was summarised to fit the context window.',
        }),
        Date.now(),
        taskId,
      );
    } finally {
      db.close();
    }
    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'Two errors, both from the backup job.' }],
        stop_reason: 'end_turn',
        usage: {
          input_tokens: 300,
          output_tokens: 40,
          cache_read_input_tokens: 15_000,
          cache_creation_input_tokens: 0,
        },
      },
    });
    await page.getByLabel('Follow-up message').fill('And the errors?');
    await page.getByRole('button', { name: 'Send' }).click();
    await page
      .getByTestId('msg-assistant')
      .getByText('Two errors, both from the backup job.')
      .waitFor({ timeout: 30_000 });
    await page.getByTestId('task-status').getByText('Done').waitFor();
    const usage = page.getByTestId('task-usage');
    await expect
      .poll(() => usage.textContent())
      .toBe('1.5k in · 120 out · 15k cache read · 15k cache write$0.09');
    await expect(usage.getByTestId('usage-cache-read').textContent()).resolves.toBe(
      '15k cache read',
    );

    // Reopened from the store, the divider sits between the two turns.
    await page.reload();
    const divider = page.getByTestId('context-divider');
    await divider.waitFor();
    await expect(divider.textContent()).resolves.toBe('Context compacted here · 182k → 14k tokens');
    await expect(divider.getAttribute('role')).resolves.toBe('separator');
    const order = await page
      .getByTestId('conversation')
      .locator('[data-testid="msg-user"], [data-testid="context-divider"]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')));
    expect(order).toEqual(['msg-user', 'context-divider', 'msg-user']);
    await shoot(page, 'usage-task');
  }, 90_000);

  it('saves the effort, and shows this month’s total with last month’s', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByTestId('settings').waitFor();
    const effort = page.getByLabel('Effort');
    await expect(effort.inputValue()).resolves.toBe('high');
    await expect(
      effort.locator('option').evaluateAll((os) => os.map((o) => o.textContent)),
    ).resolves.toEqual(['Low', 'Medium', 'High', 'Extra high', 'Max']);
    await page.getByText('How hard the model works on each reply').waitFor();
    await effort.selectOption({ label: 'Extra high' });
    await page.getByText('Effort saved; it applies to new replies.').waitFor();
    expect(await client.call<{ effort: string }>('settings:get')).toMatchObject({
      effort: 'xhigh',
    });

    const month = page.getByTestId('usage-this-month');
    await expect
      .poll(() => month.textContent())
      .toMatch(/^This month \w+ \d{4}1,50012015,00015,000\$0\.09$/);
    await expect(page.getByTestId('usage-last-month').textContent()).resolves.toMatch(
      /^Last month \w+ \d{4}0000\$0\.00$/,
    );
    await page.getByTestId('usage-summary').scrollIntoViewIfNeeded();
    await shoot(page, 'usage-settings');

    // Still saved after a reload: it came from the core, not the page's memory.
    await page.reload();
    await page.getByTestId('settings').waitFor();
    await expect(page.getByLabel('Effort').inputValue()).resolves.toBe('xhigh');
  }, 60_000);

  it('stops an automation run at its spend limit and shows each run’s tokens and cost', async () => {
    await page.getByRole('link', { name: 'Automations' }).click();
    await page.getByRole('button', { name: 'New automation' }).click();
    const form = page.getByTestId('automation-form');
    await form.getByLabel('Name').fill('Log digest');
    await form.getByLabel('What should the agent do each time?').fill('Summarise the logs');
    await form.getByLabel('When').fill('every day at 9:00');
    await expect.poll(() => page.getByTestId('schedule-preview').locator('li').count()).toBe(5);
    const limit = form.getByLabel('Spend limit per run (US dollars)');
    await limit.fill('nothing');
    await page.getByRole('button', { name: 'Create automation' }).click();
    await form
      .getByRole('alert')
      .getByText('The spend limit must be a positive number of dollars')
      .waitFor();
    await limit.fill('0.02');
    await shoot(page, 'usage-automation-form');
    await page.getByRole('button', { name: 'Create automation' }).click();
    const card = page.getByTestId('automation-card');
    await card.getByText('Log digest').waitFor();
    await expect(card.getByTestId('automation-spend-limit').textContent()).resolves.toContain(
      'Limit $0.02 per run',
    );

    // $0.054 on the first call (see test/unit/usage-core.test.ts), past the $0.02 limit.
    api.enqueue({
      reply: {
        content: [
          { type: 'text', text: 'Reading the logs.' },
          { type: 'tool_use', name: 'bash', input: { command: 'ls /var/log' } },
        ],
        stop_reason: 'tool_use',
        usage: {
          input_tokens: 1000,
          output_tokens: 1000,
          cache_creation_input_tokens: 2000,
          cache_read_input_tokens: 50_000,
        },
      },
    });
    await card.getByRole('button', { name: 'Run now' }).click();
    await card.getByRole('button', { name: 'History' }).click();
    const row = page.getByTestId('run-row');
    await row.getByTestId('run-status').getByText('Failed').waitFor({ timeout: 30_000 });
    await expect(row.locator('.run-detail').textContent()).resolves.toMatch(
      /^This run reached its spend limit of \$0\.02 \(spent \$0\.05\) and was stopped\. Raise the limit in the automation, or run it again\./,
    );
    await expect(row.getByTestId('run-usage').textContent()).resolves.toBe(
      '1.0k in · 1.0k out · 50k cache read · 2.0k cache write · $0.05',
    );
    await expect
      .poll(() => card.getByTestId('automation-usage').textContent())
      .toContain('All runs: 1.0k in · 1.0k out · 50k cache read · 2.0k cache write · $0.05');
    await shoot(page, 'usage-automation-history');

    await page.getByRole('link', { name: /Inbox/ }).click();
    await page
      .getByTestId('inbox-item')
      .getByText(/Failed: This run reached its spend limit of \$0\.02/)
      .first()
      .waitFor();
    expect(problems).toEqual([]);
  }, 90_000);
});
