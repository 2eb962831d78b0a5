import os from 'node:os';
import path from 'node:path';
import { buildImage, findImage, type ImageInfo } from '../../src/main/vm/image.js';

/**
 * The data folder the VM tests share, so the image is built once and reused by later runs:
 * PADDOCK_TEST_CACHE (CI sets it), else a fixed folder under the temp dir.
 */
export const vmTestHome =
  process.env.PADDOCK_TEST_CACHE ?? path.join(os.tmpdir(), 'paddock-test-home');

/** Builds the guest image into the test data folder unless a finished one is there. */
export async function ensureTestImage(): Promise<ImageInfo> {
  const found = await findImage(vmTestHome);
  if (found) return found;
  let last = '';
  return buildImage({
    dataDir: vmTestHome,
    onProgress: (step) => {
      if (step !== last) console.log(`image build: ${(last = step)}`);
    },
  });
}
