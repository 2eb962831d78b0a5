import type { Command } from 'commander';
import { PaddockError } from '../../shared/result.js';
import { dataDir } from '../platform/app-paths.js';
import { findImage, IMAGE_MISSING_HINT } from '../vm/image.js';
import { buildImageWithProgress } from './image-build-ui.js';

/** `paddock image build|status`: the guest image in the data folder. */
export function registerImage(program: Command): void {
  const image = program.command('image').description('Build or inspect the guest VM image');

  image
    .command('build')
    .description('Build the guest image into the data folder (reuses a finished build)')
    .option('--force', 'rebuild even if the current recipe was already built')
    .action(async (opts: { force?: boolean }) => {
      const started = Date.now();
      const info = await buildImageWithProgress(dataDir(), { force: Boolean(opts.force) });
      const size = Object.values(info.manifest.files).reduce((n, f) => n + f.size, 0);
      process.stdout.write(
        `Image ${info.version} ready in ${info.dir} (${(size / 2 ** 20).toFixed(0)} MiB apparent, ` +
          `${((Date.now() - started) / 1000).toFixed(1)} s).\n`,
      );
    });

  image
    .command('status')
    .description('Show the current image and its manifest')
    .option('--json', 'print the manifest as JSON')
    .action(async (opts: { json?: boolean }) => {
      const info = await findImage(dataDir());
      if (!info) {
        throw new PaddockError('IMAGE_MISSING', IMAGE_MISSING_HINT);
      }
      if (opts.json) {
        process.stdout.write(JSON.stringify(info.manifest) + '\n');
        return;
      }
      const m = info.manifest;
      process.stdout.write(
        `Image ${m.version} built ${m.builtAt} in ${m.buildSeconds} s\n` +
          `  folder: ${info.dir}\n  kernel: ${m.kernel.release} (${m.kernel.package} ${m.kernel.packageVersion})\n` +
          `  suite: ${m.suite}, ${Object.keys(m.packages).length} packages\n`,
      );
    });
}
