import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { findImage } from '../src/main/vm/image.js';
import { Store } from '../src/main/store/store.js';
import { launchChromium } from '../test/helpers/browser.js';
import { repoRoot } from '../test/helpers/cli.js';
import { startServe } from '../test/helpers/serve.js';
import { startMessagesApi } from '../test/support/messages-api/server.js';
import { median, percentile, round } from './stats.js';
import type { BenchSuite } from './suites.js';

const KEY = 'sk-ant-bench-key-000000000000';

/** About `words` words of plain prose, for a long streamed answer. */
function longAnswer(words: number): string {
  const para =
    'The agent reads each file in the folder, notes what it holds, and writes a short summary of it. ';
  let s = '';
  while (s.split(' ').length < words) s += para + (s.length % 7 === 0 ? '\n\n' : '');
  return s;
}

/**
 * The UI figures: renderer bundle size; first paint and time to interactive in Chromium against
 * `paddock serve`; frame times while a long answer streams into a task (no VM needed: no tools).
 */
export const uiSuite: BenchSuite = {
  name: 'ui',
  async run(log) {
    const figures: Record<string, number | string> = {};
    const dist = path.join(repoRoot, 'dist', 'renderer');
    if (!fs.existsSync(path.join(dist, 'app.js'))) throw new Error('run `npm run build` first');
    const js = fs.readFileSync(path.join(dist, 'app.js'));
    const css = fs.readFileSync(path.join(dist, 'app.css'));
    figures.bundle_js_kib = round(js.length / 1024, 1);
    figures.bundle_js_gzip_kib = round(zlib.gzipSync(js, { level: 9 }).length / 1024, 1);
    figures.bundle_css_kib = round(css.length / 1024, 1);

    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bench-ui-'));
    // The VM tests' image, when built, lets the bench run a real 100,000-line command.
    const vmHome = process.env.PADDOCK_TEST_CACHE ?? path.join(os.tmpdir(), 'paddock-test-home');
    const haveVm = Boolean(await findImage(vmHome).catch(() => null));
    if (haveVm) fs.symlinkSync(path.join(vmHome, 'images'), path.join(home, 'images'));
    const store = Store.open(home);
    store.settings.update({ onboarded: true, model: 'claude-opus-5-5' });
    store.dispose();
    const words = 6000;
    const api = await startMessagesApi({ apiKey: KEY, deltasPerBlock: 1500 });
    const served = await startServe({
      PADDOCK_HOME: home,
      ANTHROPIC_API_KEY: KEY,
      ANTHROPIC_BASE_URL: api.url,
    });
    const browser = await launchChromium();
    try {
      const fp: number[] = [];
      const tti: number[] = [];
      for (let i = 0; i < 7; i++) {
        const ctx = await browser.newContext();
        const page = await ctx.newPage();
        await page.goto(served.url);
        await page.waitForFunction(() => document.documentElement.dataset.ready === '1');
        await page.getByRole('button', { name: 'New task' }).waitFor();
        const t = await page.evaluate(() => ({
          fcp:
            performance.getEntriesByName('first-contentful-paint')[0]?.startTime ??
            performance.getEntriesByName('first-paint')[0]?.startTime ??
            -1,
          tti: performance.getEntriesByName('paddock-interactive')[0]?.startTime ?? -1,
        }));
        if (i > 0) {
          // The first load warms the server's file cache; it is not counted.
          fp.push(t.fcp);
          tti.push(t.tti);
        }
        await ctx.close();
      }
      figures.first_contentful_paint_ms = round(median(fp), 0);
      figures.time_to_interactive_ms = round(median(tti), 0);
      log(`first paint ${fp.map((x) => round(x, 0)).join(', ')} ms`);

      // Frame times while a ~6,000-word answer streams in 1,500 deltas.
      api.enqueue({
        delayMs: 2,
        reply: {
          content: [{ type: 'text', text: longAnswer(words) }],
          stop_reason: 'end_turn',
        },
      });
      const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
      await page.goto(served.url);
      await page.getByLabel('What should the agent do?').fill('Write a long report');
      // A string, not a function: tsx would wrap a function's inner names in a helper the page lacks.
      await page.evaluate(`(() => {
        window.frames_ = [];
        window.stopFrames_ = false;
        let last = performance.now();
        const tick = (now) => {
          window.frames_.push(now - last);
          last = now;
          if (!window.stopFrames_) requestAnimationFrame(tick);
        };
        requestAnimationFrame(tick);
      })()`);
      const t0 = Date.now();
      await page.getByRole('button', { name: 'Start task' }).click();
      await page.getByTestId('task-status').getByText('Done').waitFor({ timeout: 120_000 });
      const streamMs = Date.now() - t0;
      const frames = (await page.evaluate(
        '(() => { window.stopFrames_ = true; return window.frames_.slice(2); })()',
      )) as number[];
      figures.stream_words = words;
      figures.stream_ms = streamMs;
      figures.stream_frames = frames.length;
      figures.stream_frame_p50_ms = round(median(frames), 1);
      figures.stream_frame_p95_ms = round(percentile(frames, 95), 1);
      figures.stream_frame_max_ms = round(Math.max(...frames), 1);
      figures.stream_long_frames_over_50ms = frames.filter((f) => f > 50).length;

      if (haveVm) {
        // A 100,000-line output in a tool card, then scrolled top to bottom in 120 steps.
        api.enqueue(
          {
            reply: {
              content: [{ type: 'tool_use', name: 'bash', input: { command: 'seq 1 100000' } }],
              stop_reason: 'tool_use',
            },
          },
          { reply: { content: [{ type: 'text', text: 'Counted.' }], stop_reason: 'end_turn' } },
        );
        await page.getByRole('button', { name: 'New task' }).click();
        await page.getByLabel('What should the agent do?').fill('Count to 100000');
        const t1 = Date.now();
        await page.getByRole('button', { name: 'Start task' }).click();
        await page.getByTestId('task-status').getByText('Done').waitFor({ timeout: 180_000 });
        figures.output_100k_task_ms = Date.now() - t1;
        const box = page.getByRole('log', { name: 'Output of bash' });
        figures.output_100k_rows = Number(await box.getAttribute('data-rows'));
        figures.output_100k_rows_in_dom = await box.locator('.vrow').count();
        const scroll = (await page.evaluate(`(async () => {
          const el = document.querySelector('[aria-label="Output of bash"]');
          const frames = [];
          let last = performance.now();
          for (let i = 0; i <= 120; i++) {
            el.scrollTop = (el.scrollHeight - el.clientHeight) * (i / 120);
            await new Promise((r) => requestAnimationFrame(r));
            const now = performance.now();
            frames.push(now - last);
            last = now;
          }
          const text = el.querySelector('.vwindow').textContent;
          return { frames: frames.slice(1), lastSeen: text.includes('100000') };
        })()`)) as { frames: number[]; lastSeen: boolean };
        figures.output_100k_scroll_frame_p50_ms = round(median(scroll.frames), 1);
        figures.output_100k_scroll_frame_p95_ms = round(percentile(scroll.frames, 95), 1);
        figures.output_100k_scroll_frame_max_ms = round(Math.max(...scroll.frames), 1);
        figures.output_100k_last_line_reached = scroll.lastSeen ? 'yes' : 'no';
      } else {
        log('no VM image: skipped the 100,000-line output (build it with npm run test:vm)');
      }
      await page.close();
    } finally {
      await browser.close();
      await served.stop();
      await api.close();
      fs.rmSync(home, { recursive: true, force: true });
    }
    return figures;
  },
};
