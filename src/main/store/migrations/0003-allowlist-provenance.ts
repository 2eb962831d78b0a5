import type { Database } from 'better-sqlite3';

/**
 * Every saved network allowlist keeps where its entries came from. An entry a person typed
 * (Settings, a task's or an automation's form, `--allow-host`) stays in `allowlist`; an entry from
 * an answer to a prompt ("always allow") goes to `prompt_allowlist` (for settings: the
 * `promptAllowlist` key), and the egress proxy never lets those reach loopback, private,
 * link-local or metadata addresses.
 *
 * Entries saved before this migration carry no provenance. The safe reading: an entry a prompt
 * could have produced counts as a prompt answer. Provenance only decides whether an entry may open
 * an internal address, and only an exact `name:port` entry can; prompts are never asked about
 * literal internal addresses or localhost names, and never produce wildcards. So exactly the
 * entries of the form `name:port` (a DNS name other than localhost, with a port) move to the
 * prompt list; everything else stays as it was. A person who typed such an entry to reach a
 * service on their network adds it again in Settings (or with `--allow-host`).
 */
export function up(db: Database): void {
  db.exec(`
    ALTER TABLE sessions ADD COLUMN prompt_allowlist TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE automations ADD COLUMN prompt_allowlist TEXT NOT NULL DEFAULT '[]';
  `);

  const setting = db.prepare("SELECT value FROM settings WHERE key = 'networkAllowlist'").get() as
    { value: string } | undefined;
  const saved = setting ? strings(setting.value) : [];
  if (saved.length > 0) {
    const { configured, prompt } = splitByProvenance(saved);
    const put = db.prepare(
      'INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value',
    );
    put.run('networkAllowlist', JSON.stringify(configured));
    put.run('promptAllowlist', JSON.stringify(prompt));
  }

  for (const table of ['sessions', 'automations'] as const) {
    const rows = db.prepare(`SELECT id, allowlist FROM ${table}`).all() as {
      id: string;
      allowlist: string;
    }[];
    const write = db.prepare(
      `UPDATE ${table} SET allowlist = ?, prompt_allowlist = ? WHERE id = ?`,
    );
    for (const r of rows) {
      const { configured, prompt } = splitByProvenance(strings(r.allowlist));
      if (prompt.length > 0) write.run(JSON.stringify(configured), JSON.stringify(prompt), r.id);
    }
  }
}

function strings(json: string): string[] {
  try {
    const v = JSON.parse(json) as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

/**
 * Splits entries saved without provenance (see the module comment): `name:port` entries could
 * have come from a prompt and are read as such; a misread leans towards "prompt" (an odd spelling
 * of an address with a port is treated as a name), which costs a 403, never a way in.
 */
export function splitByProvenance(entries: readonly string[]): {
  configured: string[];
  prompt: string[];
} {
  const configured: string[] = [];
  const prompt: string[] = [];
  for (const e of entries) (mayBePromptAnswer(e) ? prompt : configured).push(e);
  return { configured, prompt };
}

function mayBePromptAnswer(entry: string): boolean {
  const text = entry.trim().toLowerCase();
  if (text.startsWith('*') || text.startsWith('[')) return false; // wildcards, IPv6 literals
  const m = /^(.+):(\d+)$/.exec(text);
  if (!m) return false; // no port: such an entry never opens an internal address
  const host = (m[1] ?? '').replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return false;
  // Dotted or plain decimal addresses are not names; a prompt was never asked about internal
  // ones, and a public one opens nothing internal either way.
  return !/^[0-9.]+$/.test(host);
}
