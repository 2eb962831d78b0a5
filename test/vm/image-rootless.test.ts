import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { describeMissingTools, missingHostTools } from '../../src/main/vm/host-tools.js';
import { ImageBuildError, type ImageManifest } from '../../src/main/vm/image.js';
import { paddockAsync } from '../helpers/cli.js';

const isRoot = process.getuid?.() === 0;

/** `paddock CMD` from source, as `user` when given (root's tests), with the data folder `home`. */
function paddockAs(user: string | null, home: string, args: string[]) {
  return paddockAsync(args, { PADDOCK_HOME: home, HOME: home }, user ? { asUser: user } : {});
}

/**
 * A person does not run a desktop app as root: the image builds as a normal user (mmdebstrap's
 * unshare mode, the ext4 image filled in a user namespace) and the VM boots from it with every
 * file owned as in Debian. Run as root (CI), the build runs as a throwaway user made for it, with
 * the subordinate ids Debian's useradd gives every new user; run as a normal user, as that user.
 */
describe('the image built without root', () => {
  const user = isRoot ? `pdk${randomBytes(3).toString('hex')}` : null;
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'paddock-rootless-'));
  const sbin = { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` };
  beforeAll(() => {
    // Fail for the real reason when the build cannot work here, before making a user.
    const missing = describeMissingTools(
      missingHostTools(['image'], { root: false }),
      'Building the VM image',
    );
    if (missing) throw new ImageBuildError(missing, '');
    if (user) {
      execFileSync('useradd', ['--create-home', '--shell', '/usr/sbin/nologin', user], {
        env: sbin,
      });
      fs.chownSync(
        home,
        Number(execFileSync('id', ['-u', user])),
        Number(execFileSync('id', ['-g', user])),
      );
    }
  });
  afterAll(() => {
    fs.rmSync(home, { recursive: true, force: true });
    if (user) spawnSync('userdel', ['--remove', user], { env: sbin });
  });

  it('builds as a normal user, and the guest sees root-owned system files', async () => {
    if (user) {
      expect(fs.readFileSync('/etc/subuid', 'utf8')).toMatch(new RegExp(`^${user}:`, 'm'));
    }
    const build = await paddockAs(user, home, ['image', 'build']);
    expect(build.stderr + build.stdout).toMatch(/Image \w+ ready/);
    expect(build.status).toBe(0);
    // Plain progress lines without a terminal, never the recipe's protocol.
    expect(build.stderr).toMatch(/^image build: \d+% rootfs$/m);
    expect(build.stderr).not.toContain('@@progress');

    const images = fs.readdirSync(path.join(home, 'images')).filter((n) => !n.startsWith('.'));
    const dir = path.join(
      home,
      'images',
      images.find((n) => !n.endsWith('.log'))!,
    );
    const manifest = JSON.parse(
      fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'),
    ) as ImageManifest;
    expect(manifest.agent).toBe(true);
    const uid = user ? Number(execFileSync('id', ['-u', user])) : process.getuid!();
    expect(fs.statSync(path.join(dir, 'rootfs.img')).uid).toBe(uid);

    // Owners inside the image are Debian's, not the builder's: shadow's group, _apt's folder.
    const run = await paddockAs(user, home, [
      'exec',
      '--',
      'stat',
      '-c',
      '%U:%G %n',
      '/etc/shadow',
      '/var/cache/apt/archives/partial',
      '/usr/bin/chage',
    ]);
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual([
      'root:shadow /etc/shadow',
      '_apt:root /var/cache/apt/archives/partial',
      'root:shadow /usr/bin/chage',
    ]);
    expect(run.status).toBe(0);
  }, 900_000);
});
