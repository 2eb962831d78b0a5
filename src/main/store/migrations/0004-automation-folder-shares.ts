import type { Database } from 'better-sqlite3';
import path from 'node:path';

/**
 * Automations keep their folders as sessions do: `{hostPath, name, readOnly}` objects (the VM's
 * ShareSpec), no longer `PATH` / `PATH:ro` strings that had to be parsed again at each run.
 *
 * Every stored string was written from a resolved path with `:ro` appended for a read-only grant,
 * and each run read it back by stripping a trailing `:ro`; the migration reads it the same way, so
 * a run after it shares exactly what a run before it did (a folder whose own name ends in `:ro`
 * stays read-only, as it was). The name is the folder's basename made safe and unique within the
 * automation as resolveGrants (vm/grants.ts) names shares; runs recompute it anyway, since every
 * run judges its folders again. Nothing here touches the disk: a folder gone since is kept, and
 * the next run reports it as missing.
 */
export function up(db: Database): void {
  const rows = db.prepare('SELECT id, folders FROM automations').all() as {
    id: string;
    folders: string;
  }[];
  const write = db.prepare('UPDATE automations SET folders = ? WHERE id = ?');
  for (const r of rows) write.run(JSON.stringify(sharesOf(r.folders)), r.id);
}

function sharesOf(json: string): { hostPath: string; name: string; readOnly: boolean }[] {
  let stored: unknown;
  try {
    stored = JSON.parse(json);
  } catch {
    return [];
  }
  if (!Array.isArray(stored)) return [];
  const used = new Set<string>();
  return stored
    .filter((f): f is string => typeof f === 'string')
    .map((f) => {
      const readOnly = f.endsWith(':ro');
      const hostPath = readOnly ? f.slice(0, -':ro'.length) : f;
      // As resolveGrants names a share, as of this migration (the store may not import vm/).
      const safe = path.basename(hostPath).replace(/[^A-Za-z0-9._-]/g, '_');
      const base = safe.replace(/^\.+/, '_') || 'folder';
      let name = base;
      for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
      used.add(name);
      return { hostPath, name, readOnly };
    });
}
