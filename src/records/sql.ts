// The one seam between the records and their database engine: a few calls
// that SQLite (better-sqlite3) and PostgreSQL (pg) both implement. Every
// statement above this seam is portable SQL with `?` placeholders; the
// PostgreSQL driver numbers them ($1, $2...) itself.

export type SqlValue = string | number | null;

export interface SqlDriver {
  /** 'sqlite' or 'postgres', for logs and the few places the engines differ (none in the statements). */
  readonly kind: 'sqlite' | 'postgres';
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  all<T>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  /** Runs fn in one transaction on one connection: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** `?` placeholders to PostgreSQL's `$n`; the statements never put a `?` inside a string literal. */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
