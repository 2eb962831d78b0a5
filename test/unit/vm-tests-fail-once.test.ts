import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { tempDir } from '../helpers/temp-dir.js';

const repo = path.resolve(import.meta.dirname, '../..');

/**
 * When the guest image cannot be built, every VM test file fails once, for that reason: a failed
 * beforeAll is not followed by teardown errors (`Cannot read properties of undefined`) that hide
 * it. On a new machine without kmod each file used to report a second, unrelated-looking error.
 */
it('VM test files fail once, with the image error, when the image cannot be built', () => {
  const t = tempDir();
  try {
    // A PATH with node alone: the image build's check names the missing tools before starting.
    const bin = path.join(t.dir, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
    const r = spawnSync(
      process.execPath,
      [path.join(repo, 'node_modules/vitest/vitest.mjs'), 'run', '--project', 'vm'],
      {
        cwd: repo,
        encoding: 'utf8',
        env: {
          ...process.env,
          PATH: bin,
          PADDOCK_TEST_CACHE: path.join(t.dir, 'home'),
          NO_COLOR: '1',
          FORCE_COLOR: '0',
        },
        timeout: 120_000,
      },
    );
    expect(r.status).not.toBe(0);
    const out = r.stdout + r.stderr;
    // Each failure block: " FAIL  vm  test/vm/FILE > SUITE" and, next, the error's first line.
    const failures = [
      ...out.matchAll(/^ FAIL\s+\|?vm\|?\s+test\/vm\/(\S+) [^\n]*\n(\S[^\n]*)/gm),
    ].map((m) => ({ file: m[1]!, error: m[2]! }));
    const files = fs.readdirSync(path.join(repo, 'test/vm')).filter((f) => f.endsWith('.test.ts'));
    expect([...new Set(failures.map((f) => f.file))].sort()).toEqual(files.sort());
    for (const f of failures) {
      expect(f.error, f.file).toMatch(/^ImageBuildError: Building the VM image needs .*missing/);
    }
    expect(out).not.toMatch(/Cannot read properties of undefined|argument must be of type string/);
  } finally {
    t.cleanup();
  }
}, 150_000);
