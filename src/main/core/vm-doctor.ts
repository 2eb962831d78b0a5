import type { DoctorInputs } from './doctor.js';
import { describeMissingTools, installCommand, missingHostTools } from '../vm/host-tools.js';
import { findImage, imageBuildProblem } from '../vm/image.js';
import { mountNamespaceSupport } from '../vm/mount-namespace.js';
import { chooseBackend, type BackendChoice } from '../vm/choose-backend.js';
import { QemuBackend } from '../vm/qemu/backend.js';

/**
 * The VM half of `paddock doctor`: whether KVM really boots the image's kernel (a probe boot,
 * cached per QEMU and kernel version), and which image is installed.
 */
export async function vmDoctorInputs(
  dataDir: string,
  /** The backend a core already chose; without it (the CLI's doctor) it is chosen here, once. */
  chosen?: BackendChoice,
): Promise<Pick<DoctorInputs, 'probeAccel' | 'image' | 'hostTools' | 'backend'>> {
  const image = await findImage(dataDir).catch(() => null);
  let choice: BackendChoice | Error;
  try {
    choice = chosen ?? chooseBackend({ dataDir });
  } catch (e) {
    choice = e as Error;
  }
  return {
    backend: () =>
      choice instanceof Error
        ? { status: 'fail', detail: choice.message, fix: 'unset PADDOCK_BACKEND' }
        : { status: 'ok', detail: `${choice.kind}: ${choice.reason}` },
    hostTools: () => {
      // Image tools matter only while there is no image to use.
      const missing = missingHostTools(image ? ['vm'] : ['vm', 'image']);
      const sentence = describeMissingTools(missing, 'Paddock');
      if (sentence) {
        return { status: 'fail', detail: sentence, fix: installCommand(missing.map((t) => t.pkg)) };
      }
      // Read-write grants that hold files host tools execute (.git, .envrc, ...) need QEMU in a
      // mount namespace of its own; without one such grants are refused (protected-paths.ts).
      const ns = mountNamespaceSupport();
      return ns.ok
        ? { status: 'ok', detail: 'Every program the VM and its image recipe run is installed.' }
        : {
            status: 'warn',
            detail: `Read-write grants of folders holding .git, .envrc or editor settings will be refused: ${ns.why}`,
          };
    },
    image: () =>
      image
        ? {
            status: 'ok',
            detail: `Version ${image.version}, kernel ${image.manifest.kernel.release}, built ${image.manifest.builtAt}.`,
          }
        : ((problem) =>
            problem
              ? {
                  status: 'fail',
                  detail: `No guest image is built yet, and it cannot be built here. ${problem}`,
                }
              : {
                  status: 'fail',
                  detail: 'No guest image is built yet.',
                  fix: 'paddock image build',
                })(imageBuildProblem(dataDir)),
    probeAccel: async () => {
      if (!image) {
        return {
          accel: 'unknown',
          detail: 'KVM is probed by booting the guest kernel, which needs the image first.',
          fix: 'paddock image build',
        };
      }
      if (choice instanceof Error) return { accel: 'unknown', detail: choice.message };
      const { backend } = choice;
      if (!(backend instanceof QemuBackend)) {
        return { accel: 'unknown', detail: 'This backend needs no KVM probe.' };
      }
      const p = await backend.probe(image.dir);
      return p.accel === 'kvm'
        ? { accel: 'kvm', detail: `KVM works (${p.reason}).` }
        : {
            accel: 'tcg',
            detail: `Using QEMU TCG, software emulation, slower: ${p.reason}`,
            fix: 'On a Linux machine with virtualisation: enable VT-x/AMD-V in the firmware and make /dev/kvm accessible (sudo usermod -aG kvm $USER).',
          };
    },
  };
}
