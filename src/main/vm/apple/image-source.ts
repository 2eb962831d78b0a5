import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Bytes received so far and the expected total (null when the server does not say). */
export interface DownloadProgress {
  received: number;
  total: number | null;
}

/** What {@link downloadImage} fetches, checks and where it puts it. */
export interface DownloadImageOptions {
  url: string;
  /** Expected sha256 of the whole file, lowercase hex (published with the image). */
  sha256: string;
  /** Final path; written only once the hash matches. */
  dest: string;
  onProgress?: (p: DownloadProgress) => void;
  /** Defaults to the global fetch; injectable for tests and proxies. */
  fetch?: typeof fetch;
  signal?: AbortSignal;
}

/** The download failed or did not match its published hash; the message says what to do. */
export class ImageDownloadError extends Error {
  readonly code = 'IMAGE_DOWNLOAD_FAILED';
  constructor(message: string) {
    super(message);
    this.name = 'ImageDownloadError';
  }
}

/**
 * Downloads a published VM image file (macOS and Windows get the image prebuilt, DESIGN "The
 * VM"): streams it to a temporary file next to `dest` while hashing, then renames it into place
 * only if the sha256 matches. A failed or mismatched download leaves nothing at `dest`.
 */
export async function downloadImage(opts: DownloadImageOptions): Promise<void> {
  const want = opts.sha256.toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(want))
    throw new ImageDownloadError('The published sha256 is malformed.');
  const doFetch = opts.fetch ?? fetch;
  await mkdir(dirname(opts.dest), { recursive: true });
  const tmp = `${opts.dest}.part-${randomBytes(4).toString('hex')}`;
  const fh = await open(tmp, 'wx', 0o644);
  let ok = false;
  try {
    let res: Response;
    try {
      res = await doFetch(opts.url, { signal: opts.signal, redirect: 'follow' });
    } catch (e) {
      throw new ImageDownloadError(
        `Could not reach ${opts.url} (${(e as Error).message}); check the connection and try again.`,
      );
    }
    if (!res.ok || !res.body) {
      throw new ImageDownloadError(`The image server answered ${res.status} for ${opts.url}.`);
    }
    const len = res.headers.get('content-length');
    const total = len !== null && /^\d+$/.test(len) ? Number(len) : null;
    const hash = createHash('sha256');
    let received = 0;
    opts.onProgress?.({ received, total });
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        await fh.write(chunk);
        received += chunk.length;
        opts.onProgress?.({ received, total });
      }
    } catch (e) {
      throw new ImageDownloadError(
        `The image download was cut off after ${received} bytes (${(e as Error).message}); try again.`,
      );
    }
    if (total !== null && received !== total) {
      throw new ImageDownloadError(
        `The image download was cut off after ${received} of ${total} bytes; try again.`,
      );
    }
    const got = hash.digest('hex');
    // SECURITY: the image becomes the sandbox's root filesystem; only the published bytes do.
    if (got !== want) {
      throw new ImageDownloadError(
        `The downloaded image does not match its published checksum (sha256 ${got}, expected ${want}); it was discarded. Try again, and report it if it persists.`,
      );
    }
    await fh.sync();
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await rm(tmp, { force: true });
  }
  await rename(tmp, opts.dest);
}
