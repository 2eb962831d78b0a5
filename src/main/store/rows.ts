import type { Database } from 'better-sqlite3';

/** Column ↔ field names, worked out once per name (rows are read by the thousand). */
const fieldOfColumn = new Map<string, string>();
const columnOfField = new Map<string, string>();
function fieldOf(column: string): string {
  let f = fieldOfColumn.get(column);
  if (f === undefined) {
    f = column.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase());
    fieldOfColumn.set(column, f);
  }
  return f;
}
function columnOf(field: string): string {
  let c = columnOfField.get(field);
  if (c === undefined) {
    c = field.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`);
    columnOfField.set(field, c);
  }
  return c;
}

/** What SQLite takes as a parameter (better-sqlite3 refuses booleans and undefined). */
type SqlValue = string | number | bigint | Buffer | null;

/**
 * How one table's rows map to the app's objects, written once for every repository: a column
 * `schedule_text` is the field `scheduleText`; the fields named in `json` are kept as JSON text
 * and those in `bool` as 0/1. Every other field is kept as it is. A field left unset on insert
 * takes the column's default from the schema.
 */
export class RowCodec<Row> {
  private readonly json: ReadonlySet<string>;
  private readonly bool: ReadonlySet<string>;

  constructor(
    readonly table: string,
    kinds: { json?: (keyof Row & string)[]; bool?: (keyof Row & string)[] } = {},
  ) {
    this.json = new Set(kinds.json);
    this.bool = new Set(kinds.bool);
  }

  /** A row as SQLite returns it (`SELECT *`, or columns named the same) in the app's shape. */
  readonly read = (raw: unknown): Row => {
    const row: Record<string, unknown> = {};
    for (const [column, v] of Object.entries(raw as Record<string, unknown>)) {
      const field = fieldOf(column);
      if (this.json.has(field)) row[field] = JSON.parse(v as string);
      else if (this.bool.has(field)) row[field] = v === 1;
      else row[field] = v;
    }
    return row as Row;
  };

  /** The given fields as column values by name (for `@name` parameters); unset ones left out. */
  write(fields: Partial<Row>): Record<string, SqlValue> {
    const values: Record<string, SqlValue> = {};
    for (const [field, v] of Object.entries(fields)) {
      if (v === undefined) continue;
      const column = columnOf(field);
      if (this.json.has(field)) values[column] = JSON.stringify(v);
      else if (this.bool.has(field)) values[column] = v ? 1 : 0;
      else values[column] = v as SqlValue;
    }
    return values;
  }

  /** Inserts one row; `tail` is a clause such as `ON CONFLICT … DO NOTHING`. Returns changes. */
  insert(db: Database, fields: Partial<Row>, tail = ''): number {
    const values = this.write(fields);
    const names = Object.keys(values);
    const params = names.map((n) => `@${n}`);
    return db
      .prepare(
        `INSERT INTO ${this.table} (${names.join(', ')}) VALUES (${params.join(', ')}) ${tail}`,
      )
      .run(values).changes;
  }

  /** The row whose `id` is `id`. */
  byId(db: Database, id: string): Row | undefined {
    const r = db.prepare(`SELECT * FROM ${this.table} WHERE id = ?`).get(id);
    return r === undefined ? undefined : this.read(r);
  }
}

/**
 * The next number of a sequence kept per parent (a session's events, an artifact's versions): one
 * past the largest so far. Call inside the transaction that inserts it.
 */
export function nextNumber(
  db: Database,
  table: string,
  column: string,
  parentColumn: string,
  parent: string,
): number {
  return (
    db
      .prepare(
        `SELECT COALESCE(MAX(${column}), 0) + 1 AS next FROM ${table} WHERE ${parentColumn} = ?`,
      )
      .get(parent) as { next: number }
  ).next;
}
