import { z } from 'zod';
import { relPathProblem } from './rel-path.js';

/**
 * Staged folder edits: what a session changed in a review grant, waiting for the person. The
 * channels are spread into `requests` and `events` in api.ts like the other domains'.
 */

const changesetId = z.string().min(1).max(100);
/** A path relative to the grant's folder, `/`-separated, never absolute, never `..`. */
const relPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => relPathProblem(p) === null, {
    message: 'a path inside the folder, like notes/todo.md',
  });

/** What happened to one path. A rename is a delete and an add with the same content. */
export const changeKindSchema = z.enum(['added', 'modified', 'deleted', 'renamed', 'mode']);
export type ChangeKind = z.infer<typeof changeKindSchema>;

/**
 * Where one file is in its life: waiting, written to the folder, thrown away, refused because the
 * person's copy changed since it was staged (`conflict`), or put back after being applied.
 */
export const changeStatusSchema = z.enum(['pending', 'applied', 'discarded', 'conflict', 'undone']);
export type ChangeStatus = z.infer<typeof changeStatusSchema>;

/** One side of a change: the file as it was (before) or as the session left it (after). */
export const fileSideSchema = z.object({
  size: z.number().int().nonnegative(),
  /** Permission bits, e.g. 0o644. */
  mode: z.number().int().min(0).max(0o7777),
  sha256: z.string().length(64),
  /** A symbolic link: its target, as written (never followed). */
  linkTarget: z.string().optional(),
});
export type FileSide = z.infer<typeof fileSideSchema>;

export const changeFileSchema = z.object({
  path: relPath,
  /** For a rename: where the file was. */
  fromPath: relPath.optional(),
  kind: changeKindSchema,
  status: changeStatusSchema,
  /** Absent for an added file. */
  before: fileSideSchema.optional(),
  /** Absent for a deleted file. */
  after: fileSideSchema.optional(),
  /** Not text (by content): shown by size and hash, never diffed. */
  binary: z.boolean(),
  /** Set for a conflict: what the person's copy is now (absent when it was deleted). */
  current: fileSideSchema.optional(),
  appliedAt: z.number().nullable(),
  /** Why the last action refused this file (a conflict, a link out of the folder…), if it did. */
  note: z.string().optional(),
});
export type ChangeFile = z.infer<typeof changeFileSchema>;

/** Where a changeset stands as a whole. */
export const changesetStatusSchema = z.enum([
  'pending',
  'partial',
  'applied',
  'discarded',
  'undone',
]);

export const changesetSummarySchema = z.object({
  id: changesetId,
  taskId: z.string(),
  /** The grant's folder on this computer, and its name in the VM (/mnt/<name>). */
  hostPath: z.string(),
  name: z.string(),
  status: changesetStatusSchema,
  counts: z.object({
    added: z.number().int(),
    modified: z.number().int(),
    deleted: z.number().int(),
    renamed: z.number().int(),
    mode: z.number().int(),
  }),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type ChangesetSummary = z.infer<typeof changesetSummarySchema>;

export const changesetSchema = changesetSummarySchema.extend({ files: z.array(changeFileSchema) });
export type Changeset = z.infer<typeof changesetSchema>;

/** What applying, discarding or undoing did, file by file. */
export const changeOutcomeSchema = z.object({
  changeset: changesetSchema,
  /** Paths that were refused, each with a sentence (a conflict, a symlink out of the folder…). */
  refused: z.array(z.object({ path: z.string(), reason: z.string() })),
});
export type ChangeOutcome = z.infer<typeof changeOutcomeSchema>;

/** The paths to act on; none: every file of the changeset that the action applies to. */
const paths = z.array(relPath).max(100_000).optional();

export const changesRequests = {
  'changes:list': {
    /** A task's changesets (one per review grant that changed), or every pending one. */
    req: z.object({ taskId: z.string().min(1).max(100).optional() }).strict(),
    res: z.object({ changesets: z.array(changesetSummarySchema) }),
  },
  'changes:get': {
    req: z.object({ id: changesetId }).strict(),
    res: changesetSchema,
  },
  'changes:file': {
    /** Both sides of one file as text, for the diff (text files up to 1 MiB; else null). */
    req: z.object({ id: changesetId, path: relPath }).strict(),
    res: z.object({
      before: z.string().nullable(),
      after: z.string().nullable(),
      /** Why a side is not shown (binary, too large, a link). */
      note: z.string().optional(),
    }),
  },
  'changes:refresh': {
    /** Reads again what a task's running session has staged (also done when a task ends). */
    req: z.object({ taskId: z.string().min(1).max(100) }).strict(),
    res: z.object({ changesets: z.array(changesetSummarySchema) }),
  },
  'changes:apply': {
    req: z.object({ id: changesetId, paths }).strict(),
    res: changeOutcomeSchema,
  },
  'changes:discard': {
    req: z.object({ id: changesetId, paths }).strict(),
    res: changeOutcomeSchema,
  },
  'changes:undo': {
    req: z.object({ id: changesetId, paths }).strict(),
    res: changeOutcomeSchema,
  },
  'changes:storage': {
    /** What staged copies and the undo journal take on disk, for Settings. */
    req: z.object({}).strict(),
    res: z.object({
      bytes: z.number().int().nonnegative(),
      blobs: z.number().int().nonnegative(),
      journalEntries: z.number().int().nonnegative(),
      /** The `journalDays` setting: how long applied changes can be undone. */
      journalDays: z.number().int(),
    }),
  },
} as const;

export const changesEvents = {
  /** A changeset was staged, refreshed, applied, discarded or undone. */
  'changes:changed': changesetSummarySchema,
} as const;
