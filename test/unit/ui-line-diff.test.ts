import { describe, expect, it } from 'vitest';
import { lineDiff, type DiffLine } from '../../src/renderer/lib/line-diff.js';

const ops = (lines: DiffLine[]) =>
  lines.map((l) => `${l.op === 'same' ? ' ' : l.op === 'add' ? '+' : '-'}${l.text}`);

/** Applying the diff's kept and added lines gives the newer text; kept and removed the older. */
function sides(lines: DiffLine[]): { before: string[]; after: string[] } {
  return {
    before: lines.filter((l) => l.op !== 'add').map((l) => l.text),
    after: lines.filter((l) => l.op !== 'del').map((l) => l.text),
  };
}

describe('lineDiff', () => {
  it('says nothing changed for equal texts, empty ones included', () => {
    expect(lineDiff('', '')).toEqual({ lines: [], added: 0, removed: 0, exact: true });
    const d = lineDiff('a\nb\n', 'a\nb\n');
    expect(ops(d.lines)).toEqual([' a', ' b']);
    expect(d.added + d.removed).toBe(0);
  });

  it('shows an edit in the middle as one removal and one addition between kept lines', () => {
    const d = lineDiff('one\ntwo\nthree\n', 'one\nTWO\nthree\n');
    expect(ops(d.lines)).toEqual([' one', '-two', '+TWO', ' three']);
    expect(d.lines[2]).toMatchObject({ op: 'add', b: 2 });
    expect(d.lines[3]).toMatchObject({ op: 'same', a: 3, b: 3 });
    expect([d.added, d.removed]).toEqual([1, 1]);
  });

  it('finds the longest common subsequence, not just the common start and end', () => {
    const d = lineDiff('a\nb\nc\nd\ne\n', 'x\nb\nd\ny\ne\nz\n');
    expect(ops(d.lines).filter((l) => l.startsWith(' '))).toEqual([' b', ' d', ' e']);
    expect(sides(d.lines)).toEqual({
      before: ['a', 'b', 'c', 'd', 'e'],
      after: ['x', 'b', 'd', 'y', 'e', 'z'],
    });
  });

  it('handles everything added, everything removed, and CRLF line ends', () => {
    expect(ops(lineDiff('', 'a\nb').lines)).toEqual(['+a', '+b']);
    expect(ops(lineDiff('a\r\nb\r\n', '').lines)).toEqual(['-a', '-b']);
    expect(ops(lineDiff('a\r\nb\r\n', 'a\nb\n').lines)).toEqual([' a', ' b']);
  });

  it('numbers lines on both sides', () => {
    const d = lineDiff('keep\ngone\nend', 'new\nkeep\nend');
    expect(d.lines).toEqual([
      { op: 'add', text: 'new', b: 1 },
      { op: 'same', text: 'keep', a: 1, b: 2 },
      { op: 'del', text: 'gone', a: 2 },
      { op: 'same', text: 'end', a: 3, b: 3 },
    ]);
  });

  it('keeps a small edit to a long text cheap and exact', () => {
    const base = Array.from({ length: 50_000 }, (_, i) => `line ${i}`);
    const edited = [...base];
    edited[25_000] = 'changed';
    const t0 = performance.now();
    const d = lineDiff(base.join('\n'), edited.join('\n'));
    expect(performance.now() - t0).toBeLessThan(500);
    expect(d.exact).toBe(true);
    expect([d.added, d.removed]).toEqual([1, 1]);
  });

  it('shows a middle too big to compare as replaced, and says the diff is not the least', () => {
    const a = Array.from({ length: 3000 }, (_, i) => `a${i}`).join('\n');
    const b = Array.from({ length: 3000 }, (_, i) => `b${i}`).join('\n');
    const d = lineDiff(`head\n${a}\ntail`, `head\n${b}\ntail`);
    expect(d.exact).toBe(false);
    expect([d.added, d.removed]).toEqual([3000, 3000]);
    expect(ops(d.lines)[0]).toBe(' head');
    expect(ops(d.lines).at(-1)).toBe(' tail');
  });
});
