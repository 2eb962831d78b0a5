/** One line of a diff: in both versions, only in the newer (`add`), or only in the older (`del`). */
export interface DiffLine {
  op: 'same' | 'add' | 'del';
  text: string;
  /** Its 1-based line number in the older version (`same`, `del`). */
  a?: number;
  /** Its 1-based line number in the newer version (`same`, `add`). */
  b?: number;
}

/** A line diff and whether it is the least one (false: the middle was too big to compare). */
export interface LineDiff {
  lines: DiffLine[];
  added: number;
  removed: number;
  exact: boolean;
}

/**
 * The most cells of the LCS table (lines × lines of what differs after the common start and end
 * are set aside): 4 bytes each, so 16 MB at most. Past it the middle is shown as replaced.
 */
const MAX_CELLS = 4_000_000;

function splitLines(s: string): string[] {
  if (s === '') return [];
  const lines = s.split(/\r?\n/);
  if (lines.at(-1) === '') lines.pop();
  return lines;
}

/**
 * A line diff of two versions of an artifact by longest common subsequence: what was removed
 * from `before` and added in `after`, in order, with the unchanged lines between. Common leading
 * and trailing lines are matched first, so a small edit to a long file stays cheap.
 */
export function lineDiff(before: string, after: string): LineDiff {
  const a = splitLines(before);
  const b = splitLines(after);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  const lines: DiffLine[] = [];
  for (let i = 0; i < start; i++) lines.push({ op: 'same', text: a[i]!, a: i + 1, b: i + 1 });

  const n = endA - start;
  const m = endB - start;
  let exact = true;
  if (n > 0 && m > 0 && (n + 1) * (m + 1) <= MAX_CELLS) {
    // lcs[i][j]: the LCS length of a[start+i..endA) and b[start+j..endB), row-major.
    const w = m + 1;
    const lcs = new Int32Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] =
          a[start + i] === b[start + j]
            ? lcs[(i + 1) * w + j + 1]! + 1
            : Math.max(lcs[(i + 1) * w + j]!, lcs[i * w + j + 1]!);
      }
    }
    let i = 0;
    let j = 0;
    while (i < n && j < m) {
      const ai = start + i;
      const bj = start + j;
      if (a[ai] === b[bj]) {
        lines.push({ op: 'same', text: a[ai]!, a: ai + 1, b: bj + 1 });
        i++;
        j++;
      } else if (lcs[(i + 1) * w + j]! >= lcs[i * w + j + 1]!) {
        lines.push({ op: 'del', text: a[ai]!, a: ai + 1 });
        i++;
      } else {
        lines.push({ op: 'add', text: b[bj]!, b: bj + 1 });
        j++;
      }
    }
    for (; i < n; i++) lines.push({ op: 'del', text: a[start + i]!, a: start + i + 1 });
    for (; j < m; j++) lines.push({ op: 'add', text: b[start + j]!, b: start + j + 1 });
  } else {
    exact = n === 0 || m === 0;
    for (let i = start; i < endA; i++) lines.push({ op: 'del', text: a[i]!, a: i + 1 });
    for (let j = start; j < endB; j++) lines.push({ op: 'add', text: b[j]!, b: j + 1 });
  }
  for (let k = 0; k < a.length - endA; k++)
    lines.push({ op: 'same', text: a[endA + k]!, a: endA + k + 1, b: endB + k + 1 });

  let added = 0;
  let removed = 0;
  for (const l of lines) {
    if (l.op === 'add') added++;
    else if (l.op === 'del') removed++;
  }
  return { lines, added, removed, exact };
}
