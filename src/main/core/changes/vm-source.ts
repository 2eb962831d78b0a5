import type { Vm } from '../../vm/backend.js';
import { GUEST_LIMITS } from '../../vm/guest/client.js';
import { readStagedChanges, readStagedFile } from '../../vm/review.js';
import type { StagedSource } from './types.js';

/**
 * A live session's staged changes, read from its VM: the listing of the review grants `names`
 * and single files, each checked by review.ts. Files are read whole over the guest channel, so
 * their size is bounded by its read limit.
 */
export function vmStagedSource(vm: () => Promise<Vm>, names: readonly string[]): StagedSource {
  return {
    maxReadBytes: GUEST_LIMITS.maxReadBytes,
    identity: async () => (await vm()).id,
    list: async () => readStagedChanges(await vm(), names),
    read: async (name, relPath, maxBytes, sha256) =>
      readStagedFile(
        await vm(),
        name,
        relPath,
        Math.min(maxBytes, GUEST_LIMITS.maxReadBytes),
        sha256,
      ),
  };
}
