import pg from 'pg';
import { numberPlaceholders, type SqlDriver, type SqlValue } from './sql.js';

// BIGINT (int8) and NUMERIC (SUM, AVG) arrive as strings by default; the
// records hold milliseconds and counts well inside 2^53, so numbers they are.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => {
    if (oid === 20 || oid === 1700) return (text: string) => (text === null ? null : Number(text));
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

type Queryable = pg.Pool | pg.PoolClient;

/** PostgreSQL through a small pg pool; transactions hold one client. */
export class PostgresDriver implements SqlDriver {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;
  readonly #target: Queryable;

  private constructor(pool: pg.Pool, target: Queryable) {
    this.#pool = pool;
    this.#target = target;
  }

  static async connect(url: string, maxConnections = 4): Promise<PostgresDriver> {
    const pool = new pg.Pool({ connectionString: url, max: maxConnections, types, connectionTimeoutMillis: 10_000 });
    // An idle client's error (server restart) must not crash the hub; the next query reconnects.
    pool.on('error', () => undefined);
    // Fails now, with the server's reason, rather than at the first write.
    const client = await pool.connect().catch(async (err: Error) => {
      await pool.end().catch(() => undefined);
      throw err;
    });
    client.release();
    return new PostgresDriver(pool, pool);
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    const result = await this.#target.query(numberPlaceholders(sql), params as SqlValue[]);
    return result.rowCount ?? 0;
  }

  async all<T>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    const result = await this.#target.query(numberPlaceholders(sql), params as SqlValue[]);
    return result.rows as T[];
  }

  async get<T>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async transaction<T>(fn: (tx: SqlDriver) => Promise<T>): Promise<T> {
    if (this.#target !== this.#pool) throw new Error('PostgreSQL transactions do not nest here');
    const client = await this.#pool.connect();
    try {
      await client.query('BEGIN');
      const result = await fn(new PostgresDriver(this.#pool, client));
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    if (this.#target === this.#pool) await this.#pool.end();
  }
}
