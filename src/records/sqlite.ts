import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { SqlDriver, SqlValue } from './sql.js';

/**
 * SQLite through better-sqlite3: one connection, synchronous calls wrapped
 * in promises. WAL mode, so the API's reads do not wait for the recorder's
 * writes; foreign keys on, so deleting a session (retention) deletes its rows.
 */
export class SqliteDriver implements SqlDriver {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  /** Prepared statements by text: compiling one costs more than running it. The statements are a fixed set (multi-row inserts up to 200 rows), so the cache stays small; it is emptied if it ever is not. */
  readonly #statements = new Map<string, Database.Statement>();
  #inTransaction = false;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  static open(file: string): SqliteDriver {
    if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a power cut may lose the last commits, never corrupt the file (the issue allows "the last seconds").
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    return new SqliteDriver(db);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#prepare(sql).run(...params).changes;
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#prepare(sql).all(...params) as T[];
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.#prepare(sql).get(...params) as T | undefined;
  }

  #prepare(sql: string): Database.Statement {
    let statement = this.#statements.get(sql);
    if (!statement) {
      if (this.#statements.size >= 1000) this.#statements.clear();
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    // One connection: callers (the write queue) run transactions one at a time.
    if (this.#inTransaction) throw new Error('SQLite transactions do not nest here');
    this.#inTransaction = true;
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn(this);
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      throw err;
    } finally {
      this.#inTransaction = false;
    }
  }

  async close(): Promise<void> {
    this.#statements.clear();
    if (this.#db.open) this.#db.close();
  }
}
