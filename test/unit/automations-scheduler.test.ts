import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Scheduler,
  type RunExecutor,
  type RunJob,
  type RunResult,
  type SchedulerEvent,
} from '../../src/main/automations/scheduler.js';
import { AutomationService } from '../../src/main/automations/service.js';
import { Store } from '../../src/main/store/store.js';
import { FakeClock, flush } from '../helpers/fake-clock.js';
import { tempDir } from '../helpers/temp-dir.js';

const MIN = 60_000;
const HOUR = 60 * MIN;

/** An executor whose runs end when the test says (or at once with `auto`). */
class FakeExecutor implements RunExecutor {
  jobs: RunJob[] = [];
  private resolvers = new Map<string, (r: RunResult) => void>();
  constructor(private readonly auto = true) {}
  execute(job: RunJob): Promise<RunResult> {
    this.jobs.push(job);
    if (this.auto)
      return Promise.resolve({ status: 'succeeded', finalText: `Done ${job.automation.name}.` });
    return new Promise((resolve) => {
      this.resolvers.set(job.run.id, resolve);
      job.signal.addEventListener('abort', () =>
        resolve({ status: 'failed', finalText: '', error: 'stopped' }),
      );
    });
  }
  finish(runId: string, text = 'All good.'): void {
    this.resolvers.get(runId)?.({ status: 'succeeded', finalText: text });
  }
}

describe('the scheduler', () => {
  let t: { dir: string; cleanup(): void };
  let stores: Store[];
  let schedulers: Scheduler[];
  let clock: FakeClock;

  const open = () => {
    const s = Store.open(t.dir);
    stores.push(s);
    return s;
  };
  const start = (
    store: Store,
    executor: RunExecutor,
    opts: Partial<ConstructorParameters<typeof Scheduler>[0]> = {},
  ) => {
    const events: SchedulerEvent[] = [];
    const s = new Scheduler({
      store,
      executor,
      clock,
      onEvent: (e) => events.push(e),
      ...opts,
    });
    schedulers.push(s);
    s.start();
    return { s, events };
  };
  const service = (store: Store) =>
    new AutomationService(store, { dataDir: t.dir, now: () => clock.now() });

  beforeEach(() => {
    t = tempDir();
    stores = [];
    schedulers = [];
    // 2027-06-01 08:59:00 in Paris (06:59 UTC).
    clock = new FakeClock(Date.parse('2027-06-01T06:59:00Z'));
  });
  afterEach(async () => {
    for (const s of schedulers) await s.stop();
    for (const s of stores) s.dispose();
    t.cleanup();
  });

  it('sleeps until the slot (one timer, no polling) and runs it on time', async () => {
    const store = open();
    const a = service(store).create({
      name: 'daily',
      prompt: 'p',
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
    });
    const ex = new FakeExecutor();
    start(store, ex);
    await flush();
    // Asleep on one timer towards the slot 60 s away, capped at 30 s to notice clock jumps.
    expect(clock.nextTimerAt()).toBe(30_000);
    await clock.advance(59_000);
    expect(ex.jobs).toHaveLength(0);
    await clock.advance(2_000);
    expect(ex.jobs).toHaveLength(1);
    const run = store.runs.list(a.id)[0]!;
    expect(run).toMatchObject({
      status: 'succeeded',
      attempt: 1,
      late: false,
      summary: 'Done daily.',
    });
    expect(run.slotAt).toBe(Date.parse('2027-06-01T07:00:00Z'));
    expect(run.startedAt! - run.slotAt).toBeLessThan(1000);
    expect(store.inbox.list()[0]).toMatchObject({
      kind: 'succeeded',
      state: 'unread',
      summary: 'Done daily.',
    });
    // Next slot is tomorrow; the sleep is capped so a clock jump is noticed.
    expect(store.automations.get(a.id)!.nextSlotAt).toBe(Date.parse('2027-06-02T07:00:00Z'));
    expect(clock.nextTimerAt() - clock.monotonic()).toBeLessThanOrEqual(30_000);
  });

  it('fires every BYHOUR value of a day', async () => {
    const store = open();
    const a = service(store).create({
      name: 'three',
      prompt: 'p',
      schedule: 'every day at 9, 13 and 17',
      tz: 'Europe/Paris',
    });
    start(store, new FakeExecutor());
    await clock.advance(10 * HOUR);
    const runs = store.runs.list(a.id).reverse();
    expect(runs.map((r) => [new Date(r.slotAt).toISOString(), r.status])).toEqual([
      ['2027-06-01T07:00:00.000Z', 'succeeded'],
      ['2027-06-01T11:00:00.000Z', 'succeeded'],
      ['2027-06-01T15:00:00.000Z', 'succeeded'],
    ]);
  });

  it('keeps to the concurrency limit: the rest queue and run in slot order', async () => {
    const store = open();
    const svc = service(store);
    const a = svc.create({
      name: 'a',
      prompt: 'p',
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
    });
    const b = svc.create({
      name: 'b',
      prompt: 'p',
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
    });
    const ex = new FakeExecutor(false);
    start(store, ex);
    await clock.advance(2 * MIN);
    expect(ex.jobs).toHaveLength(1);
    expect([a, b].map((x) => store.runs.list(x.id)[0]!.status).sort()).toEqual([
      'running',
      'scheduled',
    ]);
    ex.finish(ex.jobs[0]!.run.id);
    await flush();
    expect(ex.jobs).toHaveLength(2);
    ex.finish(ex.jobs[1]!.run.id);
    await flush();
    expect([a, b].map((x) => store.runs.list(x.id)[0]!.status)).toEqual(['succeeded', 'succeeded']);
  });

  it('never runs a slot twice with two schedulers on one database', async () => {
    const s1 = open();
    const s2 = open();
    service(s1).create({ name: 'minutely', prompt: 'p', schedule: 'every minute', tz: 'UTC' });
    const ex1 = new FakeExecutor();
    const ex2 = new FakeExecutor();
    start(s1, ex1, { concurrency: 2 });
    start(s2, ex2, { concurrency: 2 });
    await clock.advance(30 * MIN);
    const runs = s1.runs.list();
    expect(runs).toHaveLength(31); // 06:59 (due at creation) to 07:29
    expect(new Set(runs.map((r) => r.slotAt)).size).toBe(31);
    expect(runs.every((r) => r.status === 'succeeded' && r.attempt === 1)).toBe(true);
    expect(ex1.jobs.length + ex2.jobs.length).toBe(31);
    expect(ex1.jobs.length).toBeGreaterThan(0);
    expect(ex2.jobs.length).toBeGreaterThan(0);
  });

  it('declares a run whose lease expired interrupted, keeps a record, and retries it', async () => {
    const dead = open();
    const a = service(dead).create({
      name: 'job',
      prompt: 'p',
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
    });
    // A process claims the run on its own clock, then dies: that clock never moves again, so
    // it renews nothing and finishes nothing, as after kill -9.
    const deadClock = new FakeClock(clock.now());
    const hung = new FakeExecutor(false);
    start(dead, hung, { leaseMs: 20_000, clock: deadClock });
    await deadClock.advance(2 * MIN);
    expect(hung.jobs).toHaveLength(1);
    expect(dead.runs.list(a.id)[0]).toMatchObject({ status: 'running', attempt: 1 });
    await clock.advance(2 * MIN);

    const alive = open();
    const ex = new FakeExecutor();
    const { events } = start(alive, ex, { leaseMs: 20_000 });
    await clock.advance(30_000);
    expect(events.find((e) => e.type === 'interrupted')).toMatchObject({ willRetry: true });
    const run = alive.runs.list(a.id)[0]!;
    expect(run).toMatchObject({ status: 'succeeded', attempt: 2 });
    const kinds = alive.inbox.list().map((i) => i.kind);
    expect(kinds).toEqual(['succeeded', 'interrupted']);
    expect(alive.inbox.list()[1]!.summary).toMatch(/interrupted.*tried again \(attempt 2 of 2\)/);
  });

  it('marks runs in progress interrupted when stopped, and retries them on the next start', async () => {
    const store = open();
    const a = service(store).create({
      name: 'job',
      prompt: 'p',
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
    });
    const ex = new FakeExecutor(false);
    const { s } = start(store, ex);
    await clock.advance(2 * MIN);
    await s.stop();
    expect(store.runs.list(a.id)[0]).toMatchObject({ status: 'interrupted', attempt: 1 });
    const ex2 = new FakeExecutor();
    start(store, ex2);
    await flush();
    expect(store.runs.list(a.id)[0]).toMatchObject({ status: 'succeeded', attempt: 2 });
  });

  it('fails a run that passes its timeout, and says so in the inbox', async () => {
    const store = open();
    const a = service(store).create({
      name: 'slow',
      prompt: 'p',
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
      timeoutMs: 5 * MIN,
    });
    start(store, new FakeExecutor(false));
    await clock.advance(10 * MIN);
    expect(store.runs.list(a.id)[0]).toMatchObject({
      status: 'failed',
      error: 'Stopped after the run timeout of 5 min.',
    });
    expect(store.inbox.list()[0]!.summary).toMatch(/^Failed: Stopped after the run timeout/);
  });

  for (const [policy, expected] of [
    ['skip', { missed: 3, ran: 0 }],
    ['once', { missed: 2, ran: 1 }],
    ['all', { missed: 0, ran: 3 }],
  ] as const) {
    it(`applies the missed-run policy “${policy}” after a three-hour clock jump`, async () => {
      const store = open();
      const a = service(store).create({
        name: policy,
        prompt: 'p',
        schedule: 'every hour',
        tz: 'UTC',
        missed: policy,
      });
      const ex = new FakeExecutor();
      const { events } = start(store, ex);
      await clock.advance(2 * MIN); // the 07:00 slot runs on time
      expect(ex.jobs).toHaveLength(1);
      clock.jump(3 * HOUR); // asleep from 07:01 to 10:01: 08:00, 09:00, 10:00 passed unseen
      await clock.advance(30_000); // the capped sleep ends and the scheduler looks again
      expect(events.some((e) => e.type === 'clock-jump')).toBe(true);
      const runs = store.runs
        .list(a.id)
        .filter((r) => r.slotAt > Date.parse('2027-06-01T07:00:00Z'));
      expect(runs).toHaveLength(3);
      expect(runs.filter((r) => r.status === 'missed')).toHaveLength(expected.missed);
      expect(runs.filter((r) => r.status === 'succeeded')).toHaveLength(expected.ran);
      expect(runs.every((r) => r.late)).toBe(true);
      if (policy === 'once') expect(runs[0]!.status).toBe('succeeded'); // the latest one ran
      // Every missed slot is recorded with an inbox item that says why.
      const missedItems = store.inbox.list().filter((i) => i.kind === 'missed');
      expect(missedItems).toHaveLength(expected.missed);
      for (const i of missedItems) expect(i.summary).toMatch(/^Missed: Paddock was not running at/);
      expect(store.automations.get(a.id)!.nextSlotAt).toBe(Date.parse('2027-06-01T11:00:00Z'));
    });
  }

  it('catches up at start-up on slots that passed while nothing ran', async () => {
    const store = open();
    const a = service(store).create({
      name: 'daily',
      prompt: 'p',
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
      missed: 'once',
    });
    clock.jump(3 * 24 * HOUR); // off for three days
    const ex = new FakeExecutor();
    start(store, ex);
    await flush();
    const runs = store.runs.list(a.id);
    expect(runs.map((r) => r.status)).toEqual(['succeeded', 'missed', 'missed']);
    expect(ex.jobs).toHaveLength(1);
  });

  it('pauses (queued runs skipped, with an inbox item), resumes without counting the pause as missed, and removes', async () => {
    const store = open();
    const svc = service(store);
    const a = svc.create({ name: 'hourly', prompt: 'p', schedule: 'every hour', tz: 'UTC' });
    const blocker = svc.create({ name: 'blocker', prompt: 'p', schedule: 'every hour', tz: 'UTC' });
    const ex = new FakeExecutor(false);
    const { s } = start(store, ex);
    await clock.advance(2 * MIN);
    const queued = store.runs.list().find((r) => r.status === 'scheduled')!;
    svc.pause(queued.automationId);
    expect(store.runs.get(queued.id)!.status).toBe('skipped');
    expect(store.inbox.list()[0]).toMatchObject({ kind: 'skipped' });
    ex.finish(ex.jobs[0]!.run.id);
    await clock.advance(5 * HOUR);
    for (const j of ex.jobs) ex.finish(j.run.id);
    const pausedId = queued.automationId;
    const before = store.runs.list(pausedId).length;
    const resumed = svc.resume(pausedId);
    expect(resumed.nextSlotAt).toBeGreaterThan(clock.now());
    s.wake();
    await flush();
    expect(store.runs.list(pausedId).length).toBe(before);
    expect(store.runs.list(pausedId).some((r) => r.status === 'missed')).toBe(false);
    svc.remove(a.id);
    svc.remove(blocker.id);
    expect(store.automations.list()).toHaveLength(0);
    expect(store.runs.list(a.id).length).toBeGreaterThan(0); // history stays
  });

  it('runs an automation now on request, even while paused', async () => {
    const store = open();
    const svc = service(store);
    const a = svc.create({
      name: 'n',
      prompt: 'p',
      schedule: 'every day at 9:00',
      tz: 'Europe/Paris',
    });
    svc.pause(a.id);
    const s = new Scheduler({ store, executor: new FakeExecutor(), clock });
    schedulers.push(s);
    const run = await s.runNow(a.id);
    expect(run).toMatchObject({ status: 'succeeded', trigger: 'manual', attempt: 1 });
    expect(store.inbox.list()[0]).toMatchObject({ runId: run.id, summary: 'Done n.' });
  });
});
