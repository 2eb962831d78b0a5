import type { Command } from 'commander';
import type { ChangeOutcome, ChangesetSummary } from '../../shared/changes-contract.js';
import { askCore } from './ask-core.js';

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 16);
}

function counts(s: ChangesetSummary): string {
  const parts = Object.entries(s.counts)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k === 'mode' ? 'permissions' : k}`);
  return parts.length ? parts.join(', ') : 'no files';
}

function size(n: number | undefined): string {
  if (n === undefined) return '-';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** A line diff of two texts with three lines of context around each change (`-`/`+`/` `). */
export function textDiff(before: string, after: string): string {
  const a = before.split('\n');
  const b = after.split('\n');
  if (a.at(-1) === '') a.pop();
  if (b.at(-1) === '') b.pop();
  // The common head and tail cost nothing; the middle is compared by longest common subsequence
  // when small enough, else shown as removed then added.
  let head = 0;
  while (head < a.length && head < b.length && a[head] === b[head]) head++;
  let tail = 0;
  while (
    tail < a.length - head &&
    tail < b.length - head &&
    a[a.length - 1 - tail] === b[b.length - 1 - tail]
  )
    tail++;
  const am = a.slice(head, a.length - tail);
  const bm = b.slice(head, b.length - tail);
  const mid: string[] = [];
  if (am.length * bm.length <= 4_000_000) {
    const n = am.length;
    const m = bm.length;
    const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--)
      for (let j = m - 1; j >= 0; j--)
        lcs[i]![j] =
          am[i] === bm[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    let i = 0;
    let j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && am[i] === bm[j]) {
        mid.push(` ${am[i++]}`);
        j++;
      } else if (i < n && (j === m || lcs[i + 1]![j]! >= lcs[i]![j + 1]!)) mid.push(`-${am[i++]}`);
      else mid.push(`+${bm[j++]}`);
    }
  } else mid.push(...am.map((l) => `-${l}`), ...bm.map((l) => `+${l}`));
  const all = [
    ...a.slice(0, head).map((l) => ` ${l}`),
    ...mid,
    ...a.slice(a.length - tail).map((l) => ` ${l}`),
  ];
  // Keep three lines of context around changes.
  const keep = new Array<boolean>(all.length).fill(false);
  all.forEach((l, k) => {
    if (l[0] !== ' ')
      for (let d = -3; d <= 3; d++) if (all[k + d] !== undefined) keep[k + d] = true;
  });
  const lines: string[] = [];
  let gap = false;
  all.forEach((l, k) => {
    if (!keep[k]) {
      gap = true;
      return;
    }
    if (gap && lines.length) lines.push('@@');
    gap = false;
    lines.push(l);
  });
  return lines.join('\n');
}

function printOutcome(o: ChangeOutcome, verb: string, json: boolean | undefined): void {
  if (json) {
    out(JSON.stringify(o));
    return;
  }
  const by = new Map<string, number>();
  for (const f of o.changeset.files) by.set(f.status, (by.get(f.status) ?? 0) + 1);
  const files = [...by].map(([s, n]) => `${n} ${s}`).join(', ') || 'no files';
  out(`${verb}. ${o.changeset.id} is ${o.changeset.status}: ${files}.`);
  if (o.refused.length) out(`Refused ${o.refused.length}:`);
  for (const r of o.refused) out(`  ${r.path}: ${r.reason}`);
  if (o.refused.length) process.exitCode = 1;
}

/** `paddock changes list|show|apply|discard|undo`: staged folder edits of review grants. */
export function registerChanges(program: Command): void {
  const cmd = program
    .command('changes')
    .description(
      'Review what tasks changed in folders granted for review: list, show, apply, discard, undo.',
    );

  cmd
    .command('list')
    .description("List changesets: one task's, or every one still waiting for review.")
    .option('--task <id>', 'only the changesets of this task')
    .option('--json', 'print JSON')
    .action(async (o: { task?: string; json?: boolean }) => {
      const { changesets } = await askCore('changes:list', o.task ? { taskId: o.task } : {});
      if (o.json) return out(JSON.stringify(changesets));
      if (changesets.length === 0)
        return out(
          o.task
            ? 'This task changed no folder granted for review.'
            : 'No changes wait for review.',
        );
      for (const c of changesets)
        out(
          `${c.id}  ${c.status.padEnd(9)}  ${when(c.updatedAt)}  ${c.name}  (${counts(c)})  ${c.hostPath}`,
        );
    });

  cmd
    .command('show')
    .description('Print a changeset’s files, or the text diff of one of its files.')
    .argument('<id>', 'the changeset, chg_…')
    .argument('[path]', 'a file of it: print its diff')
    .option('--json', 'print JSON')
    .action(async (id: string, p: string | undefined, o: { json?: boolean }) => {
      if (p !== undefined) {
        const t = await askCore('changes:file', { id, path: p });
        if (o.json) return out(JSON.stringify(t));
        if (t.note) process.stderr.write(`${t.note}\n`);
        if (t.before === null && t.after === null) return;
        return out(
          `--- ${p} (before)\n+++ ${p} (after)\n${textDiff(t.before ?? '', t.after ?? '')}`,
        );
      }
      const c = await askCore('changes:get', { id });
      if (o.json) return out(JSON.stringify(c));
      out(`${c.id}  ${c.status}  ${c.name}  ${c.hostPath}  task ${c.taskId}`);
      for (const f of c.files) {
        const from = f.fromPath ? ` (from ${f.fromPath})` : '';
        const link = f.after?.linkTarget !== undefined ? ` -> ${f.after.linkTarget}` : '';
        out(
          `${f.status.padEnd(9)}  ${f.kind.padEnd(8)}  ${size(f.before?.size).padStart(9)} → ${size(f.after?.size).padEnd(9)}  ${f.path}${from}${link}${f.binary ? '  [binary]' : ''}`,
        );
        if (f.note) out(`           ${f.note}`);
      }
    });

  for (const [verb, channel, doc, past] of [
    [
      'apply',
      'changes:apply',
      'Write pending files into the folder (all, or the paths given).',
      'Applied',
    ],
    [
      'discard',
      'changes:discard',
      'Drop pending files (all, or the paths given); the folder keeps its copy.',
      'Discarded',
    ],
    [
      'undo',
      'changes:undo',
      'Put applied files back as they were (all, or the paths given).',
      'Undone',
    ],
  ] as const)
    cmd
      .command(verb)
      .description(doc)
      .argument('<id>', 'the changeset, chg_…')
      .argument('[paths...]', 'only these files of it')
      .option('--json', 'print JSON')
      .action(async (id: string, paths: string[], o: { json?: boolean }) => {
        const outcome = await askCore(channel, { id, ...(paths.length ? { paths } : {}) });
        printOutcome(outcome, past, o.json);
      });
}
