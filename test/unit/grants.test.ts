import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFolderArg, resolveGrants } from '../../src/main/vm/grants.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('folder grants', () => {
  let t: { dir: string; cleanup(): void };
  let home: string;
  let data: string;
  beforeAll(() => {
    t = tempDir();
    home = path.join(t.dir, 'home');
    data = path.join(home, '.config', 'Paddock');
    fs.mkdirSync(data, { recursive: true });
    fs.mkdirSync(path.join(home, 'work', 'report'), { recursive: true });
    fs.mkdirSync(path.join(t.dir, 'other', 'report'), { recursive: true });
    fs.mkdirSync(path.join(t.dir, 'My Files'), { recursive: true });
    fs.writeFileSync(path.join(home, 'notes.txt'), 'x');
    fs.symlinkSync('/etc', path.join(home, 'etc-link'));
    fs.symlinkSync(path.join(home, 'work', 'report'), path.join(home, 'report-link'));
  });
  afterAll(() => t.cleanup());
  const opts = () => ({ dataDir: data, home });

  it('parses PATH[:ro|:review|:direct]', () => {
    const ro = { path: '/a/b', readOnly: true, review: false };
    const direct = { path: '/a/b', readOnly: false, review: false };
    const review = { path: '/a/b', readOnly: false, review: true };
    expect(parseFolderArg('/a/b:ro')).toEqual(ro);
    expect(parseFolderArg('/a/b')).toEqual(direct);
    expect(parseFolderArg('/a/b', 'review')).toEqual(review);
    expect(parseFolderArg('/a/b:rw', 'review')).toEqual(direct);
    expect(parseFolderArg('/a/b:direct', 'review')).toEqual(direct);
    expect(parseFolderArg('/a/b:review')).toEqual(review);
    expect(parseFolderArg('/a/b:ro', 'review')).toEqual(ro);
  });

  it('marks a review grant, and never a read-only one', () => {
    const [rv, ro] = resolveGrants(
      [
        { path: path.join(home, 'work', 'report'), readOnly: false, review: true },
        { path: path.join(t.dir, 'other', 'report'), readOnly: true, review: true },
      ],
      opts(),
    );
    expect(rv!.review).toBe(true);
    expect(ro!.review).toBeUndefined();
  });

  it('mounts at /mnt/<basename>, suffixes a clash, keeps order and read-only flags', () => {
    const shares = resolveGrants(
      [
        { path: path.join(home, 'work', 'report'), readOnly: false },
        { path: path.join(t.dir, 'other', 'report'), readOnly: true },
        { path: path.join(t.dir, 'My Files'), readOnly: false },
      ],
      opts(),
    );
    expect(shares.map((s) => [s.name, s.readOnly])).toEqual([
      ['report', false],
      ['report-2', true],
      ['My_Files', false],
    ]);
  });

  it('resolves symlinks to the real folder before judging it', () => {
    const [s] = resolveGrants([{ path: path.join(home, 'report-link'), readOnly: false }], opts());
    expect(s!.hostPath).toBe(fs.realpathSync(path.join(home, 'work', 'report')));
    expect(() =>
      resolveGrants([{ path: path.join(home, 'etc-link'), readOnly: true }], opts()),
    ).toThrow(/will not share \/etc: it is a system folder/);
  });

  it.each([
    ['/', /root of the disk/],
    ['/etc', /system folder/],
    ['/usr/share', /system folder/],
    ['/var/lib', /system folder/],
  ])('refuses %s', (p, why) => {
    expect(() => resolveGrants([{ path: p, readOnly: true }], opts())).toThrow(why);
  });

  it('refuses the home folder itself, the data folder and anything holding it', () => {
    expect(() => resolveGrants([{ path: home, readOnly: true }], opts())).toThrow(
      /whole home folder/,
    );
    expect(() => resolveGrants([{ path: data, readOnly: true }], opts())).toThrow(
      /Paddock’s own data folder/,
    );
    expect(() =>
      resolveGrants([{ path: path.join(home, '.config'), readOnly: true }], opts()),
    ).toThrow(/Paddock’s own data folder/);
  });

  it('refuses missing paths, files and overlapping grants with what to do', () => {
    expect(() => resolveGrants([{ path: '/nope/nothing', readOnly: false }], opts())).toThrow(
      /does not exist/,
    );
    expect(() =>
      resolveGrants([{ path: path.join(home, 'notes.txt'), readOnly: false }], opts()),
    ).toThrow(/is a file, not a folder/);
    expect(() =>
      resolveGrants(
        [
          { path: path.join(home, 'work'), readOnly: false },
          { path: path.join(home, 'work', 'report'), readOnly: true },
        ],
        opts(),
      ),
    ).toThrow(/overlaps/);
  });
});
