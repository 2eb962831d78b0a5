/**
 * The host's check of what the guest says it staged (review.ts): a good listing is parsed, and
 * every hostile or malformed one is refused as a whole. The guest program itself runs in
 * test/vm/review.test.ts; here a thin fake Vm stands in for the channel to test the output cap.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { ExecHandle, ExecRequest, ExecResult, Vm } from '../../src/main/vm/backend.js';
import {
  MAX_LISTING_BYTES,
  parseStagedListing,
  readStagedChanges,
  readStagedFile,
  reviewLayerDir,
} from '../../src/main/vm/review.js';
import { relPathProblem } from '../../src/shared/rel-path.js';

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const file = (text: string, mode = 0o644) => ({
  type: 'file',
  mode,
  size: Buffer.byteLength(text),
  sha256: sha(text),
});

function doc(entries: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    format: 1,
    truncated: false,
    shares: [{ name: 'w', truncated: false, skipped: 0, entries, ...extra }],
  });
}

const good = [
  { path: 'a.txt', ...file('new\n'), lower: file('old\n') },
  { path: 'gone.txt', type: 'whiteout', lower: file('x') },
  { path: 'src', type: 'opaque', mode: 0o755, lower: { type: 'dir', mode: 0o755, size: 0 } },
  { path: 'src/new.ts', ...file('export {};\n'), lower: null },
  { path: 'run.sh', ...file('#!/bin/sh\n', 0o755), lower: file('#!/bin/sh\n') },
  { path: 'out', type: 'symlink', size: 11, target: '/etc/passwd', lower: null },
  { path: 'fifo', type: 'other', mode: 0o644, lower: null },
  { path: 'été', type: 'dir', mode: 0o700, lower: null },
  { path: 'été/ü.txt', ...file(''), lower: null },
];

const refusedFor = (entry: Record<string, unknown>) => () =>
  parseStagedListing(doc([entry]), ['w']);

describe('parseStagedListing', () => {
  it('parses a good listing', () => {
    const l = parseStagedListing(doc(good), ['w']);
    expect(l.truncated).toBe(false);
    expect(l.shares).toEqual([{ name: 'w', truncated: false, skipped: 0, entries: good }]);
    const t = parseStagedListing(doc([], { truncated: true, skipped: 3 }), ['w']);
    expect(t).toEqual({
      truncated: true,
      shares: [{ name: 'w', truncated: true, skipped: 3, entries: [] }],
    });
  });

  it('refuses paths that leave the folder or are malformed', () => {
    const base = { ...file('x'), lower: null };
    for (const p of [
      '../x',
      'a/../../x',
      '..',
      '.',
      './a',
      '/etc/passwd',
      '',
      'a//b',
      'a/',
      'a\0b',
      'a\\..\\..\\x',
      'x'.repeat(256),
      `${'abcdefgh/'.repeat(455)}x`, // 4096 bytes
      '\ud800',
    ]) {
      expect(refusedFor({ path: p, ...base }), JSON.stringify(p).slice(0, 40)).toThrow(
        /refused \(shares\.0\.entries\.0\.path: path /,
      );
    }
    expect(relPathProblem('x'.repeat(255))).toBeNull();
    expect(relPathProblem(`${'a/'.repeat(2047)}b`)).toBeNull(); // 4095 bytes
  });

  it('refuses bad sizes, modes, hashes, types and fields', () => {
    const bad: Record<string, unknown>[] = [
      { path: 'a', ...file('x'), size: -1, lower: null },
      { path: 'a', ...file('x'), size: 2 ** 53, lower: null },
      { path: 'a', ...file('x'), size: 1.5, lower: null },
      { path: 'a', ...file('x'), size: '1', lower: null },
      { path: 'a', ...file('x'), mode: 0o10000, lower: null },
      { path: 'a', ...file('x'), mode: -1, lower: null },
      { path: 'a', ...file('x'), sha256: 'A'.repeat(64), lower: null },
      { path: 'a', ...file('x'), sha256: 'ab', lower: null },
      { path: 'a', ...file('x'), sha256: undefined, lower: null },
      { path: 'a', ...file('x') }, // lower missing
      { path: 'a', ...file('x'), lower: { ...file('y'), sha256: 'z'.repeat(64) } },
      { path: 'a', ...file('x'), lower: { type: 'whiteout' } },
      { path: 'a', ...file('x'), lower: null, extra: 1 },
      { path: 'a', type: 'device', mode: 0, lower: null },
      { path: 'a', type: 'symlink', size: 3, target: 'a\0b', lower: null },
      { path: 'a', type: 'symlink', size: 5, target: 'abc', lower: null },
      { path: 'a', type: 'symlink', size: 0, target: '', lower: null },
    ];
    for (const e of bad) expect(refusedFor(e), JSON.stringify(e)).toThrow(/refused/);
  });

  it('refuses duplicates, orphans, too many entries and the wrong shares', () => {
    const f = { ...file('x'), lower: null };
    expect(() =>
      parseStagedListing(
        doc([
          { path: 'a', ...f },
          { path: 'a', ...f },
        ]),
        ['w'],
      ),
    ).toThrow(/listed twice/);
    expect(() => parseStagedListing(doc([{ path: 'd/a', ...f }]), ['w'])).toThrow(/without its/);
    expect(() =>
      parseStagedListing(
        doc([
          { path: 'd', ...f },
          { path: 'd/a', ...f },
        ]),
        ['w'],
      ),
    ).toThrow(/without its/);
    const many = Array.from({ length: 11 }, (_, i) => ({ path: `f${i}`, ...f }));
    expect(() => parseStagedListing(doc(many), ['w'], 10)).toThrow(/more than 10 entries/);
    expect(() => parseStagedListing(doc([]), ['other'])).toThrow(/grants asked for/);
    expect(() => parseStagedListing(doc([]), ['w', 'x'])).toThrow(/grants asked for/);
    expect(() => parseStagedListing('{"format":2,"truncated":false,"shares":[]}', [])).toThrow(
      /refused/,
    );
    expect(() => parseStagedListing('not json', ['w'])).toThrow(/not JSON/);
    expect(() => parseStagedListing(doc([], { skipped: -1 }), ['w'])).toThrow(/refused/);
    try {
      parseStagedListing(doc([{ path: '../x', ...f }]), ['w']);
    } catch (e) {
      expect(e).toMatchObject({ code: 'STAGED_LISTING_INVALID' });
    }
  });
});

/** A Vm whose only working part is exec, answering with `stdout` and `exitCode`. */
function fakeVm(
  stdout: (out: PassThrough) => void,
  exitCode = 0,
  seen: ExecRequest[] = [],
  files: Record<string, Buffer> = {},
): Vm {
  return {
    exec(req: ExecRequest): ExecHandle {
      seen.push(req);
      const out = new PassThrough();
      const err = new PassThrough();
      let killed = false;
      const result = new Promise<ExecResult>((resolve) => {
        out.on('finish', () =>
          resolve({
            exitCode: killed ? 137 : exitCode,
            signal: null,
            timedOut: false,
            durationMs: 1,
          }),
        );
      });
      setImmediate(() => {
        err.end(exitCode ? 'paddock-staged: /mnt/w is not a review grant\n' : '');
        stdout(out);
      });
      return {
        stdout: out,
        stderr: err,
        stdin: new PassThrough(),
        result,
        kill: () => {
          killed = true;
          out.end();
        },
      };
    },
    stat: async (p: string) => ({
      path: p,
      type: files[p] ? 'file' : 'symlink',
      size: files[p]?.length ?? 0,
      mode: 0o644,
      mtimeMs: 0,
    }),
    readFile: async (p: string) => files[p]!,
  } as unknown as Vm;
}

describe('readStagedChanges', () => {
  it('runs the lister for the names asked and parses its output', async () => {
    const seen: ExecRequest[] = [];
    const vm = fakeVm((o) => o.end(doc(good)), 0, seen);
    const l = await readStagedChanges(vm, ['w']);
    expect(l.shares[0]!.entries).toHaveLength(good.length);
    expect(seen[0]!.argv![0]).toBe('/usr/local/bin/paddock-staged');
    expect(seen[0]!.argv!.at(-1)).toBe('w');
    await expect(readStagedChanges(vm, ['../x'])).rejects.toThrow(/Bad share name/);
    await expect(readStagedChanges(vm, ['w', 'w'])).rejects.toThrow(/twice/);
    expect(await readStagedChanges(vm, [])).toEqual({ shares: [], truncated: false });
  });

  it('stops a guest that prints too much, and refuses output that is not UTF-8', async () => {
    const chunk = Buffer.alloc(4 * 1024 * 1024, 0x20);
    const flood = fakeVm((o) => {
      let sent = 0;
      const push = (): void => {
        while (sent <= MAX_LISTING_BYTES + chunk.length && !o.writableEnded) {
          sent += chunk.length;
          if (!o.write(chunk)) return void o.once('drain', push);
        }
        if (!o.writableEnded) o.end();
      };
      push();
    });
    await expect(readStagedChanges(flood, ['w'])).rejects.toThrow(/more than 67108864 bytes/);
    const latin1 = fakeVm((o) => o.end(Buffer.from([0x7b, 0xff, 0x7d])));
    await expect(readStagedChanges(latin1, ['w'])).rejects.toThrow(/not UTF-8/);
  });

  it('reports a failed lister with its last line', async () => {
    await expect(
      readStagedChanges(
        fakeVm((o) => o.end(), 2),
        ['w'],
      ),
    ).rejects.toMatchObject({
      code: 'STAGED_LISTING_FAILED',
      message: expect.stringContaining('is not a review grant'),
    });
  });
});

describe('readStagedFile', () => {
  const upper = `${reviewLayerDir('w')}/upper`;
  const vm = fakeVm((o) => o.end(), 0, [], { [`${upper}/a.txt`]: Buffer.from('hello') });

  it('reads a staged file from the upper layer, checked against the listing', async () => {
    expect((await readStagedFile(vm, 'w', 'a.txt', 5, sha('hello'))).toString()).toBe('hello');
    await expect(readStagedFile(vm, 'w', 'a.txt', 5, sha('other'))).rejects.toMatchObject({
      code: 'STAGED_FILE_REFUSED',
    });
    await expect(readStagedFile(vm, 'w', 'a.txt', 4)).rejects.toThrow(/larger than 4 bytes/);
    await expect(readStagedFile(vm, 'w', 'link', 4)).rejects.toThrow(/not a regular file/);
  });

  it('refuses bad paths, names and limits before asking the guest', async () => {
    await expect(readStagedFile(vm, 'w', '../lower/a.txt', 5)).rejects.toThrow(/\.\./);
    await expect(readStagedFile(vm, 'w', '/etc/passwd', 5)).rejects.toThrow(/absolute/);
    await expect(readStagedFile(vm, '..', 'a.txt', 5)).rejects.toThrow(/Bad share name/);
    await expect(readStagedFile(vm, 'w', 'a.txt', 64 * 1024 * 1024)).rejects.toThrow(/maxBytes/);
  });
});
