import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { repoRoot } from '../helpers/cli.js';
import { startServe, type Served } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';
import { ensureTestImage, vmTestHome } from '../helpers/vm-image.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';

const shots = path.join(repoRoot, 'test-results');
const KEY = 'sk-ant-e2e-key-0123456789wxyz';
/** A VM boot under TCG plus a few tool calls. */
const TASK_TIMEOUT = 150_000;

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
 * The app in Chromium against `paddock serve`, backed by the real core, a real VM (the test
 * image) and the local Messages API: first run, a task on a granted folder, a network approval,
 * stop mid-command, and the pages' empty states, each screenshotted in both themes.
 */
describe('the Paddock app in a browser', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let work: { dir: string; cleanup(): void };
  let served: Served;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];

  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    await ensureTestImage();
    api = await startMessagesApi({ apiKey: KEY });
    // A fresh database for clean pages, sharing the test image folder (built once).
    home = tempDir('paddock-e2e-home-');
    fs.symlinkSync(path.join(vmTestHome, 'images'), path.join(home.dir, 'images'));
    work = tempDir('paddock-e2e-work-');
    served = await startServe({
      PADDOCK_HOME: home.dir,
      ANTHROPIC_BASE_URL: api.url,
      ANTHROPIC_API_KEY: '',
    });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    await page.goto(served.url);
  }, 900_000);
  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    await api?.close();
    home?.cleanup();
    work?.cleanup();
  });

  it('first run: checks the API key, picks a model, checks the VM', async () => {
    await page.getByTestId('first-run').waitFor();
    await shoot(page, 'first-run-key');
    const keyInput = page.getByLabel('Anthropic API key', { exact: true });
    await keyInput.fill('sk-ant-not-the-right-key');
    await page.getByRole('button', { name: 'Check and save' }).click();
    await expect(page.getByTestId('key-error').textContent()).resolves.toMatch(
      /Anthropic refused this API key/,
    );
    await keyInput.fill(KEY);
    await page.getByRole('button', { name: 'Check and save' }).click();
    await page.getByRole('heading', { name: 'Choose a model' }).waitFor();
    await page.getByLabel('claude-sonnet-5-5').check();
    await shoot(page, 'first-run-model');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByTestId('doctor').waitFor({ timeout: 120_000 });
    const image = page.getByTestId('doctor').locator('li', { hasText: 'Guest image' });
    await expect(image.getAttribute('class')).resolves.toContain('ok');
    // image:build streams image:progress; with the image built it reports ready at once.
    await page.evaluate("window.paddock['image:build']({})");
    await page.getByRole('progressbar', { name: 'Image ready' }).waitFor();
    await expect(page.getByRole('progressbar').getAttribute('aria-valuenow')).resolves.toBe('100');
    await shoot(page, 'first-run-vm');
    await page.getByRole('button', { name: 'Start using Paddock' }).click();
    await page.getByRole('heading', { name: 'New task' }).waitFor();
    // The key was checked against the API, and only its masked form reached the page.
    expect(api.sideRequests.some((r) => r.path === '/v1/models' && r.status === 200)).toBe(true);
    expect(await page.content()).not.toContain(KEY);
  }, 180_000);

  it('runs a task on a granted folder to the end; the file lands on the host', async () => {
    fs.writeFileSync(path.join(work.dir, 'notes.txt'), 'pears\napples\n');
    api.enqueue(
      {
        reply: {
          content: [
            { type: 'text', text: 'I will sort your notes.' },
            {
              type: 'tool_use',
              name: 'bash',
              input: { command: 'sort notes.txt | tee sorted.txt; seq 1 3000' },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              name: 'write_file',
              input: { path: 'summary.md', content: '# Notes\n\napples, pears\n' },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      {
        delayMs: 5,
        reply: {
          content: [{ type: 'text', text: 'Sorted into sorted.txt and wrote summary.md.' }],
          stop_reason: 'end_turn',
          usage: { input_tokens: 2400, output_tokens: 120 },
        },
      },
    );
    await page.getByLabel('Folder path on this machine').fill(work.dir);
    await page.getByRole('button', { name: 'Add folder' }).click();
    await page.getByTestId('chosen-folders').getByText(fs.realpathSync(work.dir)).waitFor();
    // Reviewed is the default for a read-write folder; this task writes straight to it.
    await expect(page.getByTestId('folder-mode').inputValue()).resolves.toBe('review');
    await page.getByTestId('folder-mode').selectOption('direct');
    await page.getByLabel('What should the agent do?').fill('Sort my notes and summarise them');
    await shoot(page, 'new-task');
    await page.getByRole('button', { name: 'Start task' }).click();
    await page.waitForURL(/#\/task\//);
    await page.getByTestId('task-status').getByText('Done').waitFor({ timeout: TASK_TIMEOUT });
    expect(fs.readFileSync(path.join(work.dir, 'summary.md'), 'utf8')).toBe(
      '# Notes\n\napples, pears\n',
    );
    expect(fs.readFileSync(path.join(work.dir, 'sorted.txt'), 'utf8')).toBe('apples\npears\n');
    const cards = page.getByTestId('tool-card');
    await expect(cards.count()).resolves.toBe(2);
    await expect(cards.first().getByTestId('tool-state').textContent()).resolves.toBe('Exit 0');
    // The 3,000-line output is virtualised: far fewer rows are in the page than lines.
    const rows = await cards.first().locator('.vrow').count();
    expect(rows).toBeGreaterThan(5);
    expect(rows).toBeLessThan(100);
    await page
      .getByTestId('files-changed')
      .getByText(/summary\.md/)
      .waitFor();
    await expect(page.getByTestId('task-usage').textContent()).resolves.toMatch(
      /^[\d.]+k? in · [\d.]+k? out · [\d.]+k? cache read · [\d.]+k? cache write\$\d+\.\d\d+$/,
    );
    await expect(page.getByTestId('task-folders').textContent()).resolves.toMatch(
      /read-write\s*direct/,
    );
    await expect(page.getByTestId('msg-assistant').last().textContent()).resolves.toBe(
      'Sorted into sorted.txt and wrote summary.md.',
    );
    await shoot(page, 'task');
  }, 200_000);

  it('asks before reaching a host outside the allowlist; deny and always are reflected and logged', async () => {
    api.enqueue(
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              name: 'bash',
              input: {
                command:
                  'curl -sS -m 30 -o /dev/null -w "%{http_code}" http://evil.example/collect',
              },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      {
        reply: {
          content: [
            {
              type: 'tool_use',
              name: 'bash',
              input: { command: 'curl -sS -m 30 -o /dev/null https://docs.example/ || true' },
            },
          ],
          stop_reason: 'tool_use',
        },
      },
      {
        reply: {
          content: [{ type: 'text', text: 'Done with the network.' }],
          stop_reason: 'end_turn',
        },
      },
    );
    await page.getByRole('button', { name: 'New task' }).click();
    await page.getByLabel('What should the agent do?').fill('Fetch two pages');
    await page.getByRole('button', { name: 'Start task' }).click();
    const card = page.getByTestId('approval-card');
    await card.waitFor({ timeout: TASK_TIMEOUT });
    await expect(card.textContent()).resolves.toContain('evil.example:80');
    await expect(page.getByTestId('task-status').textContent()).resolves.toBe('Needs you');
    await shoot(page, 'approval');
    await card.getByRole('button', { name: 'Deny' }).click();
    await page.getByTestId('approval-record').getByText('denied').waitFor();

    await card.waitFor({ timeout: 60_000 });
    await expect(card.textContent()).resolves.toContain('docs.example:443');
    await card.getByRole('button', { name: 'Always allow docs.example' }).click();
    await page.getByTestId('approval-record').getByText('always allowed').waitFor();
    await page.getByTestId('task-status').getByText('Done').waitFor({ timeout: 60_000 });
    // Reflected: the task's allowlist shows the host; logged: the egress log lists both decisions.
    await page.getByTestId('task-allowlist').getByText('docs.example').waitFor();
    const log = page.getByTestId('network-log');
    await log.getByText('evil.example:80').waitFor();
    await log.getByText('docs.example:443').waitFor();
    await expect(log.textContent()).resolves.toMatch(/blocked evil\.example:80/);
    // 'Always' persisted to Settings, listed apart as a prompt answer (it never opens internal
    // addresses), not among the typed entries.
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByTestId('prompt-allowlist').getByText('docs.example').waitFor();
    await expect(page.getByTestId('allowlist').getByText('docs.example').count()).resolves.toBe(0);
  }, 200_000);

  it('stops a running command within seconds', async () => {
    api.enqueue({
      reply: {
        content: [{ type: 'tool_use', name: 'bash', input: { command: 'echo go; sleep 300' } }],
        stop_reason: 'tool_use',
      },
    });
    await page.getByRole('button', { name: 'New task' }).click();
    await page.getByLabel('What should the agent do?').fill('Wait for a long time');
    // Long enough for the page to boot a warm VM for this task, which the task then takes.
    await page.waitForTimeout(1500);
    await page.getByRole('button', { name: 'Start task' }).click();
    const card = page.getByTestId('tool-card');
    await card.getByText('go', { exact: true }).waitFor({ timeout: TASK_TIMEOUT });
    await shoot(page, 'task-running');
    const t0 = Date.now();
    await page.getByRole('button', { name: 'Stop' }).click();
    await page.getByTestId('task-status').getByText('Stopped').waitFor({ timeout: 10_000 });
    expect(Date.now() - t0).toBeLessThan(10_000);
    await card.getByTestId('tool-state').getByText('Stopped').waitFor({ timeout: 2000 });
    await page.getByText('Stopped.', { exact: true }).waitFor();
    await shoot(page, 'task-stopped');
  }, 200_000);

  it('shows the sidebar with every task, and searches it', async () => {
    const list = page.getByTestId('task-list');
    await expect.poll(() => list.locator('li').count()).toBe(3);
    await page.getByLabel('Search tasks').fill('notes');
    await expect.poll(() => list.locator('li').count()).toBe(1);
    await list.locator('li').first().getByText('Sort my notes').waitFor();
    await page.getByLabel('Search tasks').fill('');
    await expect.poll(() => list.locator('li').count()).toBe(3);
  });

  it('shows settings, automations and the inbox, with their empty states', async () => {
    await page.getByRole('link', { name: 'Settings' }).click();
    await page.getByTestId('settings').waitFor();
    // The key's status arrives with the page's other first requests: wait for it.
    await expect.poll(() => page.getByTestId('masked-key').textContent()).toBe('sk-ant-…wxyz');
    await shoot(page, 'settings');
    await page.getByRole('button', { name: 'Open logs folder' }).click();
    await page.getByTestId('logs-path').getByText(path.join(home.dir, 'logs')).waitFor();
    await shoot(page, 'settings-data');

    await page.getByRole('link', { name: 'Automations' }).click();
    await page.getByTestId('automations-empty').waitFor();
    await shoot(page, 'automations');

    await page.getByRole('link', { name: /Inbox/ }).click();
    await page.getByTestId('inbox-empty').waitFor();
    await expect(page.getByTestId('inbox-unread').textContent()).resolves.toBe('0');
    await shoot(page, 'inbox');
  });

  it('creates an automation with a live preview, runs it now, and its result reaches the inbox', async () => {
    await page.getByRole('link', { name: 'Automations' }).click();
    await page.getByRole('button', { name: 'New automation' }).click();
    const form = page.getByTestId('automation-form');
    await form.getByLabel('Name').fill('Morning summary');
    await form.getByLabel('What should the agent do each time?').fill('Summarise my notes');
    await form.getByLabel('When').fill('every day at 9:00');
    // The preview: the next 5 times, each 9:00 on consecutive days in the person's zone.
    const times = page.getByTestId('schedule-preview').locator('li[data-at]');
    await expect.poll(() => times.count()).toBe(5);
    const ats = (await times.evaluateAll((els) => els.map((e) => e.getAttribute('data-at')))).map(
      Number,
    );
    const tz = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
    const local = ats.map((at) =>
      new Intl.DateTimeFormat('en-CA', {
        timeZone: tz,
        year: 'numeric',
        month: '2-digit',
        day: '2-digit',
        hour: '2-digit',
        minute: '2-digit',
        hourCycle: 'h23',
      }).format(new Date(at)),
    );
    expect(local.every((l) => l.endsWith('09:00'))).toBe(true);
    const days = local.map((l) => Date.parse(l.slice(0, 10)));
    expect(days.slice(1).map((d, i) => d - days[i]!)).toEqual([1, 2, 3, 4].map(() => 86_400_000));
    expect(ats[0]).toBeGreaterThan(Date.now());
    expect(ats[0]! - Date.now()).toBeLessThanOrEqual(86_400_000 + 3600_000);
    await expect(times.first().textContent()).resolves.toContain('09:00');
    // A schedule it cannot read says so in a sentence, and creating waits for a good one.
    await form.getByLabel('When').fill('whenever you like');
    await page.getByTestId('schedule-problem').waitFor();
    await form.getByLabel('When').fill('every day at 9:00');
    await expect.poll(() => times.count()).toBe(5);
    await shoot(page, 'automations-form');
    await page.getByRole('button', { name: 'Create automation' }).click();
    const card = page.getByTestId('automation-card');
    await card.getByText('Morning summary').waitFor();
    await expect(card.getByTestId('automation-status').textContent()).resolves.toBe('Active');
    await expect(card.getByTestId('automation-next').textContent()).resolves.toContain('09:00');

    api.enqueue({
      reply: {
        content: [{ type: 'text', text: 'Your notes are sorted: **apples**, then pears.' }],
        stop_reason: 'end_turn',
      },
    });
    await expect(page.getByTestId('inbox-unread').textContent()).resolves.toBe('0');
    await card.getByRole('button', { name: 'Run now' }).click();
    await expect.poll(() => page.getByTestId('inbox-unread').textContent()).toBe('1');
    await card.getByRole('button', { name: 'History' }).click();
    const row = page.getByTestId('run-row');
    await row.getByTestId('run-status').getByText('Succeeded').waitFor();
    await row.getByText('Your notes are sorted: apples, then pears.').waitFor();
    await row.getByRole('link', { name: 'Open task' }).waitFor();
    await expect(card.getByTestId('automation-status').textContent()).resolves.toBe('Active');
    await shoot(page, 'automations-history');

    await page.getByRole('link', { name: /Inbox/ }).click();
    const item = page.getByTestId('inbox-item');
    await expect(item.getAttribute('data-state')).resolves.toBe('unread');
    await shoot(page, 'inbox-unread');
    await item.getByRole('button', { name: /Morning summary/ }).click();
    await page
      .getByTestId('inbox-body')
      .getByText('Your notes are sorted: apples, then pears.')
      .waitFor();
    await expect.poll(() => page.getByTestId('inbox-unread').textContent()).toBe('0');
    await expect(item.getAttribute('data-state')).resolves.toBe('read');
    await shoot(page, 'inbox-item');
    await page.getByRole('link', { name: 'Open the run’s task' }).click();
    await page.waitForURL(/#\/task\//);
    await expect(page.getByTestId('msg-assistant').last().textContent()).resolves.toContain(
      'Your notes are sorted',
    );

    await page.getByRole('link', { name: 'Automations' }).click();
    await card.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => card.getByTestId('automation-status').textContent()).toBe('Paused');
    await card.getByRole('button', { name: 'Resume' }).waitFor();
    await shoot(page, 'automations-list');
  }, 120_000);

  it('browses folders on the serving machine, and moves through the sidebar by keyboard', async () => {
    await page.getByRole('button', { name: 'New task' }).click();
    await page.getByLabel('Folder path on this machine').fill(os.tmpdir());
    await page.getByRole('button', { name: 'Browse…' }).click();
    const browserBox = page.getByTestId('folder-browser');
    await browserBox.waitFor();
    // Home first; system folders are never listed at the root.
    await browserBox.getByRole('button', { name: '↑ Up' }).click();
    await shoot(page, 'folder-browser');
    await browserBox.getByRole('button', { name: 'Close the folder browser' }).click();

    await page.getByRole('link', { name: /Sort my notes/ }).focus();
    await page.keyboard.press('ArrowDown');
    const focused = await page.evaluate(() => document.activeElement?.className ?? '');
    expect(focused).toContain('task-link');
    expect(problems).toEqual([]);
  });
});
