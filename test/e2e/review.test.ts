import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { repoRoot } from '../helpers/cli.js';
import { startServe, type Served } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dir.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';
import { FakeOverlay, setup, writeTree } from '../helpers/changes-fake.js';

const shots = path.join(repoRoot, 'test-results');
const KEY = 'sk-ant-e2e-key-0123456789revw';

/** Screenshots the page as it is, in the light and the dark theme. */
async function shoot(page: Page, name: string): Promise<void> {
  for (const colorScheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r(null))));
    await page.screenshot({ path: path.join(shots, `ui-review-${name}-${colorScheme}.png`) });
  }
  await page.emulateMedia({ colorScheme: 'light' });
}

const TODO = '# Todo\n- milk\n- eggs\n- call Bob\n';
const TODO_STAGED = '# Todo\n- milk\n- bread\n- call Bob\n- book dentist\n';
const PLAN = '# Plan\n1. Sort\n';
const PLAN_STAGED = '# Plan\n1. Sort\n2. Ship\n';
const PLAN_MINE = '# Plan\n1. Sort\n1b. My own step, written while the task ran\n';

/**
 * The review of staged folder edits in Chromium against `paddock serve`. A real VM is not
 * available in this tier, so the changeset is staged before serve starts, by the core's own
 * ChangeService from an overlay made of folders (the stand-in the core's tests use for the VM);
 * everything after that (listing, diff, apply, conflict, undo) is the served core acting on the
 * real folder.
 */
describe('reviewing staged changes in the app', () => {
  let api: MockMessagesApi;
  let home: { dir: string; cleanup(): void };
  let folder: string;
  let taskId: string;
  let served: Served;
  let browser: Browser;
  let page: Page;
  const problems: string[] = [];
  const read = (rel: string) => fs.readFileSync(path.join(folder, rel), 'utf8');

  beforeAll(async () => {
    fs.mkdirSync(shots, { recursive: true });
    api = await startMessagesApi({ apiKey: KEY });
    home = tempDir('paddock-e2e-review-');
    // The grant keeps the folder's real path (a temp folder may sit under a link).
    fs.mkdirSync(path.join(home.dir, 'notes'));
    folder = fs.realpathSync(path.join(home.dir, 'notes'));
    const data = path.join(home.dir, 'data');
    writeTree(folder, { 'todo.md': TODO, 'plan.md': PLAN, 'old.txt': 'last year\n' });

    const env = setup(data, folder, { name: 'notes' });
    env.store.settings.update({ onboarded: true, model: 'claude-opus-5-5' });
    taskId = env.task;
    env.store.sessions.appendEvent(taskId, 'user', { content: 'Tidy my notes' });
    env.store.sessions.appendEvent(taskId, 'assistant', {
      content: [{ type: 'text', text: 'I tidied your notes.' }],
      stop_reason: 'end_turn',
    });
    env.store.sessions.setStatus(taskId, 'done');
    const overlay = new FakeOverlay('notes', folder, path.join(home.dir, 'upper'));
    overlay
      .write('todo.md', TODO_STAGED)
      .write('plan.md', PLAN_STAGED)
      .write('ideas/next.md', '# Next\n- a garden\n')
      .remove('old.txt');
    const staged = await env.service.stage(taskId, overlay.source());
    expect(staged.changesets).toHaveLength(1);
    // The task is also an automation's run, whose inbox item says its changes wait for review.
    const auto = env.store.automations.create({
      name: 'Tidy notes',
      prompt: 'Tidy my notes',
      folders: [{ hostPath: folder, name: 'notes', readOnly: false, review: true }],
      rrule: 'DTSTART;TZID=UTC:20270101T090000\nRRULE:FREQ=DAILY',
      tzid: 'UTC',
      scheduleText: 'every day at 9:00',
      missedPolicy: 'once',
      allowlist: [],
      // Paused: serve's scheduler must not run it.
      enabled: false,
    });
    const run = env.store.runs.insert({
      automationId: auto.id,
      slotAt: Date.now(),
      status: 'succeeded',
      trigger: 'manual',
    })!;
    env.store.runs.setSession(run.id, taskId);
    env.store.inbox.add({
      runId: run.id,
      automationId: auto.id,
      kind: 'succeeded',
      title: 'Tidy notes',
      summary: '4 files changed in notes: review. I tidied your notes.',
    });
    env.close();

    served = await startServe({
      PADDOCK_HOME: data,
      ANTHROPIC_BASE_URL: api.url,
      ANTHROPIC_API_KEY: KEY,
    });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    await page.goto(served.url);
    await page.evaluate((id) => (location.hash = `#/task/${id}`), taskId);
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await served?.stop();
    await api?.close();
    home?.cleanup();
  });

  const dialog = () => page.getByTestId('review-dialog');
  const row = (p: string) => dialog().locator(`[data-testid="review-file"][data-path="${p}"]`);
  const detail = () => dialog().getByTestId('review-file-detail');

  it('opens the review from the inbox item of the run that staged the changes', async () => {
    await page.evaluate(() => (location.hash = '#/inbox'));
    const item = page.getByTestId('inbox-item');
    await item.getByTestId('inbox-review-waiting').getByText('4 to review').waitFor();
    await item.getByRole('button', { name: /Tidy notes/ }).click();
    await item.getByText('4 files changed in notes: review. I tidied your notes.').waitFor();
    await shoot(page, 'inbox');
    await item.getByTestId('inbox-review').getByText('Review 4 changes').click();
    await dialog().waitFor();
    await expect(dialog().getByTestId('review-file').count()).resolves.toBe(4);
    await expect(page.evaluate(() => location.hash)).resolves.toBe(`#/task/${taskId}/review`);
    await dialog().getByRole('button', { name: 'Close' }).click();
    await dialog().waitFor({ state: 'detached' });
    await page.evaluate((id) => (location.hash = `#/task/${id}`), taskId);
  });

  it('shows the staged files with a diff, from the call to action and the side panel', async () => {
    const cta = page.getByTestId('review-cta');
    await cta.getByText('4 files changed in notes').waitFor();
    const side = page.getByTestId('review-section');
    await side.getByText('2 modified, 1 added, 1 deleted').waitFor();
    await expect(side.getByText('Waiting for review').count()).resolves.toBe(1);
    await shoot(page, 'task');

    await cta.getByRole('button', { name: 'Review 4 files changed in notes' }).click();
    await dialog().waitFor();
    await expect(dialog().getByTestId('review-host-path').textContent()).resolves.toBe(folder);
    await expect(dialog().getByTestId('review-file').count()).resolves.toBe(4);
    await expect(row('old.txt').textContent()).resolves.toMatch(/deleted.*Waiting for review/);
    await expect(row('ideas/next.md').textContent()).resolves.toMatch(/^added/);

    await row('todo.md').click();
    await expect(row('todo.md').getAttribute('aria-current')).resolves.toBe('true');
    const diff = detail().getByTestId('review-diff');
    await diff.waitFor();
    await expect(diff.locator('.diff-line.del').allTextContents()).resolves.toEqual([
      expect.stringContaining('- eggs'),
    ]);
    await expect(diff.locator('.diff-line.add').allTextContents()).resolves.toEqual([
      expect.stringContaining('- bread'),
      expect.stringContaining('- book dentist'),
    ]);
    await shoot(page, 'diff');
  });

  it('applies one file: the folder has it, and the rest still wait', async () => {
    await detail().getByRole('button', { name: 'Accept' }).click();
    await detail().getByTestId('review-file-status').getByText('Applied').waitFor();
    await dialog().getByTestId('review-outcome').getByText('Applied 1 file.').waitFor();
    expect(read('todo.md')).toBe(TODO_STAGED);
    expect(read('plan.md')).toBe(PLAN);
    expect(fs.existsSync(path.join(folder, 'old.txt'))).toBe(true);
    await dialog().getByTestId('review-status').getByText('3 waiting for review').waitFor();
    // The side panel and the call to action follow from `changes:changed`.
    await page.getByTestId('review-section').getByText('3 waiting for review').waitFor();
    await page
      .getByTestId('review-cta')
      .getByText('3 of 4 files in notes wait for review')
      .waitFor();
    // Keyboard: the pressed Accept became Undo, and the focus stayed on the file's actions.
    await expect(page.evaluate(() => document.activeElement?.textContent)).resolves.toBe('Undo');
  });

  it('refuses to overwrite a file the person changed, and shows both sides', async () => {
    fs.writeFileSync(path.join(folder, 'plan.md'), PLAN_MINE);
    await row('plan.md').click();
    await detail().getByRole('button', { name: 'Accept' }).click();
    const conflict = detail().getByTestId('review-conflict');
    await conflict.getByText('Conflict: your copy changed.').waitFor();
    await detail().getByTestId('review-file-status').getByText('Conflict').waitFor();
    await expect(dialog().getByTestId('review-refused').textContent()).resolves.toMatch(
      /plan\.md changed on this computer/,
    );
    // Nothing was overwritten.
    expect(read('plan.md')).toBe(PLAN_MINE);
    // Both sides: the staged version and the person's copy now, by size and hash…
    const sides = detail().getByTestId('review-sides');
    await sides.getByRole('columnheader', { name: 'Staged by the agent' }).waitFor();
    await sides.getByRole('columnheader', { name: 'Your file now' }).waitFor();
    await expect(sides.locator('td').nth(1).textContent()).resolves.toContain(
      `${Buffer.byteLength(PLAN_STAGED)} bytes`,
    );
    await expect(sides.locator('td').nth(2).textContent()).resolves.toContain(
      `${Buffer.byteLength(PLAN_MINE)} bytes`,
    );
    // …and as text, from the person's copy to the agent's version.
    const diff = detail().getByTestId('review-diff');
    await expect(diff.locator('.diff-line.del').allTextContents()).resolves.toEqual([
      expect.stringContaining('1b. My own step'),
    ]);
    await expect(diff.locator('.diff-line.add').allTextContents()).resolves.toEqual([
      expect.stringContaining('2. Ship'),
    ]);
    // Accept is not offered: the only choice is to keep theirs.
    await expect(detail().getByRole('button', { name: 'Accept' }).count()).resolves.toBe(0);
    await shoot(page, 'conflict');

    await detail().getByRole('button', { name: 'Keep yours' }).click();
    await detail().getByTestId('review-file-status').getByText('Discarded').waitFor();
    expect(read('plan.md')).toBe(PLAN_MINE);
  });

  it('undoes an applied file: it is back as it was', async () => {
    await row('todo.md').click();
    await detail().getByRole('button', { name: 'Undo' }).click();
    await detail().getByTestId('review-file-status').getByText('Undone').waitFor();
    expect(read('todo.md')).toBe(TODO);
  });

  it('applies all that wait, after which the whole changeset can be undone', async () => {
    await dialog().getByRole('button', { name: 'Apply all' }).click();
    await dialog().getByTestId('review-outcome').getByText('Applied 2 files.').waitFor();
    expect(read('ideas/next.md')).toBe('# Next\n- a garden\n');
    expect(fs.existsSync(path.join(folder, 'old.txt'))).toBe(false);
    // Nothing waits any more: the call to action is gone.
    await page.getByTestId('review-cta').waitFor({ state: 'detached' });
    await dialog().getByTestId('review-status').getByText('Reviewed').waitFor();
    await shoot(page, 'applied');

    await dialog().getByRole('button', { name: 'Undo all' }).click();
    await dialog().getByTestId('review-outcome').getByText('Undid 2 files.').waitFor();
    expect(fs.existsSync(path.join(folder, 'ideas'))).toBe(false);
    expect(read('old.txt')).toBe('last year\n');
    expect(read('plan.md')).toBe(PLAN_MINE);
    expect(read('todo.md')).toBe(TODO);
    await page.keyboard.press('Escape');
    await dialog().waitFor({ state: 'detached' });
  });

  it('sets how long applied changes can be undone, in Settings', async () => {
    await page.evaluate(() => (location.hash = '#/settings'));
    const journal = page.getByTestId('journal-settings');
    await expect(journal.getByTestId('journal-days').inputValue()).resolves.toBe('30');
    await journal.getByTestId('journal-storage').waitFor();
    await journal.getByTestId('journal-days').fill('14');
    await journal.getByTestId('journal-days').press('Enter');
    await page.getByText('Applied changes can now be undone for 14 days.').waitFor();
    await journal.scrollIntoViewIfNeeded();
    await shoot(page, 'settings');
    expect(problems).toEqual([]);
  });

  it('asks, for each read-write folder of an automation, review or direct, and whether to apply', async () => {
    await page.evaluate(() => (location.hash = '#/automations'));
    await page.getByRole('button', { name: 'New automation' }).click();
    const form = page.getByTestId('automation-form');
    await form.getByLabel('Name').fill('Weekly tidy');
    await form.getByLabel('What should the agent do each time?').fill('Tidy my notes');
    await form.getByLabel('When').fill('every Monday at 9:00');
    await form.getByLabel('Automation folder path on this machine').fill(folder);
    await form.getByRole('button', { name: 'Add folder' }).click();
    const mode = form.getByTestId('folder-mode');
    // Reviewed by default; automatic apply is offered only while a folder is reviewed.
    await expect(mode.inputValue()).resolves.toBe('review');
    const apply = form.getByLabel('Apply changes automatically');
    await mode.selectOption('direct');
    await apply.waitFor({ state: 'detached' });
    await mode.selectOption('review');
    await apply.check();
    await form.getByText('you can still undo them').waitFor();
    await form.scrollIntoViewIfNeeded();
    await shoot(page, 'automation-form');
    await form.getByRole('button', { name: 'Create automation' }).click();
    const card = page.getByTestId('automation-card').filter({ hasText: 'Weekly tidy' });
    await card.getByText(`${folder} (read-write, changes reviewed)`).waitFor();
    expect(problems).toEqual([]);
  });
});
