import type {
  ChangeFile,
  ChangeKind,
  ChangeStatus,
  Changeset,
  ChangesetSummary,
} from '../../../shared/changes-contract.js';

/** What a person can do to one staged file. */
export type FileAction = 'apply' | 'discard' | 'undo';

/** Permission bits as `ls -l` people write them: `644`, `755`, `4755`. */
export function formatMode(mode: number): string {
  return mode.toString(8).padStart(3, '0');
}

/** The word on a file's kind badge. */
export function kindLabel(kind: ChangeKind): string {
  return kind === 'mode' ? 'permissions' : kind;
}

/**
 * What changed about the file besides its content, in a few words: where a renamed file was, or
 * how its permissions changed. Empty when the kind says it all.
 */
export function kindDetail(f: ChangeFile): string {
  if (f.kind === 'renamed' && f.fromPath) return `${f.fromPath} → ${f.path}`;
  if (f.before && f.after && f.before.mode !== f.after.mode)
    return `mode ${formatMode(f.before.mode)} → ${formatMode(f.after.mode)}`;
  return '';
}

const STATUS_LABEL: Record<ChangeStatus, string> = {
  pending: 'Waiting for review',
  applied: 'Applied',
  discarded: 'Discarded',
  conflict: 'Conflict',
  undone: 'Undone',
};

/** The words for a file's status (shown as text, never only as a colour). */
export function statusLabel(s: ChangeStatus): string {
  return STATUS_LABEL[s];
}

/** The chip class of a file's status. */
export function statusTone(s: ChangeStatus): string {
  switch (s) {
    case 'pending':
      return 'attention';
    case 'applied':
      return 'ok';
    case 'conflict':
      return 'fail';
    default:
      return 'neutral';
  }
}

const SET_STATUS_LABEL: Record<ChangesetSummary['status'], string> = {
  pending: 'Waiting for review',
  partial: 'Reviewed',
  applied: 'Applied',
  discarded: 'Discarded',
  undone: 'Undone',
};

/**
 * The words for a changeset's status, given how many of its files still wait (pending or in
 * conflict): `partial` is a mix, of waiting and reviewed files or of applied and undone ones.
 */
export function changesetStatusLabel(s: ChangesetSummary['status'], waiting: number): string {
  if (s === 'partial' && waiting > 0) return `${waiting} waiting for review`;
  return SET_STATUS_LABEL[s];
}

/** The chip class of a changeset's status, given how many of its files still wait. */
export function changesetTone(s: ChangesetSummary['status'], waiting: number): string {
  if (waiting > 0) return 'attention';
  return s === 'applied' || s === 'partial' ? 'ok' : 'neutral';
}

/** How many files a changeset holds, from its counts. */
export function fileCount(s: Pick<ChangesetSummary, 'counts'>): number {
  const c = s.counts;
  return c.added + c.modified + c.deleted + c.renamed + c.mode;
}

/** `3 files changed in notes`: the call to action's words. */
export function headline(s: Pick<ChangesetSummary, 'counts' | 'name'>): string {
  const n = fileCount(s);
  return `${n} file${n === 1 ? '' : 's'} changed in ${s.name}`;
}

/** `2 modified, 1 added`: the counts that are not zero, largest first. */
export function countsText(s: Pick<ChangesetSummary, 'counts'>): string {
  const parts = (Object.entries(s.counts) as [keyof ChangesetSummary['counts'], number][])
    .filter(([, n]) => n > 0)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${n} ${k === 'mode' ? 'permissions' : k}`);
  return parts.length ? parts.join(', ') : 'no files';
}

/** Files that wait for the person: pending ones and conflicts. */
export function waitingCount(cs: Pick<Changeset, 'files'>): number {
  return cs.files.filter((f) => f.status === 'pending' || f.status === 'conflict').length;
}

/** `3 files changed in notes` when all wait; `2 of 5 files in notes wait for review` when some do. */
export function waitingHeadline(
  s: Pick<ChangesetSummary, 'counts' | 'name' | 'status'>,
  waiting: number,
): string {
  const total = fileCount(s);
  if (s.status === 'pending' || waiting >= total) return headline(s);
  return `${waiting} of ${total} files in ${s.name} ${waiting === 1 ? 'waits' : 'wait'} for review`;
}

/**
 * What can be done to a file now: a pending one applied or discarded; a conflict only discarded
 * (keeping the person's copy: the agent's version never overwrites it); an applied one undone.
 */
export function actionsFor(status: ChangeStatus): FileAction[] {
  switch (status) {
    case 'pending':
      return ['apply', 'discard'];
    case 'conflict':
      return ['discard'];
    case 'applied':
      return ['undo'];
    default:
      return [];
  }
}

/** The files of a changeset an action would act on, as "all" means it. */
export function pathsFor(cs: Pick<Changeset, 'files'>, action: FileAction): string[] {
  return cs.files.filter((f) => actionsFor(f.status).includes(action)).map((f) => f.path);
}

/** The list after a `changes:changed` event: that changeset replaced, or added, newest last. */
export function mergeSummary(
  list: readonly ChangesetSummary[],
  s: ChangesetSummary,
): ChangesetSummary[] {
  const i = list.findIndex((x) => x.id === s.id);
  if (i < 0) return [...list, s];
  if (list[i]!.updatedAt > s.updatedAt) return [...list];
  const next = [...list];
  next[i] = s;
  return next;
}

/**
 * The file to show first: the first one that needs the person (a conflict, then a pending one),
 * else the first; kept when the one already shown is still there.
 */
export function pickFile(files: readonly ChangeFile[], current: string | null): string | null {
  if (current && files.some((f) => f.path === current)) return current;
  return (
    files.find((f) => f.status === 'conflict')?.path ??
    files.find((f) => f.status === 'pending')?.path ??
    files[0]?.path ??
    null
  );
}

/** A hash shortened for reading; the full one goes in a tooltip. */
export function shortHash(sha256: string): string {
  return sha256.slice(0, 12);
}
