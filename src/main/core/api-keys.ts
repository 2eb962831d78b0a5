import { APIConnectionError, APIError } from '@anthropic-ai/sdk';
import type { ApiKeyStatus } from '../../shared/app-contract.js';
import { PaddockError } from '../../shared/result.js';
import { createAnthropic } from '../agent/model.js';

/**
 * Where a host keeps the API key it was given: Electron encrypts it with safeStorage into the data
 * folder; the web host and the CLI keep it in memory for the life of the process.
 */
export interface SecretStore {
  get(): string | null;
  set(secret: string): void;
  clear(): void;
  /** Whether a stored key survives a restart. */
  readonly persistent: boolean;
}

/** A SecretStore that forgets on exit: the web host's and the CLI's. */
export class MemorySecretStore implements SecretStore {
  private value: string | null = null;
  readonly persistent = false;
  get(): string | null {
    return this.value;
  }
  set(secret: string): void {
    this.value = secret;
  }
  clear(): void {
    this.value = null;
  }
}

/** Shows enough of a key to recognise it and nothing more, e.g. `sk-ant-…abcd`. */
export function maskKey(key: string): string {
  if (key.length <= 12) return '…' + key.slice(-2);
  const prefix = /^sk-ant-/.test(key) ? 'sk-ant-' : key.slice(0, 3);
  return `${prefix}…${key.slice(-4)}`;
}

/** The key and endpoint a model call should use. */
export interface ModelCredentials {
  apiKey: string;
  baseURL: string | undefined;
}

/**
 * The API key: the stored one first, then ANTHROPIC_API_KEY; ANTHROPIC_BASE_URL from the
 * environment. A key is checked with a real, cheap call (GET /v1/models) before it is kept.
 * SECURITY: the key itself is never returned to a UI, only its masked form.
 */
export class ApiKeys {
  constructor(
    private readonly secrets: SecretStore,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  resolve(): ModelCredentials | null {
    const stored = this.secrets.get();
    const apiKey = stored ?? this.env.ANTHROPIC_API_KEY ?? null;
    if (!apiKey) return null;
    return { apiKey, baseURL: this.env.ANTHROPIC_BASE_URL || undefined };
  }

  status(): ApiKeyStatus {
    const stored = this.secrets.get();
    const key = stored ?? this.env.ANTHROPIC_API_KEY ?? null;
    return {
      configured: Boolean(key),
      source: stored ? 'stored' : key ? 'env' : 'none',
      masked: key ? maskKey(key) : null,
      baseURL: this.env.ANTHROPIC_BASE_URL || null,
      persistent: this.secrets.persistent,
    };
  }

  /** Checks `key` against the API and keeps it; returns the models it may use. */
  async set(key: string): Promise<{ status: ApiKeyStatus; models: string[] }> {
    const models = await this.listModels({
      apiKey: key,
      baseURL: this.env.ANTHROPIC_BASE_URL || undefined,
    });
    this.secrets.set(key);
    return { status: this.status(), models };
  }

  /** The models the configured key may use. */
  async models(): Promise<string[]> {
    const creds = this.resolve();
    if (!creds)
      throw new PaddockError('NO_API_KEY', 'There is no API key yet: enter it in Settings.');
    return this.listModels(creds);
  }

  private async listModels(creds: ModelCredentials): Promise<string[]> {
    const client = createAnthropic(creds);
    try {
      const page = await client.models.list({ limit: 100 }, { timeout: 15_000 });
      return page.data.map((m) => m.id);
    } catch (e) {
      if (e instanceof APIError && (e.status === 401 || e.status === 403)) {
        throw new PaddockError(
          'AUTH',
          'Anthropic refused this API key: copy it again from the Anthropic Console (it starts with sk-ant-) and paste it here.',
        );
      }
      if (e instanceof APIConnectionError) {
        throw new PaddockError(
          'MODEL_UNREACHABLE',
          `Could not reach the Anthropic API${creds.baseURL ? ` at ${creds.baseURL}` : ''}: check the network connection and try again.`,
        );
      }
      if (e instanceof APIError) {
        throw new PaddockError(
          'MODEL_ERROR',
          `The Anthropic API answered ${e.status ?? 'with an error'} while checking the key; try again in a minute.`,
        );
      }
      throw e;
    }
  }
}
