import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { PaddockError } from '../../../shared/result.js';
import type { SecretStoreStatus } from '../../../shared/secrets-contract.js';

/**
 * Where the vault key is kept (issue 16). One random 32-byte key per data folder seals every
 * secret; this file decides where it lives for each host:
 * - the app: Electron main wraps it with safeStorage into `secrets/vault-key.safe` and hands the
 *   core process the raw key at start (the core never writes that file);
 * - the CLI and `paddock serve`: the login keychain on macOS (through /usr/bin/security), else a
 *   file `secrets/vault.key` that only this user can read.
 * Every host looks at the others' places too, so a data folder shared by the app and the CLI
 * keeps one key where both can, and says plainly when one of them cannot.
 */

/** The vault key's length: AES-256. */
export const VAULT_KEY_BYTES = 32;

/** The folder in the data folder that holds the key files. */
export const SECRETS_DIR = 'secrets';
/** The app's key, wrapped by Electron safeStorage (written by main only). */
export const SAFE_KEY_FILE = 'vault-key.safe';
/** The CLI's key where there is no keychain: raw bytes, mode 0600. */
export const FILE_KEY_FILE = 'vault.key';

/** The macOS keychain item's service name; its account is a hash of the data folder. */
export const KEYCHAIN_SERVICE = 'Paddock secrets';
/** SECURITY: an absolute path, never looked up in PATH (a planted `security` would get the key). */
const SECURITY_TOOL = '/usr/bin/security';

type KeyKind = SecretStoreStatus['kind'];

/**
 * A key that exists but cannot be used by this process: why (`detail`) and what to do (`fix`).
 * SECURITY: neither ever holds key material.
 */
export class SecretsLockedError extends PaddockError {
  constructor(
    readonly kind: KeyKind,
    readonly detail: string,
    readonly fix?: string,
  ) {
    super('SECRETS_LOCKED', fix ? `${detail} ${fix}` : detail);
  }
}

/** One place a vault key may be kept. */
export interface KeyHolder {
  readonly kind: KeyKind;
  /** One sentence saying how secrets are kept when this holder's key is in use. */
  readonly detail: string;
  /** Whether a key is kept here (without reading it). */
  exists(): boolean;
  /** The key; throws {@link SecretsLockedError} saying why this process cannot have it. */
  read(): Buffer;
  /**
   * Makes a new key and keeps it here; if one appeared meanwhile, that one is returned instead
   * (never overwritten: that would strand every secret sealed with it).
   */
  create(): Promise<Buffer>;
}

/** Where one host looks for the vault key, and where it makes one. */
export interface VaultKeySource {
  /** Every place a key may be, in the order this host prefers them. */
  readonly holders: readonly KeyHolder[];
  /** Where this host keeps a new key, or why it cannot keep one. */
  readonly maker: KeyHolder | { kind: KeyKind; refusal: string };
}

function checkedKey(key: Buffer, kind: KeyKind, where: string): Buffer {
  if (key.length !== VAULT_KEY_BYTES)
    throw new SecretsLockedError(
      kind,
      `The secrets key in ${where} is damaged (${key.length} bytes, not ${VAULT_KEY_BYTES}), so stored secrets cannot be decrypted.`,
      'Remove the secrets and add them again.',
    );
  return key;
}

const chmodFix = (file: string) => `Run: chmod 600 '${file}'`;

/**
 * The key in a file only this user can read: `<data>/secrets/vault.key`, mode 0600 in a 0700
 * folder. Refused when its mode lets the group or others read it, or another user owns it.
 * On Windows the mode bits mean nothing: the data folder sits in the user's own profile.
 */
export class FileKeyHolder implements KeyHolder {
  readonly kind = 'file' as const;
  readonly file: string;
  readonly detail: string;

  constructor(
    dataDir: string,
    /** Whether this host could have used a keychain (then the sentence does not say there is none). */
    hasKeychain: boolean,
  ) {
    this.file = path.join(dataDir, SECRETS_DIR, FILE_KEY_FILE);
    this.detail = `Secrets are encrypted with a key in a file only you can read (${this.file})${
      hasKeychain ? '.' : '; this computer has no keychain Paddock can use.'
    }`;
  }

  exists(): boolean {
    try {
      fs.lstatSync(this.file);
      return true;
    } catch {
      return false;
    }
  }

  read(): Buffer {
    let fd: number;
    try {
      // SECURITY: O_NOFOLLOW: a symlink planted in place of the key is refused, not followed.
      fd = fs.openSync(this.file, fs.constants.O_RDONLY | (fs.constants.O_NOFOLLOW ?? 0));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new SecretsLockedError(
        'file',
        code === 'ELOOP'
          ? `The secrets key ${this.file} is a symbolic link, which Paddock refuses.`
          : `The secrets key ${this.file} could not be read (${code ?? (e as Error).message}).`,
        code === 'ELOOP' ? 'Remove it, then remove the secrets and add them again.' : undefined,
      );
    }
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile())
        throw new SecretsLockedError('file', `The secrets key ${this.file} is not a file.`);
      if (process.platform !== 'win32') {
        const uid = process.getuid?.();
        // SECURITY: someone else's file could hold a key they know; refuse it.
        if (uid !== undefined && st.uid !== uid)
          throw new SecretsLockedError(
            'file',
            `The secrets key ${this.file} belongs to another user (uid ${st.uid}), so Paddock will not trust it.`,
            `Run Paddock as that user, or remove the file and the secrets and add them again.`,
          );
        // SECURITY: a key others can read (or replace) protects nothing; refuse rather than use it.
        if ((st.mode & 0o077) !== 0)
          throw new SecretsLockedError(
            'file',
            `The secrets key ${this.file} can be read or changed by other users (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}), so Paddock will not use it.`,
            chmodFix(this.file),
          );
      }
      return checkedKey(fs.readFileSync(fd), 'file', this.file);
    } finally {
      fs.closeSync(fd);
    }
  }

  async create(): Promise<Buffer> {
    return this.createSync();
  }

  /** {@link create}, synchronously. */
  createSync(): Buffer {
    const dir = path.dirname(this.file);
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    // SECURITY: the folder too: a file's name in a listable folder says secrets exist.
    if (process.platform !== 'win32') fs.chmodSync(dir, 0o700);
    const key = crypto.randomBytes(VAULT_KEY_BYTES);
    const tmp = path.join(dir, `.${FILE_KEY_FILE}.${process.pid}.${Date.now()}.tmp`);
    // `wx`: never through a file (or symlink) someone placed there; mode 0600 from the start.
    const fd = fs.openSync(tmp, 'wx', 0o600);
    try {
      fs.writeSync(fd, key);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    try {
      // A hard link, not a rename: two processes making the first key at once must not replace
      // each other's (secrets already sealed with it would be lost). The loser reads the winner's.
      fs.linkSync(tmp, this.file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') {
        key.fill(0);
        return this.read();
      }
      // Filesystems without hard links: rename, after one more look.
      if (this.exists()) return this.read();
      fs.renameSync(tmp, this.file);
      return key;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    return key;
  }
}

/** The keychain account for a data folder: one key per data folder, without naming the path. */
export function keychainAccount(dataDir: string): string {
  return crypto.createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 32);
}

/** Runs /usr/bin/security (never from PATH); `input` goes to its stdin. */
export type SecurityTool = (
  args: string[],
  input?: string,
) => { status: number | null; stdout: string; stderr: string };

const runSecurity: SecurityTool = (args, input) => {
  const r = spawnSync(SECURITY_TOOL, args, {
    encoding: 'utf8',
    timeout: 30_000,
    ...(input !== undefined ? { input } : {}),
  });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? r.error?.message ?? '' };
};

/**
 * The key as a generic password in the login keychain (macOS; the CLI and `paddock serve`, and
 * the app when the CLI made it). Service "Paddock secrets", account a hash of the data folder.
 */
export class MacKeychainHolder implements KeyHolder {
  readonly kind = 'keychain' as const;
  readonly detail =
    'Secrets are encrypted with a key kept in your login keychain (item “Paddock secrets”).';
  private readonly account: string;

  constructor(
    dataDir: string,
    private readonly security: SecurityTool = runSecurity,
  ) {
    this.account = keychainAccount(dataDir);
  }

  exists(): boolean {
    return (
      this.security(['find-generic-password', '-s', KEYCHAIN_SERVICE, '-a', this.account])
        .status === 0
    );
  }

  read(): Buffer {
    const r = this.security([
      'find-generic-password',
      '-s',
      KEYCHAIN_SERVICE,
      '-a',
      this.account,
      '-w',
    ]);
    if (r.status !== 0)
      throw new SecretsLockedError(
        'keychain',
        `The login keychain did not give Paddock the secrets key (security exited ${r.status ?? 'on a signal'}: ${r.stderr.trim() || 'no reason given'}).`,
        'Unlock the login keychain (Keychain Access) and try again.',
      );
    return checkedKey(Buffer.from(r.stdout.trim(), 'base64'), 'keychain', 'the login keychain');
  }

  async create(): Promise<Buffer> {
    if (this.exists()) return this.read();
    const key = crypto.randomBytes(VAULT_KEY_BYTES);
    // SECURITY: the key goes in on stdin (`security -i` reads commands there), never in argv,
    // where any user's `ps` would see it. No -U: an item that appeared meanwhile is kept, not
    // overwritten (secrets already sealed with it would be lost).
    const r = this.security(
      ['-i'],
      `add-generic-password -s "${KEYCHAIN_SERVICE}" -a ${this.account} -l "${KEYCHAIN_SERVICE}" -w ${key.toString('base64')}\n`,
    );
    key.fill(0);
    if (r.status !== 0 && !this.exists())
      throw new PaddockError(
        'SECRETS_LOCKED',
        `Paddock could not keep the secrets key in the login keychain (security exited ${r.status ?? 'on a signal'}: ${r.stderr.trim() || 'no reason given'}). Unlock the login keychain and try again.`,
      );
    return this.read();
  }
}

/**
 * The app's key (Electron safeStorage, `secrets/vault-key.safe`). In the app's core process it
 * holds what main unwrapped at start, and asks main for a new one; elsewhere (CLI, web host) it
 * only says that the key exists and who can use it.
 */
export class SafeStorageKeyHolder implements KeyHolder {
  readonly kind = 'safe-storage' as const;
  readonly file: string;
  readonly detail =
    'Secrets are encrypted with a key protected by the system keychain (Electron safeStorage).';

  constructor(
    dataDir: string,
    private readonly opts: {
      /** The key as main unwrapped it (the app), or null. */
      key: Buffer | null;
      /** Why this process cannot have the key when the file exists but `key` is null. */
      locked: { detail: string; fix?: string };
      /** Asks main to make, wrap and keep a key (the app, when safeStorage works). */
      make?: () => Promise<Buffer>;
    },
  ) {
    this.file = path.join(dataDir, SECRETS_DIR, SAFE_KEY_FILE);
  }

  exists(): boolean {
    return this.opts.key !== null || fs.existsSync(this.file);
  }

  read(): Buffer {
    if (!this.opts.key)
      throw new SecretsLockedError('safe-storage', this.opts.locked.detail, this.opts.locked.fix);
    return checkedKey(this.opts.key, 'safe-storage', this.file);
  }

  async create(): Promise<Buffer> {
    if (!this.opts.make) return this.read();
    const key = checkedKey(await this.opts.make(), 'safe-storage', this.file);
    this.opts.key = key;
    return key;
  }
}

/** What the CLI and the web host say when only the app can use the key. */
const APP_KEY_LOCK = {
  detail:
    'The Paddock app keeps these secrets’ key in the system keychain, which only the app can use.',
  fix: 'Add and use them from the app, or remove them here (paddock secrets remove NAME) and add them again here.',
};

/**
 * The CLI's and the web host's key source: the login keychain on macOS, else a file only this
 * user can read. The app's key is looked at too, to say why its secrets cannot be used here.
 */
export function localKeySource(
  dataDir: string,
  platform: NodeJS.Platform = process.platform,
): VaultKeySource {
  const file = new FileKeyHolder(dataDir, platform === 'darwin');
  const app = new SafeStorageKeyHolder(dataDir, { key: null, locked: APP_KEY_LOCK });
  if (platform === 'darwin') {
    const keychain = new MacKeychainHolder(dataDir);
    return { holders: [keychain, file, app], maker: keychain };
  }
  return { holders: [file, app], maker: file };
}

/** The Electron core process's key source, from what main sent at start. */
export function appKeySource(
  dataDir: string,
  init: {
    /** The key main unwrapped from vault-key.safe, or null (none yet, or safeStorage failed). */
    key: Buffer | null;
    /** Whether main can wrap a new key (safeStorage offers real encryption here). */
    keychain: boolean;
    /** Asks main to make, wrap and keep a key; returns it. */
    make: () => Promise<Buffer>;
  },
  platform: NodeJS.Platform = process.platform,
): VaultKeySource {
  const app = new SafeStorageKeyHolder(dataDir, {
    key: init.key,
    locked: {
      detail:
        'The system keychain did not unlock the secrets key (Electron safeStorage is unavailable or refused), so stored secrets cannot be used.',
      fix: 'Unlock the system keychain and restart Paddock, or remove the secrets and add them again.',
    },
    ...(init.keychain ? { make: init.make } : {}),
  });
  // A key the CLI made is used too: the app can read the file, and the login keychain on macOS.
  const file = new FileKeyHolder(dataDir, init.keychain);
  const holders: KeyHolder[] =
    platform === 'darwin' ? [app, new MacKeychainHolder(dataDir), file] : [app, file];
  return {
    holders,
    maker: init.keychain
      ? app
      : {
          kind: 'safe-storage',
          refusal:
            'This system offers the app no keychain to protect secrets (Electron safeStorage is unavailable), so secrets cannot be added here. Add them with `paddock secrets add` in a terminal instead: the app uses the key it keeps.',
        },
  };
}
