import { safeStorage } from 'electron';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PaddockError } from '../../shared/result.js';
import type { SecretStore } from '../core/api-keys.js';
import { VAULT_KEY_BYTES } from '../core/secrets/key-source.js';
import { noKeychain } from './core-protocol.js';

/**
 * The app's API key, encrypted with Electron safeStorage (the OS keychain, DPAPI or libsecret)
 * into a file in the data folder. SECURITY: the plain key is never written to disk; where the OS
 * offers no encryption the key is refused rather than stored in the clear.
 */
export class SafeStorageSecretStore implements SecretStore {
  readonly persistent = true;
  private cached: string | null | undefined;

  constructor(private readonly file: string) {}

  /** Whether the OS offers encryption, so that set() can keep a key. */
  canKeep(): boolean {
    return safeStorage.isEncryptionAvailable();
  }

  get(): string | null {
    if (this.cached !== undefined) return this.cached;
    try {
      const data = fs.readFileSync(this.file);
      this.cached = safeStorage.isEncryptionAvailable() ? safeStorage.decryptString(data) : null;
    } catch {
      this.cached = null;
    }
    return this.cached;
  }

  set(secret: string): void {
    if (!safeStorage.isEncryptionAvailable()) throw noKeychain();
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, safeStorage.encryptString(secret), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.cached = secret;
  }

  clear(): void {
    fs.rmSync(this.file, { force: true });
    this.cached = null;
  }
}

/** Main's keeper of the secrets' vault key, as the core bridge needs it. */
export interface MainVaultKey {
  /** The key, unwrapped; null when none was made yet or the keychain cannot unwrap it. */
  get(): Buffer | null;
  /** Whether a new key can be kept (the OS offers real encryption). */
  canKeep(): boolean;
  /** Makes, wraps and keeps a key, or returns the one already kept; throws when it cannot. */
  create(): Buffer;
}

/**
 * The secrets' vault key (issue 16), wrapped with Electron safeStorage into
 * `<data>/secrets/vault-key.safe`. Main unwraps it and hands it to the core process at start; only
 * main ever writes the file. SECURITY: the raw key is never written to disk.
 */
export class SafeStorageVaultKey implements MainVaultKey {
  private cached: Buffer | null | undefined;

  constructor(private readonly file: string) {}

  canKeep(): boolean {
    if (!safeStorage.isEncryptionAvailable()) return false;
    // SECURITY: Linux without a keyring falls back to `basic_text`, a password built into
    // Chromium: that protects nothing, so it does not count as a keychain for the vault key.
    return (
      process.platform !== 'linux' ||
      (safeStorage.getSelectedStorageBackend?.() ?? 'unknown') !== 'basic_text'
    );
  }

  get(): Buffer | null {
    if (this.cached) return this.cached;
    let data: Buffer;
    try {
      data = fs.readFileSync(this.file);
    } catch {
      return null;
    }
    try {
      if (!safeStorage.isEncryptionAvailable()) return null;
      const key = Buffer.from(safeStorage.decryptString(data), 'base64');
      if (key.length !== VAULT_KEY_BYTES) return null;
      this.cached = key;
      return key;
    } catch {
      return null;
    }
  }

  create(): Buffer {
    const existing = this.get();
    if (existing) return existing;
    if (fs.existsSync(this.file))
      // Never replaced: every secret sealed with it would be lost.
      throw new PaddockError(
        'SECRETS_LOCKED',
        'The system keychain did not unlock the secrets key, so no new secret can be added until it does: unlock the keychain and restart Paddock.',
      );
    if (!this.canKeep())
      throw new PaddockError(
        'NO_KEYCHAIN',
        'This system offers the app no keychain to protect secrets, so secrets cannot be added here. Add them with `paddock secrets add` in a terminal instead: the app uses the key it keeps.',
      );
    const key = crypto.randomBytes(VAULT_KEY_BYTES);
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, safeStorage.encryptString(key.toString('base64')), { mode: 0o600 });
    fs.renameSync(tmp, this.file);
    this.cached = key;
    return key;
  }
}
