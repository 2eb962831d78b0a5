import { describe, expect, it } from 'vitest';
import type { ChangeFile, ChangesetSummary } from '../../src/shared/changes-contract.js';
import {
  actionsFor,
  countsText,
  formatMode,
  headline,
  kindDetail,
  mergeSummary,
  pathsFor,
  pickFile,
  waitingCount,
  waitingHeadline,
} from '../../src/renderer/features/changes/change-model.js';

const side = (mode = 0o644, size = 10) => ({ size, mode, sha256: 'a'.repeat(64) });
const file = (path: string, over: Partial<ChangeFile> = {}): ChangeFile => ({
  path,
  kind: 'modified',
  status: 'pending',
  before: side(),
  after: side(),
  binary: false,
  appliedAt: null,
  ...over,
});
const summary = (id: string, updatedAt: number, over: Partial<ChangesetSummary> = {}) =>
  ({
    id,
    taskId: 't1',
    hostPath: '/home/a/notes',
    name: 'notes',
    status: 'pending',
    counts: { added: 1, modified: 2, deleted: 0, renamed: 0, mode: 0 },
    createdAt: 1,
    updatedAt,
    ...over,
  }) satisfies ChangesetSummary;

describe('the review model', () => {
  it('says how many files changed in which folder, and which kinds', () => {
    expect(headline(summary('c', 1))).toBe('3 files changed in notes');
    expect(
      headline({ name: 'x', counts: { added: 0, modified: 1, deleted: 0, renamed: 0, mode: 0 } }),
    ).toBe('1 file changed in x');
    expect(countsText(summary('c', 1))).toBe('2 modified, 1 added');
    expect(countsText({ counts: { added: 0, modified: 0, deleted: 0, renamed: 0, mode: 2 } })).toBe(
      '2 permissions',
    );
  });

  it('describes a rename and a permission change', () => {
    expect(formatMode(0o755)).toBe('755');
    expect(formatMode(0o4755)).toBe('4755');
    expect(formatMode(0o7)).toBe('007');
    expect(kindDetail(file('b.md', { kind: 'renamed', fromPath: 'a.md' }))).toBe('a.md → b.md');
    expect(kindDetail(file('run.sh', { kind: 'mode', after: side(0o755) }))).toBe('mode 644 → 755');
    expect(kindDetail(file('x.md'))).toBe('');
  });

  it('offers only what is safe: a conflict can be kept as yours, never applied over it', () => {
    expect(actionsFor('pending')).toEqual(['apply', 'discard']);
    expect(actionsFor('conflict')).toEqual(['discard']);
    expect(actionsFor('applied')).toEqual(['undo']);
    expect(actionsFor('discarded')).toEqual([]);
    expect(actionsFor('undone')).toEqual([]);
    const cs = {
      files: [
        file('a', { status: 'pending' }),
        file('b', { status: 'conflict' }),
        file('c', { status: 'applied' }),
      ],
    };
    expect(pathsFor(cs, 'apply')).toEqual(['a']);
    expect(pathsFor(cs, 'discard')).toEqual(['a', 'b']);
    expect(pathsFor(cs, 'undo')).toEqual(['c']);
  });

  it('shows first what needs the person, and keeps the file already shown', () => {
    const files = [
      file('a', { status: 'applied' }),
      file('b', { status: 'pending' }),
      file('c', { status: 'conflict' }),
    ];
    expect(pickFile(files, null)).toBe('c');
    expect(pickFile(files, 'a')).toBe('a');
    expect(pickFile(files, 'gone')).toBe('c');
    expect(pickFile(files.slice(0, 2), null)).toBe('b');
    expect(pickFile([file('z', { status: 'discarded' })], null)).toBe('z');
    expect(pickFile([], null)).toBeNull();
  });

  it('merges a changed changeset into the list, ignoring an older copy', () => {
    const list = [summary('a', 5), summary('b', 5)];
    const newer = summary('b', 9, { status: 'applied' });
    expect(mergeSummary(list, newer).map((s) => s.status)).toEqual(['pending', 'applied']);
    expect(mergeSummary(list, summary('b', 1, { status: 'undone' }))[1]!.status).toBe('pending');
    expect(mergeSummary(list, summary('c', 1)).map((s) => s.id)).toEqual(['a', 'b', 'c']);
  });

  it('says how many files still wait once some were reviewed', () => {
    const files = [
      file('a', { status: 'applied' }),
      file('b', { status: 'pending' }),
      file('c', { status: 'conflict' }),
    ];
    expect(waitingCount({ files })).toBe(2);
    expect(waitingHeadline(summary('c', 1, { status: 'partial' }), 2)).toBe(
      '2 of 3 files in notes wait for review',
    );
    expect(waitingHeadline(summary('c', 1, { status: 'partial' }), 1)).toBe(
      '1 of 3 files in notes waits for review',
    );
    expect(waitingHeadline(summary('c', 1), 3)).toBe('3 files changed in notes');
  });
});
