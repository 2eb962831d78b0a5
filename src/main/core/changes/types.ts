import type { StagedListing } from '../../vm/review.js';

/**
 * What the guest reports of a review grant's upper layer (vm-images/paddock-staged, read and
 * checked by vm/review.ts) and the limits the host holds it to. A listing comes from the guest,
 * so the planner checks its paths again.
 */

export type { StagedEntry, StagedListing, StagedShare } from '../../vm/review.js';

/**
 * Where staged changes are read from: a live session's VM (vm/review.ts), or a fake made of
 * folders in tests. `read` returns at most `maxBytes` bytes, or fails.
 */
export interface StagedSource {
  list(): Promise<StagedListing>;
  /** `sha256`: the listing's hash of the file; the read fails when the content differs. */
  read(name: string, relPath: string, maxBytes: number, sha256?: string): Promise<Buffer>;
  /** The largest file `read` can return (the guest channel's limit), when it has one. */
  readonly maxReadBytes?: number;
  /**
   * Which staging area this is (a VM's id). A pending change missing from a later listing is
   * dropped only when the same area listed it before: a new VM starts with an empty layer, and
   * its silence must not erase what an earlier one staged.
   */
  identity?(): Promise<string>;
}

/** How much a changeset may hold; the guest decides what it stages, so all of it is bounded. */
export interface ChangeLimits {
  /** One file's staged content. */
  maxFileBytes: number;
  /** All staged content of one changeset. */
  maxChangesetBytes: number;
  /** Entries in one share's listing, and files a deletion may reach in the folder. */
  maxEntries: number;
}

export const DEFAULT_LIMITS: ChangeLimits = {
  maxFileBytes: 512 * 1024 * 1024,
  maxChangesetBytes: 4 * 1024 * 1024 * 1024,
  maxEntries: 200_000,
};

/** Text shown in a diff: up to this many bytes of each side. */
export const MAX_TEXT_BYTES = 1024 * 1024;
