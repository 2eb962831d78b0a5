import { describeSchemaError } from '../../../shared/api.js';
import { PaddockError } from '../../../shared/result.js';
import {
  defaultSecretEnvName,
  secretAddSchema,
  secretNameSchema,
  type SecretAdd,
  type SecretInfo,
} from '../../../shared/secrets-contract.js';
import type { Store } from '../../store/store.js';
import { checkedAllowlistEntry } from '../../vm/egress/allowlist.js';
import type { ProxySecret } from '../../vm/egress/secret-types.js';
import type { EventBus } from '../events.js';
import type { VaultKeySource } from './key-source.js';
import { newPlaceholder, sealValue, Vault, type VaultStatus } from './vault.js';

/** SECRET_NOT_FOUND with where to add it: the one sentence every way in uses. */
export function secretNotFound(name: string): PaddockError {
  return new PaddockError(
    'SECRET_NOT_FOUND',
    `There is no secret named “${name}”: add it in Settings → Secrets, or with \`paddock secrets add ${name} --host HOST\`.`,
  );
}

/**
 * Secrets the VM never sees (issue 16): stores them sealed with the vault key, lists them without
 * their values, and gives a session its secrets with fresh placeholders for the egress proxy.
 * SECURITY: a value is only ever returned by {@link forSession}, to the proxy; it never goes into
 * a log line, an error message or an event.
 */
export class SecretsService {
  private readonly vault: Vault;

  constructor(
    private readonly deps: {
      store: Store;
      events: EventBus;
      /** Where this host keeps the vault key. */
      keys: VaultKeySource;
    },
  ) {
    this.vault = new Vault(deps.keys, () => deps.store.secrets.sealed());
  }

  /** Every secret, without values, by name. */
  list(): SecretInfo[] {
    return this.deps.store.secrets.list();
  }

  /** How secrets are kept on this computer, and whether this process can use them. */
  status(): VaultStatus {
    return this.vault.status();
  }

  /**
   * Seals and keeps a secret. Its hosts are checked and canonicalised like a typed allowlist
   * entry; an existing name is refused unless `replace`. Makes the vault key for the first one.
   */
  async add(req: SecretAdd, source: SecretInfo['source']): Promise<SecretInfo> {
    const parsed = secretAddSchema.safeParse(req);
    // SECURITY: the schema's messages never quote the value.
    if (!parsed.success) throw new PaddockError('BAD_REQUEST', describeSchemaError(parsed.error));
    const r = parsed.data;
    const hosts = [...new Set(r.hosts.map((h) => checkedAllowlistEntry(h.trim(), 'configured')))];
    const existing = this.deps.store.secrets.get(r.name);
    if (existing && !r.replace)
      throw new PaddockError(
        'SECRET_EXISTS',
        `There is already a secret named “${r.name}”: choose another name, or replace it (--replace in the CLI).`,
      );
    const key = await this.vault.keyForSealing();
    const now = Date.now();
    const info = this.deps.store.secrets.put({
      name: r.name,
      // Replacing keeps the variable the secret had, so the tasks that use it keep working.
      envName: r.envName ?? existing?.envName ?? defaultSecretEnvName(r.name),
      hosts,
      inBody: r.inBody ?? false,
      pin: r.pin ?? true,
      ciphertext: sealValue(key, r.name, r.value),
      source,
      createdAt: now,
      updatedAt: now,
    });
    this.deps.events.emit('secrets:changed', { names: [r.name] });
    return info;
  }

  /** Forgets a secret; whether it existed. */
  remove(name: string): boolean {
    const removed = this.deps.store.secrets.remove(name);
    if (removed) this.deps.events.emit('secrets:changed', { names: [name] });
    return removed;
  }

  /**
   * The hosts the named secrets may be sent to (each once, in order): what a session or an
   * automation using them must be able to reach. SECRET_NOT_FOUND for a name not stored.
   */
  hostsOf(names: string[]): string[] {
    const hosts = new Set<string>();
    for (const name of new Set(names)) {
      const row = this.deps.store.secrets.get(name);
      if (!row) throw secretNotFound(name);
      for (const h of row.hosts) hosts.add(h);
    }
    return [...hosts];
  }

  /**
   * The named secrets as one session's egress proxy uses them: each value opened, each with a
   * placeholder made for this call only. SECRET_NOT_FOUND names a missing one; SECRETS_LOCKED
   * says why the key cannot be used here; SECRET_ENV_CLASH when two would share a variable.
   */
  forSession(names: string[]): ProxySecret[] {
    const unique = [...new Set(names)];
    const rows = unique.map((name) => {
      const valid = secretNameSchema.safeParse(name);
      const row = valid.success ? this.deps.store.secrets.get(name) : undefined;
      if (!row) throw secretNotFound(name);
      return row;
    });
    const byEnv = new Map<string, string>();
    for (const row of rows) {
      const other = byEnv.get(row.envName);
      if (other)
        throw new PaddockError(
          'SECRET_ENV_CLASH',
          `The secrets “${other}” and “${row.name}” both use $${row.envName}; choose one of them, or give one another variable (replace it with --env).`,
        );
      byEnv.set(row.envName, row.name);
    }
    return rows.map((row) => ({
      name: row.name,
      envName: row.envName,
      placeholder: newPlaceholder(),
      value: this.vault.open(row),
      hosts: row.hosts,
      inBody: row.inBody,
      pin: row.pin,
    }));
  }

  /** Forgets the vault key held in memory. */
  dispose(): void {
    this.vault.dispose();
  }
}
