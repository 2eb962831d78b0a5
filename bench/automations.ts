import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';
import { compileSchedule, parseScheduleText } from '../src/main/automations/schedule.js';
import { Scheduler, type RunExecutor } from '../src/main/automations/scheduler.js';
import { AutomationService } from '../src/main/automations/service.js';
import { Store } from '../src/main/store/store.js';
import { median, percentile, round } from './stats.js';
import type { BenchSuite } from './suites.js';

const N = 10_000;
const ZONES = ['Europe/Paris', 'America/New_York', 'Asia/Tokyo', 'UTC', 'Australia/Sydney'];
const SCHEDULES = [
  (i: number) => `every day at ${i % 24}:${String(i % 60).padStart(2, '0')}`,
  (i: number) => `every weekday at ${i % 24}:00`,
  (i: number) => `every day at ${i % 8}, ${(i % 8) + 8} and ${(i % 8) + 16}`,
  (i: number) => `every ${(i % 5) + 1} hours`,
  (i: number) => `every month on the ${(i % 28) + 1}th at 7:30`,
  (i: number) => `every monday and thursday at ${i % 24}:15`,
];

function gc(): void {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
}

/**
 * Automations: with 10,000 automations, how long finding the next due slot takes (the indexed
 * query the scheduler sleeps on, and recomputing every automation's next slot from its RRULE),
 * the scheduler's memory, and the delay from a slot's due time to its run starting.
 */
export const automationsSuite: BenchSuite = {
  name: 'automations',
  async run(log) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-bench-auto-'));
    const store = Store.open(dir);
    try {
      const svc = new AutomationService(store, { dataDir: dir });
      const t0 = performance.now();
      store.immediate(() => {
        for (let i = 0; i < N; i++)
          svc.create({
            name: `a${i}`,
            prompt: 'p',
            schedule: SCHEDULES[i % SCHEDULES.length]!(i),
            tz: ZONES[i % ZONES.length]!,
            missed: 'skip',
          });
      });
      const createMs = performance.now() - t0;
      log(`created ${N} automations in ${round(createMs / 1000)} s`);

      const q: number[] = [];
      for (let i = 0; i < 2000; i++) {
        const s = performance.now();
        store.automations.earliestNextSlot();
        q.push(performance.now() - s);
      }

      const rows = store.automations.list();
      const s1 = performance.now();
      let earliest = Infinity;
      const now = Date.now();
      for (const a of rows) {
        const n = compileSchedule(parseScheduleText(a.rrule, { validate: false })).next(now);
        if (n !== null && n < earliest) earliest = n;
      }
      const recomputeMs = performance.now() - s1;

      // The scheduler's memory: heap after start minus heap before, with 10,000 automations.
      const idle: RunExecutor = {
        execute: async () => ({ status: 'succeeded', finalText: 'ok' }),
      };
      gc();
      const before = process.memoryUsage().heapUsed;
      const sched = new Scheduler({ store, executor: idle });
      const s2 = performance.now();
      sched.start();
      const tickMs = performance.now() - s2;
      gc();
      const schedulerHeapKb = (process.memoryUsage().heapUsed - before) / 1024;
      await sched.stop();

      // Due-to-start delay: slots every 2 s for 20 s among the 10,000, on the real clock.
      const delays: number[] = [];
      const timing: RunExecutor = {
        execute: async (job) => {
          delays.push(Date.now() - job.run.slotAt);
          return { status: 'succeeded', finalText: 'ok' };
        },
      };
      const first = new Date(Math.ceil((Date.now() + 1500) / 1000) * 1000);
      svc.create({
        name: 'fast',
        prompt: 'p',
        schedule: `DTSTART;TZID=UTC:${first.toISOString().replace(/[-:]/g, '').slice(0, 15)}\nRRULE:FREQ=SECONDLY;INTERVAL=2;COUNT=10`,
      });
      const live = new Scheduler({ store, executor: timing });
      live.start();
      await new Promise((r) => setTimeout(r, first.getTime() - Date.now() + 19_500));
      await live.stop();
      log(`due-to-start delays (ms): ${delays.join(', ')}`);

      return {
        next_due_query_median_ms: round(median(q), 4),
        next_due_query_p99_ms: round(percentile(q, 99), 4),
        recompute_all_next_slots_ms: round(recomputeMs, 1),
        recompute_per_automation_us: round((recomputeMs * 1000) / N, 1),
        scheduler_start_tick_ms: round(tickMs, 2),
        scheduler_heap_kb: round(schedulerHeapKb, 0),
        create_per_automation_ms: round(createMs / N, 3),
        due_to_start_median_ms: round(median(delays), 1),
        due_to_start_max_ms: round(Math.max(...delays), 1),
        runs_started: delays.length,
      };
    } finally {
      store.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  },
};
