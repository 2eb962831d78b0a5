import { safeStorage } from 'electron';
import fs from 'node:fs';
import path from 'node:path';
import type { SecretStore } from '../core/api-keys.js';
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
