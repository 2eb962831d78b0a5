import type { Clock } from '../../src/main/automations/clock.js';

/**
 * A clock for scheduler tests: `advance` moves wall and monotonic time together and fires due
 * timers in order; `jump` moves only the wall clock, as a suspended laptop or a corrected clock
 * does (timers, which run on monotonic time, do not fire).
 */
export class FakeClock implements Clock {
  private wall: number;
  private mono = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start: number) {
    this.wall = start;
  }

  now(): number {
    return this.wall;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.mono + Math.max(0, ms), fn });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Wall-clock jump without elapsed time. */
  jump(ms: number): void {
    this.wall += ms;
  }

  /** When the next timer is due, in monotonic ms (Infinity when none). */
  nextTimerAt(): number {
    let min = Infinity;
    for (const t of this.timers.values()) min = Math.min(min, t.at);
    return min;
  }

  /**
   * Lets `ms` pass, firing each timer at its time; `settle` runs between timers so promise
   * chains started by a timer (a run finishing) complete before the next one.
   */
  async advance(ms: number, settle: () => Promise<void> = flush): Promise<void> {
    const end = this.mono + ms;
    await settle();
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const e of this.timers) if (!next || e[1].at < next[1].at) next = e;
      if (!next || next[1].at > end) break;
      this.wall += next[1].at - this.mono;
      this.mono = next[1].at;
      this.timers.delete(next[0]);
      next[1].fn();
      await settle();
    }
    this.wall += end - this.mono;
    this.mono = end;
    await settle();
  }
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}
