import { z } from 'zod';

/**
 * Secrets the VM never sees (issue 16): a named value with the hosts it may be sent to. Inside a
 * task's VM a chosen secret is an environment variable holding a placeholder that differs in every
 * session; the egress proxy swaps the placeholder for the value only on requests to the secret's
 * own hosts. The value itself never crosses this contract on the way out: a page can set it, never
 * read it.
 */

/** A secret's name: what tasks, automations and `paddock run --secret` choose it by. */
export const secretNameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]{0,63}$/,
    'A secret name is 1 to 64 lower-case letters, digits, "-" or "_", starting with a letter or digit (e.g. github).',
  );

/** The environment variable the guest sees the placeholder in (e.g. GITHUB_TOKEN). */
export const secretEnvNameSchema = z
  .string()
  .regex(
    /^[A-Z_][A-Z0-9_]{0,63}$/,
    'An environment variable name is upper-case letters, digits and "_", not starting with a digit (e.g. GITHUB_TOKEN).',
  );

/**
 * The environment variable a secret's placeholder goes in unless one is given: `github-ci` →
 * `GITHUB_CI`, and a leading digit gets a `_` (`1pass` → `_1PASS`). The core applies it; pages show
 * it beforehand.
 */
export function defaultSecretEnvName(name: string): string {
  const upper = name
    .trim()
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, '_');
  return /^[0-9]/.test(upper) ? `_${upper}` : upper;
}

/** What the person is shown of a stored secret: everything but its value. */
export const secretInfoSchema = z.object({
  name: secretNameSchema,
  envName: secretEnvNameSchema,
  /** Hosts it may be sent to, in allowlist syntax (`api.example.com`, `*.example.com`, `host:port`). */
  hosts: z.array(z.string()).min(1),
  /** Whether the placeholder is also replaced in request bodies (headers and URLs always). */
  inBody: z.boolean(),
  /** Whether its hosts are pinned to the person's secrets ("my account only"); the default. */
  pin: z.boolean(),
  /** Where it was added: Settings or the CLI. */
  source: z.enum(['settings', 'cli']),
  createdAt: z.number(),
  updatedAt: z.number(),
});
export type SecretInfo = z.infer<typeof secretInfoSchema>;

/** How secrets are kept at rest on this computer (said in Settings and by doctor). */
export const secretStoreStatusSchema = z.object({
  /**
   * `safe-storage`: the app's key is encrypted by Electron safeStorage (the OS keychain);
   * `keychain`: the platform keychain holds the key (macOS); `file`: the key is in a file in the
   * data folder that only this user can read (no keychain here).
   */
  kind: z.enum(['safe-storage', 'keychain', 'file']),
  /** One sentence for the person. */
  detail: z.string(),
  /** Whether stored secrets can be decrypted by this process (false: added by another host). */
  usable: z.boolean(),
});
export type SecretStoreStatus = z.infer<typeof secretStoreStatusSchema>;

export const secretAddSchema = z
  .object({
    name: secretNameSchema,
    /** Default: {@link defaultSecretEnvName}, or the replaced secret's own. */
    envName: secretEnvNameSchema.optional(),
    hosts: z.array(z.string().min(1).max(300)).min(1, 'Say which hosts it may be sent to.').max(50),
    /** The value; kept encrypted, never returned. */
    value: z
      .string()
      .min(1, 'The secret has no value.')
      .max(16_384, 'A secret is at most 16 KiB.')
      .refine((v) => !/[\r\n\0]/.test(v), 'A secret value cannot contain line breaks or NUL.'),
    inBody: z.boolean().optional(),
    pin: z.boolean().optional(),
    /** Replace an existing secret of the same name. */
    replace: z.boolean().optional(),
  })
  .strict();
export type SecretAdd = z.infer<typeof secretAddSchema>;

export const secretsRequests = {
  'secrets:list': {
    req: z.object({}).strict(),
    res: z.object({ secrets: z.array(secretInfoSchema), store: secretStoreStatusSchema }),
  },
  'secrets:add': {
    req: secretAddSchema,
    res: secretInfoSchema,
  },
  'secrets:remove': {
    req: z.object({ name: secretNameSchema }).strict(),
    res: z.object({ removed: z.boolean() }),
  },
} as const;

export const secretsEvents = {
  /** A secret was added, replaced or removed (names only). */
  'secrets:changed': z.object({ names: z.array(z.string()) }),
} as const;
