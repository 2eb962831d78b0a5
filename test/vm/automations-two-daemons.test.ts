import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutomationService } from '../../src/main/automations/service.js';
import { Store } from '../../src/main/store/store.js';
import { tempDir } from '../helpers/temp-dir.js';
import { ensureTestImage } from '../helpers/vm-image.js';
import { startMessagesApi, type MockMessagesApi } from '../support/messages-api/server.js';
import { freshHome, startDaemon } from '../helpers/daemon.js';

// Slow (about 3.5 minutes): the acceptance test of the issue, on real processes and real time.
describe('two paddock daemons on one database', () => {
  let api: MockMessagesApi;

  beforeAll(async () => {
    await ensureTestImage();
    api = await startMessagesApi({ apiKey: 'test-key' });
  });
  afterAll(async () => {
    await api?.close();
  });

  it('run a minutely automation for three minutes with exactly one run per slot', async () => {
    const t = tempDir();
    const home = freshHome(t.dir);
    const store = Store.open(home);
    try {
      for (let i = 0; i < 10; i++)
        api.enqueue({
          reply: { content: [{ type: 'text', text: `Tick ${i}.` }], stop_reason: 'end_turn' },
          delayMs: 200,
        });
      const d1 = await startDaemon(home, api);
      const d2 = await startDaemon(home, api);
      const svc = new AutomationService(store, { dataDir: home });
      const start = Date.now();
      const a = svc.create({
        name: 'Minutely',
        prompt: 'Tick.',
        schedule: 'every minute',
        tz: 'UTC',
      });
      await new Promise((r) => setTimeout(r, 3 * 60_000 + 5_000));
      const end = Date.now();
      d1.proc.kill('SIGTERM');
      d2.proc.kill('SIGTERM');
      expect(await d1.exited).toBe(0);
      expect(await d2.exited).toBe(0);

      const runs = store.runs.list(a.id).reverse();
      const slots = runs.map((r) => r.slotAt);
      // Every whole minute in the window is a slot, each run once, on time, by either daemon. A
      // slot in the last two seconds before the daemons were stopped may or may not have started.
      const expected: number[] = [];
      for (let m = Math.ceil(start / 60_000) * 60_000; m <= end - 2_000; m += 60_000)
        expected.push(m);
      expect(new Set(slots).size).toBe(slots.length);
      expect(slots.slice(0, expected.length)).toEqual(expected);
      expect(slots.slice(expected.length).every((m) => m > end - 2_000 && m <= end)).toBe(true);
      expect(runs.length).toBeGreaterThanOrEqual(3);
      for (const r of runs) {
        expect(r).toMatchObject({ status: 'succeeded', attempt: 1, late: false });
        expect(r.startedAt! - r.slotAt).toBeLessThan(1000);
      }
      expect(api.requests).toHaveLength(runs.length);
      const started = [...d1.lines, ...d2.lines].filter((l) => l.event === 'run-started');
      expect(started).toHaveLength(runs.length);
      expect(new Set(started.map((l) => l.runId)).size).toBe(runs.length);
      expect(api.problems).toEqual([]);
    } finally {
      store.dispose();
      t.cleanup();
    }
  }, 300_000);
});
