import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EventBus } from '../../src/main/core/events.js';
import { appKeySource, localKeySource } from '../../src/main/core/secrets/key-source.js';
import { SecretsService } from '../../src/main/core/secrets/service.js';
import { CoreBridge, type MainSecrets } from '../../src/main/electron/core-bridge.js';
import { SafeStorageVaultKey } from '../../src/main/electron/secret-store.js';
import { Store } from '../../src/main/store/store.js';
import type { Result } from '../../src/shared/result.js';
import type { SecretStoreStatus } from '../../src/shared/secrets-contract.js';
import * as fake from '../helpers/fake-electron.js';
import { tempDir } from '../helpers/temp-dir.js';

vi.mock('electron', () => import('../helpers/fake-electron.js'));

/**
 * The app's vault key: main wraps it with safeStorage (faked: Electron cannot run here) and hands
 * it to the real core process, which seals secrets into a real SQLite file.
 */
const ENTRY = path.resolve('src/main/electron/core-process-entry.ts');

let home: ReturnType<typeof tempDir>;
let data: string;
let keyFile: string;
let bridges: CoreBridge[];

/** Every byte of every file under `dir`. */
function everything(dir: string): Buffer {
  return Buffer.concat(
    fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile())
      .map((e) => fs.readFileSync(path.join(e.parentPath, e.name))),
  );
}

const noApiKey: MainSecrets = {
  get: () => null,
  set: () => undefined,
  clear: () => undefined,
  canKeep: () => false,
};

function startBridge(vaultKey: SafeStorageVaultKey): CoreBridge {
  const b = new CoreBridge({
    entry: ENTRY,
    secrets: noApiKey,
    vaultKey,
    pickFolder: async () => null,
    openPath: async () => undefined,
    env: { ...process.env, PADDOCK_HOME: data, ANTHROPIC_API_KEY: '' },
  });
  bridges.push(b);
  b.start();
  return b;
}

async function value<T>(r: Promise<Result<unknown>>): Promise<T> {
  const got = await r;
  if (!got.ok) throw new Error(`${got.error.code}: ${got.error.message}`);
  return got.value as T;
}

beforeEach(() => {
  fake.resetFake();
  home = tempDir();
  data = path.join(home.dir, 'data');
  keyFile = path.join(data, 'secrets', 'vault-key.safe');
  bridges = [];
});
afterEach(async () => {
  await Promise.all(bridges.map((b) => b.shutdown()));
  delete (fake.safeStorage as { getSelectedStorageBackend?: unknown }).getSelectedStorageBackend;
  home.cleanup();
});

describe('SafeStorageVaultKey (main)', () => {
  it('makes a key once, wraps it, and never writes it in the clear', () => {
    const keeper = new SafeStorageVaultKey(keyFile);
    expect(keeper.get()).toBeNull();
    const key = keeper.create();
    expect(key).toHaveLength(32);
    expect(keeper.create().equals(key)).toBe(true);
    expect(fake.calls).toContainEqual(['safeStorage.encryptString']);
    const disk = everything(home.dir);
    expect(disk.includes(key)).toBe(false);
    expect(disk.includes(Buffer.from(key.toString('base64')))).toBe(false);
    expect(fs.statSync(keyFile).mode & 0o077).toBe(0);
    expect(fs.statSync(path.dirname(keyFile)).mode & 0o077).toBe(0);
    expect(fs.readdirSync(path.dirname(keyFile))).toEqual(['vault-key.safe']);
    // The next launch unwraps the same key.
    expect(new SafeStorageVaultKey(keyFile).get()?.equals(key)).toBe(true);
  });

  it('refuses to make a key without a keychain, or with Linux’s built-in password', () => {
    fake.config.encryptionAvailable = false;
    expect(new SafeStorageVaultKey(keyFile).canKeep()).toBe(false);
    expect(() => new SafeStorageVaultKey(keyFile).create()).toThrow(
      expect.objectContaining({ code: 'NO_KEYCHAIN' }),
    );
    expect(fs.existsSync(keyFile)).toBe(false);

    fake.config.encryptionAvailable = true;
    Object.assign(fake.safeStorage, { getSelectedStorageBackend: () => 'basic_text' });
    expect(new SafeStorageVaultKey(keyFile).canKeep()).toBe(process.platform !== 'linux');
  });

  it('never replaces a key it cannot unwrap', () => {
    new SafeStorageVaultKey(keyFile).create();
    const before = fs.readFileSync(keyFile);
    fake.config.encryptionAvailable = false;
    const keeper = new SafeStorageVaultKey(keyFile);
    expect(keeper.get()).toBeNull();
    expect(() => keeper.create()).toThrow(expect.objectContaining({ code: 'SECRETS_LOCKED' }));
    expect(fs.readFileSync(keyFile).equals(before)).toBe(true);
  });
});

describe('secrets in the app', () => {
  it('seals with the key main keeps, across a restart of the core process', async () => {
    const secret = `ev-${crypto.randomBytes(18).toString('base64url')}`;
    const keeper = new SafeStorageVaultKey(keyFile);
    const b = startBridge(keeper);
    const before = await value<{ store: SecretStoreStatus }>(b.call('secrets:list', {}));
    expect(before.store).toMatchObject({ kind: 'safe-storage', usable: true });
    const added = await value<{ name: string; source: string }>(
      b.call('secrets:add', { name: 'github', hosts: ['api.github.com'], value: secret }),
    );
    expect(added).toMatchObject({ name: 'github', source: 'settings' });
    expect(JSON.stringify(added)).not.toContain(secret);
    expect(fs.existsSync(keyFile)).toBe(true);
    await b.shutdown();

    // A new core process gets the key from main at start.
    const b2 = startBridge(new SafeStorageVaultKey(keyFile));
    const after = await value<{ secrets: { name: string }[]; store: SecretStoreStatus }>(
      b2.call('secrets:list', {}),
    );
    expect(after.secrets.map((s) => s.name)).toEqual(['github']);
    expect(after.store).toEqual({
      kind: 'safe-storage',
      usable: true,
      detail:
        'Secrets are encrypted with a key protected by the system keychain (Electron safeStorage).',
    });
    expect(JSON.stringify(after)).not.toContain(secret);
    await b2.shutdown();

    // What the core sealed opens with main's key, and only with it.
    const store = Store.open(data);
    try {
      const key = new SafeStorageVaultKey(keyFile).get();
      const app = new SecretsService({
        store,
        events: new EventBus(),
        keys: appKeySource(data, { key, keychain: true, make: async () => key! }),
      });
      expect(app.forSession(['github'])[0]!.value).toBe(secret);
      const cli = new SecretsService({ store, events: new EventBus(), keys: localKeySource(data) });
      expect(() => cli.forSession(['github'])).toThrow(
        expect.objectContaining({ code: 'SECRETS_LOCKED' }),
      );
    } finally {
      store.dispose();
    }
    expect(everything(home.dir).includes(Buffer.from(secret))).toBe(false);
  }, 60_000);

  it('refuses to add a secret when the system has no keychain, saying why', async () => {
    fake.config.encryptionAvailable = false;
    const b = startBridge(new SafeStorageVaultKey(keyFile));
    const list = await value<{ store: SecretStoreStatus }>(b.call('secrets:list', {}));
    expect(list.store.usable).toBe(false);
    const r = await b.call('secrets:add', { name: 'x', hosts: ['a.example.com'], value: 'v' });
    expect(r).toMatchObject({
      ok: false,
      error: {
        code: 'SECRETS_LOCKED',
        message: expect.stringMatching(/no keychain to protect secrets.*paddock secrets add/),
      },
    });
    expect(fs.existsSync(keyFile)).toBe(false);
  }, 60_000);
});
