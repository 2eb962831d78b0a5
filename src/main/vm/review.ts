/**
 * Reading what a session staged in its review grants. A review grant (ShareSpec.review) is an
 * overlay in the guest (vm-images/init): the folder, exported read-only by the host, is the lower
 * layer and the guest's writes land in an upper layer on the session's disk. The guest program
 * vm-images/paddock-staged walks the upper layers and prints one JSON listing; this module runs it
 * and checks every field, then reads single staged files for the person's review.
 *
 * SECURITY: everything here comes from the guest, which may be hostile. The listing is refused
 * as a whole at the first malformed field (never trusted in part), its size is capped as it
 * arrives, and every path is relative, without `.`/`..`/empty segments, NUL or backslash.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { PaddockError } from '../../shared/result.js';
import type { Vm } from './backend.js';
import { GUEST_LIMITS } from './guest/client.js';
import { isValidShareName } from './qemu/args.js';
import { MAX_PATH_BYTES, relPathProblem } from '../../shared/rel-path.js';

/** Where review grants' layers are in the guest: `<dir>/<name>/{lower,upper,work}`. */
export const REVIEW_LAYERS_DIR = '/var/lib/paddock/review';

/**
 * Overlay options of a review grant, the same as vm-images/init's OVL_OPTS. The lower layer is
 * 9p, virtio-fs or drvfs, which give overlayfs no file handles or stable inode numbers; and with
 * redirects and metacopy off, the upper layer holds only whole files, folders, whiteouts and
 * opaque markers, which is all the listing has to understand.
 */
export const REVIEW_OVERLAY_OPTIONS =
  'redirect_dir=off,index=off,metacopy=off,xino=off,nfs_export=off';

/** The guest program that lists the upper layers (installed by vm-images/assemble-rootfs.sh). */
export const STAGED_LISTER = '/usr/local/bin/paddock-staged';

/** Most entries a listing may hold, all grants together. */
export const MAX_STAGED_ENTRIES = 200_000;

/** Most bytes of listing read from the guest; more is refused. */
export const MAX_LISTING_BYTES = 64 * 1024 * 1024;

const MAX_STDERR_CHARS = 2000;

/** The folder holding one review grant's layers in the guest. */
export function reviewLayerDir(name: string): string {
  if (!isValidShareName(name)) throw new Error(`Bad share name "${name}"`);
  return `${REVIEW_LAYERS_DIR}/${name}`;
}

const relPath = z.string().superRefine((p, ctx) => {
  const why = relPathProblem(p);
  if (why) ctx.addIssue({ code: 'custom', message: `path ${why}` });
});
const mode = z.number().int().min(0).max(0o7777);
const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'not a sha256 in hex');
/** A symlink's target: data, never followed, so any text a link can hold. */
const linkTarget = z
  .string()
  .min(1)
  .refine((t) => !t.includes('\0') && !/\p{Cs}/u.test(t), 'bad symlink target')
  .refine((t) => Buffer.byteLength(t) <= MAX_PATH_BYTES, 'symlink target too long');

const lowerSchema = z
  .discriminatedUnion('type', [
    z.strictObject({ type: z.literal('file'), mode, size, sha256 }),
    z.strictObject({ type: z.literal('dir'), mode, size }),
    z.strictObject({ type: z.literal('symlink'), size, target: linkTarget }),
    z.strictObject({ type: z.literal('other'), mode, size }),
  ])
  .nullable();

const entrySchema = z.discriminatedUnion('type', [
  z.strictObject({
    path: relPath,
    type: z.literal('file'),
    mode,
    size,
    sha256,
    lower: lowerSchema,
  }),
  z.strictObject({ path: relPath, type: z.literal('dir'), mode, lower: lowerSchema }),
  z.strictObject({ path: relPath, type: z.literal('opaque'), mode, lower: lowerSchema }),
  z.strictObject({
    path: relPath,
    type: z.literal('symlink'),
    size,
    target: linkTarget,
    lower: lowerSchema,
  }),
  z.strictObject({ path: relPath, type: z.literal('whiteout'), lower: lowerSchema }),
  z.strictObject({ path: relPath, type: z.literal('other'), mode, lower: lowerSchema }),
]);

const shareSchema = z.strictObject({
  name: z.string(),
  truncated: z.boolean(),
  skipped: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  entries: z.array(entrySchema).max(MAX_STAGED_ENTRIES),
});

const listingSchema = z.strictObject({
  format: z.literal(1),
  truncated: z.boolean(),
  shares: z.array(shareSchema).max(1000),
});

/**
 * What the folder holds at a staged path (the lower layer), or null if nothing: lets the host
 * tell an added file from a modified one, or a change of mode only. Never through a symlink.
 */
export type StagedLower = NonNullable<z.infer<typeof lowerSchema>>;

/**
 * One path in a review grant's upper layer. `file`: new or changed content; `dir`: a folder that
 * exists in the layer (new, re-moded, or only holding changes); `opaque`: a folder that replaces
 * the folder's one entirely; `symlink` (its target as written); `whiteout`: deleted; `other`:
 * a fifo, socket or device (never applied). Paths are `/`-separated, relative to the grant, and
 * every entry's parent folder is listed before it.
 */
export type StagedEntry = z.infer<typeof entrySchema>;

/** What one review grant staged. */
export interface StagedShare {
  name: string;
  entries: StagedEntry[];
  /** The listing stopped at its entry or size limit: more changes exist. */
  truncated: boolean;
  /** Entries the guest could not describe (not UTF-8, too long, unreadable): not in `entries`. */
  skipped: number;
}

/** What a session staged in the review grants asked for, in the order asked. */
export interface StagedListing {
  shares: StagedShare[];
  /** Some share's listing is incomplete. */
  truncated: boolean;
}

function refused(why: string): PaddockError {
  return new PaddockError(
    'STAGED_LISTING_INVALID',
    `The sandbox's list of staged changes was refused (${why}); no change from it is used.`,
  );
}

function checkNames(names: readonly string[]): void {
  const seen = new Set<string>();
  for (const n of names) {
    if (!isValidShareName(n)) throw new Error(`Bad share name "${n}"`);
    if (seen.has(n)) throw new Error(`Share "${n}" is named twice`);
    seen.add(n);
  }
}

/**
 * Checks a listing printed by paddock-staged for `names` (exported for tests). Throws a
 * PaddockError `STAGED_LISTING_INVALID` naming the first problem.
 */
export function parseStagedListing(
  text: string,
  names: readonly string[],
  maxEntries = MAX_STAGED_ENTRIES,
): StagedListing {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw refused('it is not JSON');
  }
  const parsed = listingSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw refused(`${issue.path.join('.') || 'document'}: ${issue.message}`);
  }
  const doc = parsed.data;
  if (doc.shares.length !== names.length || doc.shares.some((s, i) => s.name !== names[i])) {
    throw refused('it does not describe the grants asked for');
  }
  let total = 0;
  for (const share of doc.shares) {
    total += share.entries.length;
    if (total > maxEntries) throw refused(`more than ${maxEntries} entries`);
    // Each path once, and each parent listed before it as a folder: the walk's own order.
    const kinds = new Map<string, StagedEntry['type']>();
    for (const e of share.entries) {
      if (kinds.has(e.path)) throw refused(`${share.name}: ${e.path} is listed twice`);
      const cut = e.path.lastIndexOf('/');
      if (cut > 0) {
        const parent = kinds.get(e.path.slice(0, cut));
        if (parent !== 'dir' && parent !== 'opaque') {
          throw refused(`${share.name}: ${e.path} is listed without its folder`);
        }
      }
      if (e.type === 'symlink' && e.size !== Buffer.byteLength(e.target)) {
        throw refused(`${share.name}: ${e.path} has a size unlike its target`);
      }
      kinds.set(e.path, e.type);
    }
  }
  const shares = doc.shares.map((s) => ({ ...s }));
  return { shares, truncated: shares.some((s) => s.truncated) };
}

/** Options of {@link readStagedChanges}. */
export interface ReadStagedOptions {
  /** Entries at most, all grants together (default and ceiling {@link MAX_STAGED_ENTRIES}). */
  maxEntries?: number;
  /** The listing's own deadline in the guest (it hashes every staged file). Default 10 min. */
  timeoutMs?: number;
}

/**
 * What the session staged in the review grants `names` (each must be a review share of this VM),
 * read from the guest and checked field by field. Throws PaddockError `STAGED_LISTING_FAILED`
 * when the guest program fails, `STAGED_LISTING_INVALID` when its output is refused.
 */
export async function readStagedChanges(
  vm: Vm,
  names: readonly string[],
  opts: ReadStagedOptions = {},
): Promise<StagedListing> {
  checkNames(names);
  if (names.length === 0) return { shares: [], truncated: false };
  const maxEntries = Math.min(opts.maxEntries ?? MAX_STAGED_ENTRIES, MAX_STAGED_ENTRIES);
  const h = vm.exec({
    argv: [
      STAGED_LISTER,
      '--max-entries',
      String(maxEntries),
      // Room for the document around the entries.
      '--max-bytes',
      String(MAX_LISTING_BYTES - 1024 * 1024),
      ...names,
    ],
    timeoutMs: opts.timeoutMs ?? 10 * 60_000,
  });
  h.stdin.end();
  const chunks: Buffer[] = [];
  let bytes = 0;
  let tooLarge = false;
  let stderr = '';
  h.stdout.on('data', (d: Buffer) => {
    if (tooLarge) return;
    bytes += d.length;
    // SECURITY: a guest that prints without end is stopped, not buffered.
    if (bytes > MAX_LISTING_BYTES) {
      tooLarge = true;
      chunks.length = 0;
      h.kill('SIGKILL');
      return;
    }
    chunks.push(d);
  });
  h.stderr.setEncoding('utf8').on('data', (d: string) => {
    if (stderr.length < MAX_STDERR_CHARS) stderr = (stderr + d).slice(0, MAX_STDERR_CHARS);
  });
  const result = await h.result;
  if (tooLarge) throw refused(`more than ${MAX_LISTING_BYTES} bytes`);
  if (result.exitCode !== 0) {
    const said = stderr
      .replace(/[^\x20-\x7e\n]/g, '?')
      .trim()
      .split('\n')
      .slice(-1)[0];
    throw new PaddockError(
      'STAGED_LISTING_FAILED',
      result.timedOut
        ? 'Listing the staged changes in the sandbox took too long.'
        : `Listing the staged changes in the sandbox failed (exit ${result.exitCode})${said ? `: ${said}` : ''}.`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw refused('it is not UTF-8');
  }
  return parseStagedListing(text, names, maxEntries);
}

/**
 * The staged content of one file of review grant `name`, read from its upper layer. Refuses
 * anything but a regular file, more than `maxBytes` (at most the guest client's own read limit,
 * 16 MiB), and, when `sha256` is given (the listing's), content that does not match it.
 * Throws PaddockError `STAGED_FILE_REFUSED`.
 */
export async function readStagedFile(
  vm: Vm,
  name: string,
  relPath: string,
  maxBytes: number,
  sha256?: string,
): Promise<Buffer> {
  const why = relPathProblem(relPath);
  if (why) throw new Error(`The staged path ${JSON.stringify(relPath)} ${why}`);
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0 || maxBytes > GUEST_LIMITS.maxReadBytes) {
    throw new Error(`maxBytes must be 0..${GUEST_LIMITS.maxReadBytes}`);
  }
  const refuse = (what: string): PaddockError =>
    new PaddockError('STAGED_FILE_REFUSED', `The staged file ${relPath} ${what}.`);
  const guestPath = `${reviewLayerDir(name)}/upper/${relPath}`;
  const st = await vm.stat(guestPath);
  if (st.type !== 'file') throw refuse('is not a regular file in the sandbox');
  if (st.size > maxBytes) throw refuse(`is larger than ${maxBytes} bytes`);
  const data = await vm.readFile(guestPath);
  if (data.length > maxBytes) throw refuse(`is larger than ${maxBytes} bytes`);
  if (sha256 !== undefined && createHash('sha256').update(data).digest('hex') !== sha256) {
    throw refuse('changed since the changes were listed');
  }
  return data;
}
