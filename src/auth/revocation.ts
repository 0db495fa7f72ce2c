// Revoked tokens: one token by jti (kept until it would have expired anyway),
// or every token of a subject issued before a time (a lost laptop, a site PC
// reinstalled, a person who left). Memory + a JSON-lines file (auth.revocationFile,
// written by `hoichan token revoke`, reloaded when it changes and on SIGHUP),
// and Redis when the hub is clustered so every hub sees a revocation at once.
// A hub keeps a copy of the Redis list, so that while Redis is away it can
// still admit tokens for a bounded time (auth.revocationMaxStaleness,
// docs/SECURITY.md) instead of refusing every new login.

import { appendFile, mkdir, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EventEmitter } from 'node:events';
import { createRedis, type RedisClient } from '../common/redis.js';
import { z } from 'zod';
import { createLogger } from '../common/logger.js';

const log = createLogger('revocation');

const seconds = z.number().int().min(0).max(2 ** 40);

export const revocationSchema = z.union([
  z.object({ jti: z.string().min(1).max(128), until: seconds }).strict(),
  /** Every token of sub with iat < before; forgotten at until (before + the longest lifetime). */
  z.object({ sub: z.string().min(1).max(128), before: seconds, until: seconds }).strict(),
]);

export type Revocation = z.infer<typeof revocationSchema>;

/** The claims a revocation check reads. */
export interface RevocableClaims {
  jti: string;
  sub: string;
  iat: number;
}

/** A revocation check's answer. */
export interface RevocationCheck {
  revoked: boolean;
  /**
   * Set when the answer came from this hub's copy of the shared list because
   * the list itself (Redis) could not be asked: how long ago the copy was last
   * known complete, ms. The caller audits such an admission.
   */
  staleMs?: number;
}

export interface RevocationStore {
  readonly kind: string;
  isRevoked(claims: RevocableClaims): Promise<boolean>;
  /** isRevoked, saying whether the answer was stale. Throws when the store can give no answer it may trust. */
  check(claims: RevocableClaims): Promise<RevocationCheck>;
  add(revocation: Revocation): Promise<void>;
  /** Called after revocations arrive from outside (file edit, SIGHUP, another hub): the servers re-check their sockets. */
  on(event: 'changed', listener: (added: Revocation[]) => void): this;
  off(event: 'changed', listener: (added: Revocation[]) => void): this;
  close(): Promise<void>;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

/** The in-memory list; also the cache behind the file store. */
export class MemoryRevocations extends EventEmitter implements RevocationStore {
  readonly kind: string = 'memory';
  protected readonly jtis = new Map<string, number>();
  protected readonly subs = new Map<string, { before: number; until: number }>();

  async isRevoked(claims: RevocableClaims): Promise<boolean> {
    return this.has(claims);
  }

  async check(claims: RevocableClaims): Promise<RevocationCheck> {
    return { revoked: this.has(claims) };
  }

  has({ jti, sub, iat }: RevocableClaims): boolean {
    const now = nowSeconds();
    const until = this.jtis.get(jti);
    if (until !== undefined && until >= now) return true;
    const bySub = this.subs.get(sub);
    return bySub !== undefined && bySub.until >= now && iat < bySub.before;
  }

  async add(revocation: Revocation): Promise<void> {
    if (this.remember(revocation)) this.emit('changed', [revocation]);
  }

  /** True when it is new (not already known, not already past). */
  protected remember(r: Revocation): boolean {
    if (r.until < nowSeconds()) return false;
    if ('jti' in r) {
      if ((this.jtis.get(r.jti) ?? -1) >= r.until) return false;
      this.jtis.set(r.jti, r.until);
      return true;
    }
    const known = this.subs.get(r.sub);
    if (known && known.before >= r.before && known.until >= r.until) return false;
    this.subs.set(r.sub, { before: Math.max(r.before, known?.before ?? 0), until: Math.max(r.until, known?.until ?? 0) });
    return true;
  }

  protected prune(): void {
    const now = nowSeconds();
    for (const [jti, until] of this.jtis) if (until < now) this.jtis.delete(jti);
    for (const [sub, { until }] of this.subs) if (until < now) this.subs.delete(sub);
  }

  get size(): number {
    return this.jtis.size + this.subs.size;
  }

  /** Every entry still in force, as revocations. */
  entries(): Revocation[] {
    this.prune();
    return [...[...this.jtis].map(([jti, until]) => ({ jti, until })), ...[...this.subs].map(([sub, { before, until }]) => ({ sub, before, until }))];
  }

  async close(): Promise<void> {
    this.removeAllListeners();
  }
}

export function parseRevocationLines(text: string): { revocations: Revocation[]; bad: number[] } {
  const revocations: Revocation[] = [];
  const bad: number[] = [];
  text.split('\n').forEach((line, i) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    try {
      const parsed = revocationSchema.safeParse(JSON.parse(trimmed));
      if (parsed.success) revocations.push(parsed.data);
      else bad.push(i + 1);
    } catch {
      bad.push(i + 1);
    }
  });
  return { revocations, bad };
}

/** Appends one revocation to a revocation file (creating it, owner-only). */
export async function appendRevocation(path: string, revocation: Revocation): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await appendFile(path, JSON.stringify(revocationSchema.parse(revocation)) + '\n', { mode: 0o600 });
}

/** Memory + a JSON-lines file. A missing file is an empty list (nothing revoked yet). */
export class FileRevocations extends MemoryRevocations {
  override readonly kind = 'file';
  readonly #path: string;
  readonly #onHup = () => void this.reload('SIGHUP');
  #closed = false;
  #poll: NodeJS.Timeout | undefined;
  /** size/mtime/inode of the file as last read: a poll that sees another one reloads. */
  #seen = '';
  #reloading: Promise<void> | undefined;

  private constructor(path: string) {
    super();
    this.#path = path;
  }

  static async open(path: string, pollMs = 1000): Promise<FileRevocations> {
    const store = new FileRevocations(path);
    await store.reload('start');
    // Polling stat sees the file appear, be replaced by a rename, or grow, which fs.watch misses on some
    // filesystems; comparing with the stat taken at the last read (not the poller's own first look) cannot
    // miss a line appended between the two.
    store.#poll = setInterval(() => {
      void signature(path).then((sig) => {
        if (sig !== store.#seen) void store.reload('file changed');
      });
    }, pollMs);
    store.#poll.unref();
    process.on('SIGHUP', store.#onHup);
    return store;
  }

  /** Re-reads the file; entries only ever get added (a line removed from the file stays revoked until it expires or the hub restarts). */
  async reload(why: string): Promise<void> {
    if (this.#closed) return;
    // One read at a time: a poll during a slow read must not read the file twice over.
    while (this.#reloading) await this.#reloading;
    this.#reloading = this.#read(why);
    try {
      await this.#reloading;
    } finally {
      this.#reloading = undefined;
    }
  }

  async #read(why: string): Promise<void> {
    let text: string;
    try {
      // The signature first: a line appended during the read shows as a change at the next poll.
      this.#seen = await signature(this.#path);
      text = await readFile(this.#path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log.error({ path: this.#path, err: (err as Error).message }, 'cannot read the revocation file; keeping the list as it was');
      return;
    }
    const { revocations, bad } = parseRevocationLines(text);
    if (bad.length > 0) log.error({ path: this.#path, lines: bad.slice(0, 20) }, 'revocation file lines that are not revocations were skipped');
    this.prune();
    const added = revocations.filter((r) => this.remember(r));
    log.info({ why, entries: this.size, added: added.length }, 'revocation list loaded');
    if (added.length > 0) this.emit('changed', added);
  }

  override async add(revocation: Revocation): Promise<void> {
    await appendRevocation(this.#path, revocation);
    await super.add(revocation);
  }

  override async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#poll);
    process.off('SIGHUP', this.#onHup);
    await super.close();
  }
}

async function signature(path: string): Promise<string> {
  try {
    const st = await stat(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return 'missing';
  }
}

const CHANNEL = 'hoichan:revocations';
const jtiKey = (jti: string) => `hoichan:revoked:jti:${jti}`;
const subKey = (sub: string) => `hoichan:revoked:sub:${sub}`;
/** Every entry as JSON, scored by its `until`: what a hub reads to refresh its copy in one command. */
const INDEX = 'hoichan:revoked:index';

/** Most entries a hub copies; past it the copy is not trusted while Redis is away (checks fail closed). */
const MAX_COPIED = 100_000;
/** Most revocations made on this hub while Redis was away, waiting to be written there. */
const MAX_UNSENT = 10_000;

/** The local copy: MemoryRevocations whose `remember` tells whether an entry is new. */
class RevocationCopy extends MemoryRevocations {
  take(r: Revocation): boolean {
    return this.remember(r);
  }
}

export interface RedisRevocationsOptions {
  /**
   * A hub (true): subscribes to new revocations, keeps a copy of the list and
   * answers from it while Redis is away, within maxStalenessMs. The CLI
   * (false): writes and reads Redis only.
   */
  listen?: boolean;
  /** How old the copy may be and still answer (auth.revocationMaxStaleness); 0: never (fail closed at once). */
  maxStalenessMs?: number;
  /** How often the copy is read anew from Redis (pub/sub keeps it current in between). Default 10 s. */
  syncMs?: number;
}

/**
 * Revocations shared by every hub of a cluster: one key per entry, expiring
 * with it, an index of all of them, and a channel that tells the hubs. A hub
 * asks Redis for each check while it can; while it cannot, it answers from
 * its copy as long as the copy was known complete less than maxStalenessMs
 * ago, and fails closed after that. Revocations made on a hub meanwhile apply
 * there at once and are written to Redis when it is back.
 */
export class RedisRevocations extends EventEmitter implements RevocationStore {
  readonly kind = 'redis';
  readonly #redis: RedisClient;
  readonly #sub: RedisClient;
  readonly #listen: boolean;
  readonly #maxStalenessMs: number;
  readonly #copy = new RevocationCopy();
  readonly #unsent: Revocation[] = [];
  #sync: NodeJS.Timeout | undefined;
  #syncing: Promise<void> | undefined;
  /** When the copy was last known complete (a full read, or the moment pub/sub stopped keeping it current). */
  #confirmedAt: number | undefined;
  /** The copy is complete and pub/sub is keeping it so (subscribed since before the last full read). */
  #current = false;

  private constructor(redis: RedisClient, sub: RedisClient, options: RedisRevocationsOptions) {
    super();
    this.#redis = redis;
    this.#sub = sub;
    this.#listen = options.listen ?? true;
    this.#maxStalenessMs = options.maxStalenessMs ?? 0;
  }

  static async connect(url: string, options: RedisRevocationsOptions = {}): Promise<RedisRevocations> {
    const redis = createRedis(url, { lazyConnect: true, maxRetriesPerRequest: 3 });
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis error'));
    await redis.connect();
    const sub = redis.duplicate();
    sub.on('error', (err: Error) => log.warn({ err: err.message }, 'redis error'));
    const store = new RedisRevocations(redis, sub, options);
    if (store.#listen) {
      await sub.subscribe(CHANNEL);
      sub.on('message', (_channel: string, message: string) => {
        try {
          const parsed = revocationSchema.safeParse(JSON.parse(message));
          if (parsed.success) store.#learn([parsed.data]);
        } catch {
          log.warn('a revocation notice that is not JSON was ignored');
        }
      });
      sub.on('close', () => {
        // Pub/sub no longer keeps the copy current: from here on it ages.
        if (store.#current) store.#confirmedAt = Date.now();
        store.#current = false;
      });
      // Resubscribed after an outage: read the list again (notices sent meanwhile were lost).
      sub.on('ready', () => void store.refresh());
      await store.refresh();
      store.#sync = setInterval(() => void store.refresh(), options.syncMs ?? 10_000);
      store.#sync.unref();
    }
    return store;
  }

  async isRevoked(claims: RevocableClaims): Promise<boolean> {
    return (await this.check(claims)).revoked;
  }

  async check(claims: RevocableClaims): Promise<RevocationCheck> {
    // A revocation made here while Redis was away may not be in Redis yet: the copy is asked too.
    const local = this.#copy.has(claims);
    if (this.#redis.status === 'ready' || !this.#listen) {
      try {
        return { revoked: (await this.#ask(claims)) || local };
      } catch (err) {
        if (!this.#listen) throw err;
      }
    }
    const age = this.#confirmedAt === undefined ? undefined : this.#current ? 0 : Date.now() - this.#confirmedAt;
    if (age === undefined || age > this.#maxStalenessMs) {
      throw new Error(`revocation list unreachable (Redis) and this hub's copy is ${age === undefined ? 'incomplete' : `${Math.round(age / 1000)} s old`}, past auth.revocationMaxStaleness`);
    }
    return { revoked: local, staleMs: age };
  }

  async add(r: Revocation): Promise<void> {
    if (r.until - nowSeconds() <= 0) return;
    if (!this.#listen) return this.#write(r);
    // At once on this hub, whatever Redis does.
    this.#learn([r]);
    try {
      if (this.#redis.status !== 'ready') throw new Error('Redis unreachable');
      await this.#write(r);
    } catch (err) {
      if (this.#unsent.length >= MAX_UNSENT) throw new Error(`cannot record the revocation: Redis is unreachable and ${MAX_UNSENT} revocations already wait for it`);
      this.#unsent.push(r);
      log.warn({ err: (err as Error).message, waiting: this.#unsent.length }, 'revocation applies on this hub now; it reaches the other hubs once Redis is back');
    }
  }

  /**
   * Reads the whole list from Redis into the copy, and writes back what Redis
   * lacks: revocations made here while it was away, and entries a Redis that
   * restarted empty lost. One read at a time.
   */
  refresh(): Promise<void> {
    this.#syncing ??= this.#refresh()
      .catch((err: Error) => log.debug({ err: err.message }, 'revocation list not refreshed (Redis unreachable?)'))
      .finally(() => {
        this.#syncing = undefined;
      });
    return this.#syncing;
  }

  async #refresh(): Promise<void> {
    if (this.#redis.status !== 'ready') return;
    const subscribed = this.#sub.status === 'ready';
    const now = nowSeconds();
    await this.#redis.zremrangebyscore(INDEX, '-inf', `(${now}`);
    const texts = await this.#redis.zrangebyscore(INDEX, now, '+inf', 'LIMIT', 0, MAX_COPIED + 1);
    if (texts.length > MAX_COPIED) {
      log.error({ entries: texts.length }, `more than ${MAX_COPIED} revocations in force: this hub keeps no trusted copy, so checks fail closed while Redis is away`);
      this.#confirmedAt = undefined;
      this.#current = false;
      return;
    }
    const remote: Revocation[] = [];
    for (const text of texts) {
      try {
        const parsed = revocationSchema.safeParse(JSON.parse(text));
        if (parsed.success) remote.push(parsed.data);
      } catch {
        // Not ours; the next write of that entry replaces it.
      }
    }
    this.#learn(remote);
    const known = new Set(texts);
    const missing = this.#copy.entries().filter((r) => !known.has(JSON.stringify(r)));
    for (const r of missing) await this.#write(r);
    if (missing.length > 0) log.info({ written: missing.length }, 'revocations Redis lacked (made here while it was away, or lost by a restart) written to it');
    this.#unsent.length = 0;
    this.#confirmedAt = Date.now();
    this.#current = subscribed && this.#sub.status === 'ready';
  }

  /** New entries into the copy; the servers re-check their sockets against them. */
  #learn(revocations: Revocation[]): void {
    const added = revocations.filter((r) => this.#copy.take(r));
    if (added.length > 0) this.emit('changed', added);
  }

  async #ask({ jti, sub, iat }: RevocableClaims): Promise<boolean> {
    // Two GETs, not one MGET: on a Redis Cluster the two keys are in different slots.
    const [byJti, bySub] = await Promise.all([this.#redis.get(jtiKey(jti)), this.#redis.get(subKey(sub))]);
    return byJti !== null || (bySub !== null && iat < Number(bySub));
  }

  async #write(r: Revocation): Promise<void> {
    const ttl = r.until - nowSeconds();
    if (ttl <= 0) return;
    if ('jti' in r) {
      await this.#redis.set(jtiKey(r.jti), '1', 'EX', ttl);
    } else {
      // Keep the later cut-off if one is already there.
      const known = Number((await this.#redis.get(subKey(r.sub))) ?? 0);
      await this.#redis.set(subKey(r.sub), String(Math.max(known, r.before)), 'EX', Math.max(ttl, (await this.#redis.ttl(subKey(r.sub))) ?? 0));
    }
    await this.#redis.zadd(INDEX, r.until, JSON.stringify(r));
    await this.#redis.publish(CHANNEL, JSON.stringify(r));
  }

  async close(): Promise<void> {
    clearInterval(this.#sync);
    this.removeAllListeners();
    this.#sub.disconnect();
    this.#redis.disconnect();
  }
}

/** Several stores as one: revoked in any is revoked; adds go to each. */
export class AnyRevocations extends EventEmitter implements RevocationStore {
  readonly kind: string;

  constructor(readonly stores: RevocationStore[]) {
    super();
    this.kind = stores.map((s) => s.kind).join('+');
    for (const s of stores) s.on('changed', (added) => this.emit('changed', added));
  }

  async isRevoked(claims: RevocableClaims): Promise<boolean> {
    return (await this.check(claims)).revoked;
  }

  async check(claims: RevocableClaims): Promise<RevocationCheck> {
    const results = await Promise.all(this.stores.map((s) => s.check(claims)));
    const stale = results.flatMap((r) => (r.staleMs === undefined ? [] : [r.staleMs]));
    return { revoked: results.some((r) => r.revoked), ...(stale.length > 0 ? { staleMs: Math.max(...stale) } : {}) };
  }

  async add(revocation: Revocation): Promise<void> {
    await Promise.all(this.stores.map((s) => s.add(revocation)));
  }

  async close(): Promise<void> {
    this.removeAllListeners();
    await Promise.all(this.stores.map((s) => s.close()));
  }
}

/** The store auth config and redis.url ask for. */
export async function openRevocations(options: { file: string | null; redisUrl: string | null; maxStalenessSeconds?: number }): Promise<RevocationStore> {
  const stores: RevocationStore[] = [];
  if (options.file) stores.push(await FileRevocations.open(options.file));
  if (options.redisUrl) stores.push(await RedisRevocations.connect(options.redisUrl, { listen: true, maxStalenessMs: (options.maxStalenessSeconds ?? 0) * 1000 }));
  if (stores.length === 0) return new MemoryRevocations();
  return stores.length === 1 ? stores[0]! : new AnyRevocations(stores);
}
