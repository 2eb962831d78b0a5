import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SafeStorageSecretStore } from '../../src/main/electron/secret-store.js';
import * as fake from '../helpers/fake-electron.js';
import { tempDir } from '../helpers/temp-dir.js';

vi.mock('electron', () => import('../helpers/fake-electron.js'));

const KEY = 'sk-ant-api03-a-very-secret-key-0123456789';
let home: ReturnType<typeof tempDir>;
let file: string;

/** Every byte written under the temp folder, as one buffer. */
function everythingOnDisk(dir: string): Buffer {
  const parts: Buffer[] = [];
  for (const entry of fs.readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) parts.push(fs.readFileSync(path.join(entry.parentPath, entry.name)));
  }
  return Buffer.concat(parts);
}

beforeEach(() => {
  fake.resetFake();
  home = tempDir();
  file = path.join(home.dir, 'data', 'api-key.enc');
});
afterEach(() => home.cleanup());

describe('SafeStorageSecretStore', () => {
  it('refuses to store the key when the OS offers no encryption, and writes nothing', () => {
    fake.config.encryptionAvailable = false;
    const store = new SafeStorageSecretStore(file);
    expect(() => store.set(KEY)).toThrow(expect.objectContaining({ code: 'NO_KEYCHAIN' }));
    expect(fake.calls).not.toContainEqual(['safeStorage.encryptString']);
    expect(fs.readdirSync(home.dir)).toEqual([]);
    expect(store.get()).toBeNull();
  });

  it('round-trips through encryptString/decryptString and never writes the plain key', () => {
    new SafeStorageSecretStore(file).set(KEY);
    expect(fake.calls).toContainEqual(['safeStorage.encryptString']);
    const onDisk = everythingOnDisk(home.dir);
    expect(onDisk.length).toBeGreaterThan(0);
    expect(onDisk.includes(Buffer.from(KEY))).toBe(false);
    expect(onDisk.includes(Buffer.from('a-very-secret'))).toBe(false);
    // Only the one file: no temp file left behind.
    expect(fs.readdirSync(path.dirname(file))).toEqual(['api-key.enc']);
    if (process.platform !== 'win32') expect(fs.statSync(file).mode & 0o077).toBe(0);

    // A fresh store (a new app launch) reads it back through the keychain.
    const next = new SafeStorageSecretStore(file);
    expect(next.get()).toBe(KEY);
    expect(fake.calls).toContainEqual(['safeStorage.decryptString']);
  });

  it('reads nothing when the keychain went away since the key was stored', () => {
    new SafeStorageSecretStore(file).set(KEY);
    fake.config.encryptionAvailable = false;
    expect(new SafeStorageSecretStore(file).get()).toBeNull();
  });

  it('clear removes the file', () => {
    const store = new SafeStorageSecretStore(file);
    store.set(KEY);
    store.clear();
    expect(fs.existsSync(file)).toBe(false);
    expect(store.get()).toBeNull();
    expect(new SafeStorageSecretStore(file).get()).toBeNull();
  });
});
