import { useCallback, useEffect, useState } from 'react';
import type { SecretInfo, SecretStoreStatus } from '../../../shared/secrets-contract.js';
import { call, useEvent } from '../../api/hooks.js';

/** The stored secrets as the page may see them (never a value), kept current. */
export interface StoredSecrets {
  /** Null until the first answer of `secrets:list`. */
  secrets: SecretInfo[] | null;
  store: SecretStoreStatus | null;
  /** Why the list could not be read, as the core said it. */
  error: string | null;
  reload(): void;
}

/**
 * The stored secrets: listed once, then read again on every `secrets:changed`, so a secret added
 * from the CLI or another window shows up in Settings and the choosers without a reload.
 */
export function useSecrets(): StoredSecrets {
  const [secrets, setSecrets] = useState<SecretInfo[] | null>(null);
  const [store, setStore] = useState<SecretStoreStatus | null>(null);
  const [error, setError] = useState<string | null>(null);
  const reload = useCallback(() => {
    call('secrets:list', {}).then(
      (r) => {
        setSecrets(r.secrets);
        setStore(r.store);
        setError(null);
      },
      (e: Error) => setError(e.message),
    );
  }, []);
  useEffect(reload, [reload]);
  useEvent('secrets:changed', reload);
  return { secrets, store, error, reload };
}

/** Hosts as typed: one per line or separated by commas (or spaces). */
export function parseHosts(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/[\s,]+/)
        .map((h) => h.trim())
        .filter(Boolean),
    ),
  ];
}
