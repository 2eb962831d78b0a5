import type { DoctorInputs } from './doctor.js';
import { findImage } from '../vm/image.js';
import { QemuBackend } from '../vm/qemu/backend.js';

/**
 * The VM half of `paddock doctor`: whether KVM really boots the image's kernel (a probe boot,
 * cached per QEMU and kernel version), and which image is installed.
 */
export async function vmDoctorInputs(
  dataDir: string,
): Promise<Pick<DoctorInputs, 'probeAccel' | 'image'>> {
  const image = await findImage(dataDir).catch(() => null);
  return {
    image: () =>
      image
        ? {
            status: 'ok',
            detail: `Version ${image.version}, kernel ${image.manifest.kernel.release}, built ${image.manifest.builtAt}.`,
          }
        : { status: 'fail', detail: 'No guest image is built yet.', fix: 'paddock image build' },
    probeAccel: async () => {
      if (!image) {
        return {
          accel: 'unknown',
          detail: 'KVM is probed by booting the guest kernel, which needs the image first.',
          fix: 'paddock image build',
        };
      }
      const p = await new QemuBackend().probe(image.dir);
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
