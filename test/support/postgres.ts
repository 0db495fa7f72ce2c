// A throwaway PostgreSQL cluster for the tests: initdb in a temp dir, started
// with pg_ctl on a free loopback port, stopped and removed at the end. Debian
// puts the server binaries in /usr/lib/postgresql/<version>/bin (package
// `postgresql`, installed by scripts/setup.sh). PostgreSQL refuses to run as
// root, so as root the cluster belongs to `nobody`.

import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

function serverBinDir(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a)) : [];
  for (const v of versions) if (existsSync(join(root, v, 'bin', 'initdb'))) return join(root, v, 'bin');
  throw new Error('PostgreSQL server binaries not found in /usr/lib/postgresql/*/bin: run scripts/setup.sh (Debian package postgresql)');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export class TestPostgres {
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly bin: string,
    readonly asUser: string | undefined,
  ) {}

  /** The server's admin URL (trust authentication on loopback; no password). */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async start(): Promise<TestPostgres> {
    const bin = serverBinDir();
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-test-pg-'));
    const asUser = process.getuid?.() === 0 ? 'nobody' : undefined;
    if (asUser) chownSync(dir, 65534, 65534);
    const port = await freePort();
    const cluster = new TestPostgres(dir, port, bin, asUser);
    try {
      await cluster.#pg('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
      const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
      await cluster.#pg('pg_ctl', ['-D', join(dir, 'data'), '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '30', 'start']);
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return cluster;
  }

  /** A new empty database; returns its URL. */
  async createDatabase(name: string): Promise<string> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
    } finally {
      await client.end();
    }
    return `postgres://postgres@127.0.0.1:${this.port}/${name}`;
  }

  async stop(): Promise<void> {
    await this.#pg('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'immediate', '-w', 'stop']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  async #pg(tool: string, args: string[]): Promise<void> {
    const path = join(this.bin, tool);
    try {
      if (this.asUser) await run('runuser', ['-u', this.asUser, '--', path, ...args], { cwd: this.dir, timeout: 60_000 });
      else await run(path, args, { cwd: this.dir, timeout: 60_000 });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`${tool} failed: ${e.stderr?.trim() || e.message}`);
    }
  }
}
