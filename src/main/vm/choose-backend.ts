import { join } from 'node:path';
import { PaddockError } from '../../shared/result.js';
import { packageRoot } from '../platform/app-paths.js';
import { AppleBackend } from './apple/backend.js';
import type { VmBackend } from './backend.js';
import { imagesDir } from './image.js';
import { QemuBackend } from './qemu/backend.js';
import { WslBackend } from './wsl/backend.js';

/** Which VM backend runs the sandbox. */
export type BackendKind = 'qemu' | 'apple' | 'wsl';

/** The backend chosen for this machine, and the sentence `paddock doctor` shows for it. */
export interface BackendChoice {
  kind: BackendKind;
  backend: VmBackend;
  reason: string;
}

/** What the choice depends on; the defaults are this process's. */
export interface ChooseBackendOptions {
  dataDir: string;
  platform?: NodeJS.Platform;
  env?: NodeJS.ProcessEnv;
}

const KINDS: readonly BackendKind[] = ['qemu', 'apple', 'wsl'];

/**
 * The one place that decides the VM backend: Apple's Virtualization.framework (through the Swift
 * helper) on macOS, WSL2 on Windows, QEMU on Linux and elsewhere. `PADDOCK_BACKEND=qemu|apple|wsl`
 * overrides it (tests, and QEMU on any platform). Every host gets its backend from here; nothing
 * else constructs one.
 */
export function chooseBackend(opts: ChooseBackendOptions): BackendChoice {
  const env = opts.env ?? process.env;
  const platform = opts.platform ?? process.platform;
  const wanted = env.PADDOCK_BACKEND?.trim().toLowerCase();
  if (wanted && !KINDS.includes(wanted as BackendKind)) {
    throw new PaddockError(
      'BAD_OPTION',
      `PADDOCK_BACKEND is "${env.PADDOCK_BACKEND}"; use one of ${KINDS.join(', ')}, or unset it.`,
    );
  }
  const kind: BackendKind =
    (wanted as BackendKind | undefined) ??
    (platform === 'darwin' ? 'apple' : platform === 'win32' ? 'wsl' : 'qemu');
  const why = wanted
    ? `PADDOCK_BACKEND=${wanted}`
    : `the default on ${platform === 'darwin' ? 'macOS' : platform === 'win32' ? 'Windows' : platform}`;
  switch (kind) {
    case 'apple':
      return {
        kind,
        backend: new AppleBackend({
          helperBinary:
            env.PADDOCK_VZ_HELPER ??
            join(packageRoot(), 'src', 'vz-helper', '.build', 'release', 'PaddockVZ'),
        }),
        reason: `Apple Virtualization.framework through the PaddockVZ helper (${why}).`,
      };
    case 'wsl':
      return {
        kind,
        backend: new WslBackend({
          rootfsTar: env.PADDOCK_WSL_ROOTFS ?? join(imagesDir(opts.dataDir), 'wsl-rootfs.tar'),
        }),
        reason: `WSL2, one distro per session; weaker isolation than a VM of its own (${why}).`,
      };
    case 'qemu':
      return {
        kind,
        backend: new QemuBackend(),
        reason: `QEMU microvm, KVM when a probe boot shows it works, else TCG (${why}).`,
      };
  }
}
