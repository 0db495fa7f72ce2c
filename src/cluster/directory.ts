import { EventEmitter } from 'node:events';
import { createLogger } from '../common/logger.js';
import { conferenceStateSchema, hubRecordSchema, type ConferenceState, type HubRecord } from './messages.js';
import { keys, type RedisConnection } from './redis.js';

const log = createLogger('cluster-directory');

export interface DirectoryOptions {
  heartbeatMs: number;
  ttlMs: number;
}

export interface DirectoryEvents {
  /** A hub left the directory (its entry expired, or it said it left). */
  hubGone: [hubId: string];
  /** A heartbeat reached Redis after one or more that did not (Redis came back). */
  reconnected: [];
  /** A heartbeat and poll succeeded. */
  beat: [];
}

/** What this hub publishes at each heartbeat: its entry and its part of each conference it hosts. */
export interface DirectorySource {
  record(): HubRecord;
  conferenceStates(): Array<{ conferenceId: string; state: ConferenceState }>;
}

/**
 * The hub directory in Redis. Each hub renews, every heartbeatMs, its entry
 * ({hoichan}:hub:<id>, PX ttlMs), its part of each conference it hosts
 * ({hoichan}:conf:<c>:hub:<id>, PX ttlMs) and its membership of the
 * conference's hub set. Entries of a hub that stops are gone after ttlMs;
 * every hub polls at its heartbeat and reports the hubs that left, so a dead
 * hub is noticed within ttlMs + heartbeatMs (8 s with the defaults).
 *
 * Redis away: the heartbeats fail and are simply tried again; nothing is
 * declared gone while no poll succeeds. After Redis returns, a hub that has
 * not yet re-registered (its own reconnect may lag) is not declared gone
 * for one ttlMs: only a hub missing for a full TTL of reachable Redis is.
 */
export class ClusterDirectory extends EventEmitter<DirectoryEvents> {
  readonly #redis: RedisConnection;
  readonly #hubId: string;
  readonly #options: DirectoryOptions;
  readonly #source: DirectorySource;
  #timer: NodeJS.Timeout | undefined;
  /** Hubs seen in the last successful poll, with when each was last seen. */
  readonly #known = new Map<string, HubRecord>();
  #reachableSince: number | undefined;
  #lastBeatOk = false;
  #beating: Promise<void> | undefined;
  #closed = false;

  constructor(redis: RedisConnection, hubId: string, source: DirectorySource, options: DirectoryOptions) {
    super();
    this.#redis = redis;
    this.#hubId = hubId;
    this.#source = source;
    this.#options = options;
  }

  /** First heartbeat now (not waited for if Redis is away), then every heartbeatMs. */
  start(): Promise<void> {
    this.#timer = setInterval(() => void this.beat(), this.#options.heartbeatMs);
    this.#timer.unref();
    return this.beat();
  }

  /** Hubs of the last successful poll (this one included). */
  get hubs(): HubRecord[] {
    return [...this.#known.values()];
  }

  get reachable(): boolean {
    return this.#lastBeatOk;
  }

  hub(hubId: string): HubRecord | undefined {
    return this.#known.get(hubId);
  }

  /** One heartbeat and one poll; concurrent calls share the run in progress. */
  beat(): Promise<void> {
    this.#beating ??= this.#beat().finally(() => (this.#beating = undefined));
    return this.#beating;
  }

  async #beat(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#register();
      if (!this.#lastBeatOk) {
        this.#reachableSince = Date.now();
        if (this.#known.size > 0) {
          log.info('Redis reachable again: registered anew');
          this.emit('reconnected');
        }
      }
      this.#lastBeatOk = true;
      await this.#poll();
      this.emit('beat');
    } catch (err) {
      if (this.#lastBeatOk || this.#known.size === 0) log.warn({ err: (err as Error).message }, 'cluster heartbeat failed (Redis unreachable?); retrying');
      this.#lastBeatOk = false;
    }
  }

  async #register(): Promise<void> {
    const ttl = this.#options.ttlMs;
    const record = this.#source.record();
    const multi = this.#redis.multi();
    multi.set(keys.hub(this.#hubId), JSON.stringify(record), 'PX', ttl);
    multi.sadd(keys.hubs, this.#hubId);
    for (const { conferenceId, state } of this.#source.conferenceStates()) {
      multi.set(keys.conferenceState(conferenceId, this.#hubId), JSON.stringify(state), 'PX', ttl);
    }
    for (const conferenceId of record.conferences) {
      multi.sadd(keys.conferenceHubs(conferenceId), this.#hubId);
      // The set outlives its members' entries a little; members whose entry is gone are skipped and pruned.
      multi.pexpire(keys.conferenceHubs(conferenceId), ttl * 10);
    }
    await multi.exec();
  }

  async #poll(): Promise<void> {
    const ids = await this.#redis.smembers(keys.hubs);
    const values = ids.length > 0 ? await this.#redis.mget(ids.map((id) => keys.hub(id))) : [];
    const now = Date.now();
    const seen = new Map<string, HubRecord>();
    const expired: string[] = [];
    ids.forEach((id, i) => {
      const value = values[i];
      if (value == null) return void expired.push(id);
      const record = parseJson(value, hubRecordSchema.safeParse.bind(hubRecordSchema));
      if (record) seen.set(id, record);
    });
    if (expired.length > 0) await this.#redis.srem(keys.hubs, ...expired);
    const settled = now - (this.#reachableSince ?? now) >= this.#options.ttlMs;
    for (const [id] of this.#known) {
      if (seen.has(id) || id === this.#hubId) continue;
      if (!settled) {
        // Just reconnected: the hub may not have re-registered yet. Keep it for now.
        seen.set(id, this.#known.get(id)!);
        continue;
      }
      log.warn({ hubId: id }, 'hub left the directory');
      this.emit('hubGone', id);
    }
    this.#known.clear();
    for (const [id, record] of seen) this.#known.set(id, record);
  }

  /** A hub said it is leaving: drop it now. */
  forget(hubId: string): void {
    if (hubId === this.#hubId || !this.#known.delete(hubId)) return;
    this.emit('hubGone', hubId);
  }

  /** Other hubs' parts of a conference, as stored now. */
  async conferenceStates(conferenceId: string): Promise<ConferenceState[]> {
    const ids = (await this.#redis.smembers(keys.conferenceHubs(conferenceId))).filter((id) => id !== this.#hubId);
    if (ids.length === 0) return [];
    const values = await this.#redis.mget(ids.map((id) => keys.conferenceState(conferenceId, id)));
    const states: ConferenceState[] = [];
    const stale: string[] = [];
    ids.forEach((id, i) => {
      const value = values[i];
      if (value == null) return void stale.push(id);
      const state = parseJson(value, conferenceStateSchema.safeParse.bind(conferenceStateSchema));
      if (state && state.hubId === id) states.push(state);
    });
    if (stale.length > 0) await this.#redis.srem(keys.conferenceHubs(conferenceId), ...stale);
    return states;
  }

  /** Writes this hub's part of a conference now (between heartbeats, after a change). Fails quietly: the next heartbeat writes it. */
  writeConferenceState(conferenceId: string, state: ConferenceState): void {
    if (this.#redis.status !== 'ready') return;
    const multi = this.#redis.multi();
    multi.set(keys.conferenceState(conferenceId, this.#hubId), JSON.stringify(state), 'PX', this.#options.ttlMs);
    multi.sadd(keys.conferenceHubs(conferenceId), this.#hubId);
    multi.pexpire(keys.conferenceHubs(conferenceId), this.#options.ttlMs * 10);
    multi.exec().catch(() => undefined);
  }

  /** This hub no longer hosts the conference. */
  dropConference(conferenceId: string): void {
    if (this.#redis.status !== 'ready') return;
    const multi = this.#redis.multi();
    multi.del(keys.conferenceState(conferenceId, this.#hubId));
    multi.srem(keys.conferenceHubs(conferenceId), this.#hubId);
    multi.exec().catch(() => undefined);
  }

  /** Stops the heartbeat and removes this hub's entries (best effort: they expire anyway). */
  async close(conferenceIds: string[]): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#beating?.catch(() => undefined);
    if (this.#redis.status !== 'ready') return;
    const multi = this.#redis.multi();
    multi.del(keys.hub(this.#hubId));
    multi.srem(keys.hubs, this.#hubId);
    for (const c of conferenceIds) {
      multi.del(keys.conferenceState(c, this.#hubId));
      multi.srem(keys.conferenceHubs(c), this.#hubId);
    }
    await multi.exec().catch(() => undefined);
  }
}

function parseJson<T>(text: string, parse: (v: unknown) => { success: true; data: T } | { success: false }): T | undefined {
  try {
    const result = parse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}
