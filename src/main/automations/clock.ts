/**
 * Time as the scheduler sees it, injectable so tests can move the wall clock without waiting
 * (and jump it, as a suspended laptop or a corrected clock does).
 */
export interface Clock {
  /** Wall-clock time in epoch milliseconds; may jump forwards or backwards. */
  now(): number;
  /** Milliseconds on a clock that never jumps; only differences mean anything. */
  monotonic(): number;
  /** Calls `fn` after `ms` of monotonic time; returns a handle for {@link Clock.clearTimer}. */
  setTimer(fn: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

/** The real clocks: Date.now and performance.now, timers from Node. */
export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms),
  clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};
