import type { EventName } from '../../shared/api.js';
import { PaddockError, type Result } from '../../shared/result.js';

/**
 * The messages between Electron main (core-bridge.ts) and the core process
 * (core-process-entry.ts). Shared so the two sides cannot drift apart. Every message is a plain
 * object (Electron's structured clone, or Node's `advanced` serialization under test).
 */

/** What main sends the core process. */
export type ToCore =
  /**
   * The answer to `hello`: the API key main decrypted, and whether main can keep a new one; the
   * secrets' vault key main unwrapped (32 bytes, or null), and whether main can make one.
   */
  | {
      type: 'init';
      secret: string | null;
      keychain: boolean;
      vaultKey: Uint8Array | null;
      vaultKeychain: boolean;
    }
  /** One contract request, from a window main trusted. */
  | { type: 'request'; id: number; channel: string; raw: unknown }
  /**
   * Grant a folder main got from the OS (a drop, or the menu's Open Folder), never from the page.
   * Answered with a `reply` carrying a Result<Grant>.
   */
  | { type: 'grant'; id: number; path: string; readOnly: boolean }
  /** powerMonitor's events, for the scheduler. */
  | { type: 'power'; event: 'resume' | 'suspend' }
  /** The answer to one of the core's `host` requests. */
  | { type: 'host-reply'; id: number; result: Result<unknown> }
  /** Close the core (stopping tasks and VMs) and exit 0. */
  | { type: 'shutdown' };

/** What the core process asks of main: the few things only main can do. */
export type HostOp =
  | { op: 'pickFolder' }
  | { op: 'openPath'; path: string }
  | { op: 'secret:set'; secret: string }
  | { op: 'secret:clear' }
  /** Make, wrap and keep the secrets' vault key (or return the one kept); answers its bytes. */
  | { op: 'vault-key:create' };

/** What the core process sends main. */
export type FromCore =
  /** Listening: main answers with `init`. */
  | { type: 'hello' }
  /** The core is built and answers requests. */
  | { type: 'ready' }
  | { type: 'reply'; id: number; result: Result<unknown> }
  /**
   * A contract event. `automationName` rides along with a run's event so that main's notifier
   * can name the automation without reading the store.
   */
  | { type: 'event'; event: EventName; payload: unknown; automationName?: string }
  | ({ type: 'host'; id: number } & HostOp);

/**
 * The refusal when the OS offers no encryption for the key: main's SafeStorageSecretStore and the
 * core process's copy of it (which must refuse synchronously, before main is asked) say the same.
 */
export function noKeychain(): PaddockError {
  return new PaddockError(
    'NO_KEYCHAIN',
    'This system offers no keychain to keep the key safely: set ANTHROPIC_API_KEY in the environment instead.',
  );
}
