import { describe, expect, it } from 'vitest';
import { warmKey } from '../../src/main/vm/warm-pool.js';

describe('which warm VM may serve which session', () => {
  const spec = (share: { readOnly: boolean; review?: boolean }) => ({
    imageDir: '/img',
    shares: [{ hostPath: '/work/notes', name: 'notes', ...share }],
    cpus: 2,
    memoryMb: 1024,
    accel: 'auto' as const,
  });

  it('never hands a VM with a writable folder to a review grant of it, or the reverse', () => {
    const keys = [
      warmKey(spec({ readOnly: true })),
      warmKey(spec({ readOnly: false })),
      warmKey(spec({ readOnly: false, review: true })),
    ];
    expect(new Set(keys).size).toBe(3);
    // The same grant finds the same VM.
    expect(warmKey(spec({ readOnly: false, review: true }))).toBe(keys[2]);
    // Review means nothing for a read-only folder: one VM serves both spellings.
    expect(warmKey(spec({ readOnly: true, review: true }))).toBe(keys[0]);
  });
});
