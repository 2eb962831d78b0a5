/**
 * Fail closed: where no private mount namespace can be made (no unshare here, standing in for
 * user namespaces being disabled), a VM whose read-write grants hold protected paths must not
 * start, and the error must say why and what the person can do.
 */
import { describe, expect, it } from 'vitest';
import { mountNamespaceSupport, qemuCommand } from '../../src/main/vm/mount-namespace.js';
import { PaddockError } from '../../src/shared/result.js';

describe('without a mount namespace', () => {
  it('refuses to start QEMU with protected paths, and says what to do', () => {
    const saved = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(mountNamespaceSupport()).toEqual({
        ok: false,
        why: 'the unshare command (util-linux) is not installed',
      });
      let err: unknown;
      try {
        qemuCommand({ qemu: 'qemu', args: [], readOnly: ['/w/repo/.git'], pdeathsig: false });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PaddockError);
      expect((err as PaddockError).code).toBe('PROTECT_UNAVAILABLE');
      expect((err as Error).message).toMatch(
        /\.git in \/w\/repo.*read-only.*Grant the folder read-only/,
      );
      // With nothing to protect, QEMU starts as it always did.
      expect(qemuCommand({ qemu: 'qemu', args: [], readOnly: [], pdeathsig: false }).command).toBe(
        'qemu',
      );
    } finally {
      process.env.PATH = saved;
    }
  });
});
