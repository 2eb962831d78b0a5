import fs from 'node:fs';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { Core } from '../../src/main/core/core.js';
import { dispatch } from '../../src/main/core/dispatch.js';
import { AutomationService } from '../../src/main/automations/service.js';
import { dataDir } from '../../src/main/platform/app-paths.js';
import { Store } from '../../src/main/store/store.js';
import { Allowlist, parseAllowlistEntry } from '../../src/main/vm/egress/allowlist.js';
import { resolveGrants } from '../../src/main/vm/grants.js';
import { tempDir } from '../helpers/temp-dir.js';

describe('grants: protected folders are judged after every symlink, on both sides', () => {
  let t: { dir: string; cleanup(): void };
  let home: string;
  beforeEach(() => {
    t = tempDir();
    home = path.join(t.dir, 'users', 'alice');
    fs.mkdirSync(path.join(home, 'work'), { recursive: true });
    return () => t.cleanup();
  });
  const grant = (p: string, dataDir: string, env: NodeJS.ProcessEnv = {}) =>
    resolveGrants([{ path: p, readOnly: false }], { dataDir, home, env });

  it('PADDOCK_HOME reached through a symlink: its real folder and what holds it are refused', () => {
    const real = path.join(t.dir, 'disk', 'paddock-data');
    fs.mkdirSync(real, { recursive: true });
    fs.symlinkSync(real, path.join(t.dir, 'data-link'));
    const data = dataDir({ PADDOCK_HOME: path.join(t.dir, 'data-link') });
    expect(() => grant(real, data)).toThrow(/Paddock’s own data folder/);
    expect(() => grant(path.join(t.dir, 'disk'), data)).toThrow(/Paddock’s own data folder/);
    fs.mkdirSync(path.join(real, 'db-folder'));
    expect(() => grant(path.join(real, 'db-folder'), data)).toThrow(/Paddock’s own data folder/);
  });

  it('~/.config reached through a symlink (a dotfiles checkout): the data folder inside is refused', () => {
    const dotfiles = path.join(t.dir, 'dotfiles', 'config');
    fs.mkdirSync(path.join(dotfiles, 'Paddock'), { recursive: true });
    fs.symlinkSync(dotfiles, path.join(home, '.config'));
    const data = dataDir({ XDG_CONFIG_HOME: path.join(home, '.config') });
    expect(() => grant(path.join(dotfiles, 'Paddock'), data)).toThrow(/data folder/);
    expect(() => grant(dotfiles, data)).toThrow(/data folder|settings/);
    expect(() => grant(path.join(t.dir, 'dotfiles'), data)).toThrow(/data folder|settings/);
  });

  it('~/.config and $XDG_CONFIG_HOME are refused even when the data folder is elsewhere', () => {
    const data = path.join(t.dir, 'elsewhere');
    fs.mkdirSync(path.join(home, '.config'));
    expect(() => grant(path.join(home, '.config'), data)).toThrow(/settings of your applications/);
    const xdg = path.join(t.dir, 'xdg');
    fs.mkdirSync(xdg);
    fs.symlinkSync(xdg, path.join(t.dir, 'xdg-link'));
    expect(() => grant(xdg, data, { XDG_CONFIG_HOME: path.join(t.dir, 'xdg-link') })).toThrow(
      /settings of your applications/,
    );
  });

  it.each(['/home', '/mnt', '/media'])('refuses %s, a folder that holds homes or disks', (p) => {
    expect(() => grant(p, path.join(t.dir, 'data'))).toThrow(
      /holds people’s home folders or other disks/,
    );
  });

  it('refuses a folder that holds homes when reached through a symlink', () => {
    fs.symlinkSync('/home', path.join(home, 'all-homes'));
    expect(() => grant(path.join(home, 'all-homes'), path.join(t.dir, 'data'))).toThrow(
      /will not share \/home:/,
    );
  });

  it('refuses any folder that holds the home folder, and other people’s whole home folders', () => {
    const data = path.join(t.dir, 'data');
    expect(() => grant(path.join(t.dir, 'users'), data)).toThrow(/holds your home folder/);
    fs.mkdirSync(path.join(t.dir, 'users', 'bob'));
    expect(grant(path.join(home, 'work'), data)[0]!.hostPath).toBe(
      fs.realpathSync(path.join(home, 'work')),
    );
  });

  it('the home folder given as a symlink is still the home folder', () => {
    fs.symlinkSync(home, path.join(t.dir, 'home-link'));
    expect(() =>
      resolveGrants([{ path: home, readOnly: false }], {
        dataDir: path.join(t.dir, 'data'),
        home: path.join(t.dir, 'home-link'),
      }),
    ).toThrow(/whole home folder/);
  });

  it('automations judge their folders the same way', () => {
    const real = path.join(t.dir, 'disk', 'paddock-data');
    fs.mkdirSync(real, { recursive: true });
    fs.symlinkSync(real, path.join(t.dir, 'data-link'));
    const store = Store.open(path.join(t.dir, 'data-link'));
    try {
      const svc = new AutomationService(store, {
        dataDir: path.join(t.dir, 'data-link'),
      });
      expect(() =>
        svc.create({
          name: 'x',
          prompt: 'p',
          schedule: 'every day at 9:00',
          folders: [{ hostPath: real, readOnly: false }],
        }),
      ).toThrow(/Paddock’s own data folder/);
    } finally {
      store.dispose();
    }
  });
});

describe('allowlist entries that would switch the allowlist off', () => {
  it.each([
    ['*', /list the hosts the task needs/],
    ['*.*', /list the hosts the task needs|e\.g\./],
    ['*:443', /e\.g\./],
    ['*.', /e\.g\.|empty/],
    ['*.com', /\*\.example\.com/],
    ['*.co.uk', /\*\.example\.co\.uk/],
    ['*.com.au', /\*\.example\.com\.au/],
    ['*.github.io', /name the site/],
    ['*.s3.amazonaws.com', /name the site/],
  ])('refuses %s and says what to write instead', (entry, instead) => {
    expect(() => parseAllowlistEntry(entry)).toThrow(instead);
    expect(() => new Allowlist([entry])).toThrow(/not a valid network allowlist entry/);
  });

  it('still accepts a wildcard under a real domain', () => {
    expect(parseAllowlistEntry('*.example.co.uk').text).toBe('*.example.co.uk');
    expect(parseAllowlistEntry('*.docs.github.io').text).toBe('*.docs.github.io');
    expect(parseAllowlistEntry('alice.github.io').text).toBe('alice.github.io');
  });

  it('Settings refuses them too, with the sentence (nothing is saved)', async () => {
    const t = tempDir();
    const core = new Core({ dataDir: t.dir, host: 'web', env: {} });
    try {
      for (const bad of ['*', '*.co.uk', 'http://example.com/']) {
        const r = await dispatch(core.handlers, 'settings:update', { networkAllowlist: [bad] });
        expect(r).toMatchObject({ ok: false, error: { code: 'BAD_ALLOW_HOST' } });
        expect((r as { error: { message: string } }).error.message).toMatch(/instead|e\.g\./);
      }
      expect(core.store.settings.get().networkAllowlist).toEqual([]);
    } finally {
      await core.close();
      t.cleanup();
    }
  });
});
