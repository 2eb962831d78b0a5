import { PaddockError } from '../../shared/result.js';
import {
  buildImage,
  findImage,
  IMAGE_MISSING_HINT,
  ImageBuildError,
  type ImageInfo,
} from '../vm/image.js';
import { terminalIo } from './terminal.js';

/**
 * The image build's progress on stderr: a bar redrawn in place on a terminal, else one plain line
 * per change (`image build: 40% rootfs`), so logs never see the recipe's `@@progress` protocol.
 */
export function progressPrinter(
  stream: NodeJS.WriteStream = process.stderr,
): ((step: string, fraction: number) => void) & { end(): void } {
  let last = '';
  let drawn = false;
  const print = (step: string, fraction: number): void => {
    const pct = Math.max(0, Math.min(100, Math.round(fraction * 100)));
    const line = `image build: ${pct}% ${step}`;
    if (line === last) return;
    last = line;
    if (stream.isTTY) {
      const width = 24;
      const filled = Math.round((pct / 100) * width);
      stream.write(`\r[${'#'.repeat(filled)}${' '.repeat(width - filled)}] ${line}\x1b[K`);
      drawn = true;
    } else {
      stream.write(line + '\n');
    }
  };
  return Object.assign(print, {
    end: () => {
      if (drawn) stream.write('\n');
      drawn = false;
    },
  });
}

/** Builds the image with progress on stderr; a failure becomes the recipe's one-sentence cause. */
export async function buildImageWithProgress(
  dataDir: string,
  opts: { force?: boolean } = {},
): Promise<ImageInfo> {
  const progress = progressPrinter();
  try {
    return await buildImage({ dataDir, force: Boolean(opts.force), onProgress: progress });
  } catch (e) {
    if (e instanceof ImageBuildError) throw new PaddockError('IMAGE_BUILD_FAILED', e.message);
    throw e;
  } finally {
    progress.end();
  }
}

/**
 * The image for `paddock exec` and `paddock run`. When there is none yet, a first run does not
 * send the person elsewhere: on a terminal it asks once and builds it, with `--yes` it builds at
 * once, and without a terminal it ends with the sentence and the command to run.
 */
export async function imageOrBuild(dataDir: string, yes: boolean): Promise<ImageInfo> {
  const found = await findImage(dataDir);
  if (found) return found;
  const io = terminalIo();
  if (!yes) {
    if (!io.tty) {
      throw new PaddockError(
        'IMAGE_MISSING',
        `${IMAGE_MISSING_HINT.replace(/\.$/, '')}, or add --yes to build it first.`,
      );
    }
    const answer = await io.ask(
      'The sandbox VM image is not built yet. Build it now (about a minute)? [Y/n] ',
    );
    if (answer !== '' && answer !== 'y' && answer !== 'yes') {
      throw new PaddockError('IMAGE_MISSING', IMAGE_MISSING_HINT);
    }
  } else {
    process.stderr.write('The sandbox VM image is not built yet; building it first.\n');
  }
  return buildImageWithProgress(dataDir);
}
