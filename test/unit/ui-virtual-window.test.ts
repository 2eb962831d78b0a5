import { describe, expect, it } from 'vitest';
import { boxHeight, isAtBottom, windowFor } from '../../src/renderer/components/virtual-window.js';
import {
  appendOutput,
  lineAt,
  lineCount,
  newOutput,
  MAX_OUTPUT_LINES,
} from '../../src/renderer/lib/output-buffer.js';

describe('the virtual list windowing math', () => {
  const base = { rowHeight: 18, viewportHeight: 320, overscan: 5 };

  it('draws only the rows in view plus the overscan, at the top', () => {
    const w = windowFor({ ...base, scrollTop: 0, count: 100_000 });
    expect(w).toEqual({ start: 0, end: 18 + 5, offsetTop: 0, totalHeight: 1_800_000 });
  });

  it('keeps the same small window anywhere in a 100,000-line output', () => {
    for (const scrollTop of [0, 18 * 1000 + 7, 900_000, 1_800_000 - 320]) {
      const w = windowFor({ ...base, scrollTop, count: 100_000 });
      expect(w.end - w.start).toBeLessThanOrEqual(Math.ceil(320 / 18) + 1 + 2 * 5);
      expect(w.offsetTop).toBe(w.start * 18);
      // The rows in view are inside the window.
      expect(w.start).toBeLessThanOrEqual(Math.floor(scrollTop / 18));
      expect(w.end).toBeGreaterThanOrEqual(Math.min(100_000, Math.ceil((scrollTop + 320) / 18)));
    }
  });

  it('clamps a scroll position past the end (the box shrank) and before the start', () => {
    const past = windowFor({ ...base, scrollTop: 10_000_000, count: 1000 });
    expect(past.end).toBe(1000);
    expect(past.start).toBe(1000 - Math.ceil(320 / 18) - 5);
    const before = windowFor({ ...base, scrollTop: -50, count: 1000 });
    expect(before.start).toBe(0);
  });

  it('handles an empty list and fewer rows than fit', () => {
    expect(windowFor({ ...base, scrollTop: 0, count: 0 })).toEqual({
      start: 0,
      end: 0,
      offsetTop: 0,
      totalHeight: 0,
    });
    expect(windowFor({ ...base, scrollTop: 0, count: 3 })).toMatchObject({ start: 0, end: 3 });
  });

  it('sizes the box to its rows up to a maximum, and knows when it is at the bottom', () => {
    expect(boxHeight(3, 18, 320)).toBe(54);
    expect(boxHeight(0, 18, 320)).toBe(18);
    expect(boxHeight(1000, 18, 320)).toBe(320);
    expect(isAtBottom(680, 320, 1000)).toBe(true);
    expect(isAtBottom(600, 320, 1000)).toBe(false);
  });
});

describe('the output buffer', () => {
  it('splits chunks into lines across chunk boundaries, keeping the unfinished last line', () => {
    const b = newOutput();
    appendOutput(b, 'one\ntw');
    appendOutput(b, 'o\r\nthree');
    expect(lineCount(b)).toBe(3);
    expect([0, 1, 2].map((i) => lineAt(b, i))).toEqual(['one', 'two', 'three']);
    appendOutput(b, '\n');
    expect(lineCount(b)).toBe(3);
    expect(b.version).toBe(3);
  });

  it('takes 100,000 lines in chunks quickly and caps what it keeps', () => {
    const b = newOutput();
    const chunk = Array.from({ length: 1000 }, (_, i) => `line ${i}`).join('\n') + '\n';
    const t0 = performance.now();
    for (let i = 0; i < 100; i++) appendOutput(b, chunk);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(lineCount(b)).toBe(100_000);
    for (let i = 0; i < 200; i++) appendOutput(b, chunk);
    expect(lineCount(b)).toBe(MAX_OUTPUT_LINES);
  });
});
