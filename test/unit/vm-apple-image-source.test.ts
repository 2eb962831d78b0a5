/** downloadImage against a real HTTP server on 127.0.0.1: good file, wrong hash, truncation. */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ImageDownloadError,
  downloadImage,
  type DownloadProgress,
} from '../../src/main/vm/apple/image-source.js';

const body = randomBytes(300_000);
const sha = createHash('sha256').update(body).digest('hex');
let server: http.Server;
let base: string;
let tmp: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pdk-img-'));
  server = http.createServer((req, res) => {
    if (req.url === '/good') {
      res.writeHead(200, { 'content-length': body.length });
      // In pieces, so progress is reported more than once.
      res.write(body.subarray(0, 100_000));
      setTimeout(() => res.end(body.subarray(100_000)), 20);
    } else if (req.url === '/truncated') {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 120_000), () => res.destroy());
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(tmp, { recursive: true, force: true });
});

const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.includes('.part-'));

describe('downloadImage', () => {
  it('downloads, verifies and renames into place, reporting progress', async () => {
    const dest = path.join(tmp, 'good', 'rootfs.img');
    const seen: DownloadProgress[] = [];
    await downloadImage({
      url: `${base}/good`,
      sha256: sha.toUpperCase(),
      dest,
      onProgress: (p) => seen.push(p),
    });
    expect(fs.readFileSync(dest).equals(body)).toBe(true);
    expect(seen[0]).toEqual({ received: 0, total: body.length });
    expect(seen.at(-1)).toEqual({ received: body.length, total: body.length });
    expect(seen.length).toBeGreaterThan(2);
    expect(leftovers(path.dirname(dest))).toEqual([]);
  });

  it('refuses a file whose hash does not match, leaving nothing behind', async () => {
    const dest = path.join(tmp, 'bad', 'rootfs.img');
    const wrong = createHash('sha256').update('something else').digest('hex');
    const err = await downloadImage({ url: `${base}/good`, sha256: wrong, dest }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ImageDownloadError);
    expect((err as Error).message).toMatch(/does not match its published checksum.*discarded/);
    expect(fs.existsSync(dest)).toBe(false);
    expect(leftovers(path.dirname(dest))).toEqual([]);
  });

  it('refuses a truncated download', async () => {
    const dest = path.join(tmp, 'cut', 'rootfs.img');
    await expect(downloadImage({ url: `${base}/truncated`, sha256: sha, dest })).rejects.toThrow(
      /cut off/,
    );
    expect(fs.existsSync(dest)).toBe(false);
    expect(leftovers(path.dirname(dest))).toEqual([]);
  });

  it('reports an HTTP error and a malformed hash', async () => {
    const dest = path.join(tmp, 'missing', 'rootfs.img');
    await expect(downloadImage({ url: `${base}/nope`, sha256: sha, dest })).rejects.toThrow(/404/);
    await expect(downloadImage({ url: `${base}/good`, sha256: 'abc', dest })).rejects.toThrow(
      /malformed/,
    );
    expect(fs.existsSync(dest)).toBe(false);
  });

  it('keeps an existing good file when a new download fails', async () => {
    const dest = path.join(tmp, 'keep', 'rootfs.img');
    await downloadImage({ url: `${base}/good`, sha256: sha, dest });
    await expect(downloadImage({ url: `${base}/truncated`, sha256: sha, dest })).rejects.toThrow();
    expect(fs.readFileSync(dest).equals(body)).toBe(true);
  });
});
