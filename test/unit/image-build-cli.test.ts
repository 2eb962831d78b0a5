import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { failureCause } from '../../src/main/vm/image.js';
import { paddock } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('the image build, as a person meets it', () => {
  let home: { dir: string; cleanup(): void };
  let bin: string;
  beforeAll(() => {
    home = tempDir();
    // A PATH with node alone, as on a machine where setup.sh never ran.
    bin = path.join(home.dir, 'bin');
    fs.mkdirSync(bin);
    fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  });
  afterAll(() => home?.cleanup());

  it('names every missing host tool with its package before anything is downloaded', () => {
    const data = path.join(home.dir, 'data');
    const r = paddock(['image', 'build'], { PADDOCK_HOME: data, PATH: bin });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(
      /^paddock: Building the VM image needs .*mmdebstrap \(package mmdebstrap\).*, which are missing: run `(sudo )?apt-get install --no-install-recommends [^`]*mmdebstrap[^`]*` \(or `\.\/scripts\/setup\.sh`\)\.\n$/,
    );
    // Nothing was started: no partial build, no log.
    expect(fs.readdirSync(path.join(data, 'images')).filter((n) => n !== '.build.lock')).toEqual(
      [],
    );
  });

  it('doctor lists the missing programs with the command that installs them', () => {
    const r = paddock(['doctor', '--json'], {
      PADDOCK_HOME: path.join(home.dir, 'data'),
      PATH: bin,
    });
    const { checks } = JSON.parse(r.stdout) as {
      checks: { id: string; status: string; detail: string; fix?: string }[];
    };
    const tools = checks.find((c) => c.id === 'host-tools')!;
    expect(tools.status).toBe('fail');
    expect(tools.detail).toMatch(/qemu-img \(package qemu-utils\)/);
    expect(tools.fix).toMatch(/apt-get install --no-install-recommends .*qemu-utils/);
    const image = checks.find((c) => c.id === 'image')!;
    expect(image.detail).toMatch(/cannot be built here\. Building the VM image needs/);
  });

  it.each([
    ['exec', '--', 'true'],
    ['run', 'hello'],
  ])('`paddock %s` without an image and without a terminal says what to run', (...args) => {
    const r = paddock(args, {
      PADDOCK_HOME: path.join(home.dir, 'data2'),
      ANTHROPIC_API_KEY: 'k',
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(
      'The sandbox VM image is not built yet: run `paddock image build` (about a minute), or add --yes to build it first.',
    );
  });

  it('`--yes` builds a missing image first, and its failure is one sentence and the log', () => {
    const r = paddock(['exec', '--yes', '--', 'true'], {
      PADDOCK_HOME: path.join(home.dir, 'data3'),
      PATH: bin,
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^The sandbox VM image is not built yet; building it first\.\n/);
    expect(r.stderr).toMatch(/paddock: Building the VM image needs /);
  });
});

describe('failureCause', () => {
  it('is the recipe’s own last sentence, not the noise around it', () => {
    const log = [
      '@@progress 0.85 initramfs',
      'I: something from mmdebstrap',
      'build.sh: depmod failed',
      'rm: cannot remove x',
    ].join('\n');
    expect(failureCause(log, 'exit 1')).toBe('depmod failed');
  });
  it('falls back to the last line, then to how the recipe ended', () => {
    expect(failureCause('a\nsegfault here.\n\n', 'exit 139')).toBe('segfault here');
    expect(failureCause('', 'SIGKILL')).toBe('the recipe ended (SIGKILL)');
    expect(failureCause(`build.sh: ${'x'.repeat(2000)}`, 'exit 1')).toHaveLength(500);
  });
});
