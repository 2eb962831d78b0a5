import { describe, expect, it } from 'vitest';
import { AppleBackend } from '../../src/main/vm/apple/backend.js';
import { chooseBackend } from '../../src/main/vm/choose-backend.js';
import { QemuBackend } from '../../src/main/vm/qemu/backend.js';
import { WslBackend } from '../../src/main/vm/wsl/backend.js';

describe('the backend, chosen once per platform', () => {
  const dataDir = '/nonexistent/paddock';
  it.each([
    ['linux', QemuBackend, 'qemu'],
    ['darwin', AppleBackend, 'apple'],
    ['win32', WslBackend, 'wsl'],
    ['freebsd', QemuBackend, 'qemu'],
  ] as const)('on %s it is %s', (platform, cls, kind) => {
    const c = chooseBackend({ dataDir, platform, env: {} });
    expect(c.backend).toBeInstanceOf(cls);
    expect(c.kind).toBe(kind);
    expect(c.reason).toMatch(/\(the default on /);
  });

  it('PADDOCK_BACKEND overrides it, and a wrong value is a sentence', () => {
    const c = chooseBackend({ dataDir, platform: 'darwin', env: { PADDOCK_BACKEND: 'qemu' } });
    expect(c.backend).toBeInstanceOf(QemuBackend);
    expect(c.reason).toMatch(/PADDOCK_BACKEND=qemu/);
    expect(() =>
      chooseBackend({ dataDir, platform: 'linux', env: { PADDOCK_BACKEND: 'docker' } }),
    ).toThrow('PADDOCK_BACKEND is "docker"; use one of qemu, apple, wsl, or unset it.');
  });
});
