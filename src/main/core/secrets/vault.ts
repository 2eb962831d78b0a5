import crypto from 'node:crypto';
import { PaddockError } from '../../../shared/result.js';
import type { SecretStoreStatus } from '../../../shared/secrets-contract.js';
import { readSealedSecrets, type SealedSecret } from '../../store/secrets-repo.js';
import {
  localKeySource,
  SecretsLockedError,
  VAULT_KEY_BYTES,
  type KeyHolder,
  type VaultKeySource,
} from './key-source.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * The associated data a value is sealed with: its name, so that a row renamed (or a ciphertext
 * copied onto another row) no longer opens.
 */
function boundName(name: string): Buffer {
  return Buffer.from(`paddock-secret:${name}`, 'utf8');
}

/** Seals a value with AES-256-GCM under `key`: iv (12 random bytes) ‖ tag (16) ‖ data. */
export function sealValue(key: Buffer, name: string, value: string): Buffer {
  const iv = crypto.randomBytes(IV_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(boundName(name));
  const data = Buffer.concat([cipher.update(value, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), data]);
}

/** Opens what {@link sealValue} made; null when the key, the name or the bytes do not match. */
export function openValue(key: Buffer, name: string, sealed: Buffer): string | null {
  if (key.length !== VAULT_KEY_BYTES || sealed.length < IV_BYTES + TAG_BYTES) return null;
  try {
    const decipher = crypto.createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
    decipher.setAAD(boundName(name));
    decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
    return Buffer.concat([
      decipher.update(sealed.subarray(IV_BYTES + TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    return null;
  }
}

/**
 * A fresh placeholder for one secret in one session: 128 random bits, so it never collides with
 * real text and one session's placeholder means nothing in another.
 */
export function newPlaceholder(): string {
  return `paddock_ph_${crypto.randomBytes(16).toString('hex')}`;
}

/** What the vault status says beyond the contract: the fix, for `paddock doctor`. */
export type VaultStatus = SecretStoreStatus & { fix?: string };

/**
 * The vault key in use, chosen from the host's key source: the first key this process can read
 * that opens one of the stored secrets (the newest first), else the first it can read at all;
 * with no secrets stored, the host makes its own on the first one. A key this process cannot
 * read (the app's, from the CLI) explains why secrets are locked.
 * SECURITY: keys stay in this object; nothing here logs, and no error carries a key or value.
 */
export class Vault {
  private readonly keys = new Map<KeyHolder, Buffer>();
  private active: KeyHolder | undefined;
  private making: Promise<Buffer> | undefined;

  constructor(
    private readonly source: VaultKeySource,
    /** The stored secrets, newest first. */
    private readonly sealed: () => SealedSecret[],
  ) {}

  /** How secrets are kept, and whether this process can use them. */
  status(): VaultStatus {
    const found = this.find();
    if (found.holder) return { kind: found.holder.kind, detail: found.holder.detail, usable: true };
    const lock = found.lock;
    if (lock) return { kind: lock.kind, detail: lock.detail, usable: false, ...fixOf(lock) };
    const maker = this.source.maker;
    if ('refusal' in maker) return { kind: maker.kind, detail: maker.refusal, usable: false };
    return {
      kind: maker.kind,
      detail: `No secret is stored yet. ${maker.detail}`,
      usable: true,
    };
  }

  /** The key new secrets are sealed with; made (by the host's key holder) for the first one. */
  async keyForSealing(): Promise<Buffer> {
    const found = this.find();
    if (found.holder) return this.keys.get(found.holder)!;
    if (found.lock) throw found.lock;
    const maker = this.source.maker;
    if ('refusal' in maker) throw new PaddockError('SECRETS_LOCKED', maker.refusal);
    this.making ??= maker.create().finally(() => (this.making = undefined));
    const key = await this.making;
    this.keys.set(maker, key);
    this.active = maker;
    return key;
  }

  /** A stored secret's value; SECRETS_LOCKED or SECRET_UNREADABLE saying why not. */
  open(secret: SealedSecret): string {
    const found = this.find();
    if (!found.holder) {
      throw (
        found.lock ??
        new PaddockError(
          'SECRETS_LOCKED',
          'The key the secrets were sealed with is gone from this computer: remove them and add them again.',
        )
      );
    }
    const tried = [found.holder, ...this.readable().filter((h) => h !== found.holder)];
    for (const h of tried) {
      const value = openValue(this.keys.get(h)!, secret.name, secret.ciphertext);
      if (value !== null) return value;
    }
    const other = this.lockOf(this.source.holders.filter((h) => h.exists() && !this.keys.has(h)));
    throw new PaddockError(
      'SECRET_UNREADABLE',
      `The secret “${secret.name}” could not be decrypted: it was changed outside Paddock, or sealed with a key this process does not have${
        other ? ` (${other.detail.replace(/\.$/, '')})` : ''
      }. Remove it and add it again.`,
    );
  }

  /** Forgets the keys (overwriting them in memory). */
  dispose(): void {
    for (const k of this.keys.values()) k.fill(0);
    this.keys.clear();
    this.active = undefined;
  }

  /**
   * The holder in use, or why none can be used: with secrets stored and no readable key, the
   * first reason a key could not be read (or that it is gone).
   */
  private find(): { holder?: KeyHolder; lock?: SecretsLockedError } {
    if (this.active) return { holder: this.active };
    const stored = this.sealed();
    const readable = this.readable();
    const opens = (h: KeyHolder) =>
      stored.some((s) => openValue(this.keys.get(h)!, s.name, s.ciphertext) !== null);
    const holder = readable.find(opens) ?? readable[0];
    if (holder) {
      this.active = holder;
      return { holder };
    }
    const existing = this.source.holders.filter((h) => h.exists());
    const lock = this.lockOf(existing);
    if (stored.length > 0) {
      return {
        lock:
          lock ??
          new SecretsLockedError(
            this.source.holders[0]?.kind ?? 'file',
            'The key these secrets were sealed with is gone from this computer, so they cannot be decrypted.',
            'Remove them and add them again.',
          ),
      };
    }
    // Nothing stored: only a key this host would make itself (and cannot read) is in the way.
    const maker = this.source.maker;
    if (!('refusal' in maker) && existing.includes(maker)) return { lock: this.lockOf([maker]) };
    return {};
  }

  /** The holders whose key this process has read (or can read now), in the host's order. */
  private readable(): KeyHolder[] {
    return this.source.holders.filter((h) => {
      if (this.keys.has(h)) return true;
      if (!h.exists()) return false;
      try {
        this.keys.set(h, h.read());
        return true;
      } catch {
        return false;
      }
    });
  }

  /** Why the first of `holders` cannot be read. */
  private lockOf(holders: KeyHolder[]): SecretsLockedError | undefined {
    for (const h of holders) {
      try {
        h.read();
      } catch (e) {
        if (e instanceof SecretsLockedError) return e;
        return new SecretsLockedError(h.kind, (e as Error).message);
      }
    }
    return undefined;
  }
}

function fixOf(lock: SecretsLockedError): { fix?: string } {
  return lock.fix ? { fix: lock.fix } : {};
}

/**
 * How the CLI and the web host keep secrets in `dataDir`, read without creating or migrating
 * anything (for `paddock doctor`).
 */
export function localSecretsStatus(dataDir: string): VaultStatus {
  let sealed: SealedSecret[] = [];
  try {
    sealed = readSealedSecrets(dataDir);
  } catch {
    // The database check reports an unreadable database; judge the key alone.
  }
  const vault = new Vault(localKeySource(dataDir), () => sealed);
  try {
    return vault.status();
  } finally {
    vault.dispose();
  }
}
