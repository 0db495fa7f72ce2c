import { Redis } from 'ioredis';
import type { Reading } from '../devices/reading.js';
import { createLogger } from '../telemetry/logger.js';
import { DEFAULT_HISTORY_LIMITS, latestKey, snapshotOf, type DeviceHistoryStore, type HistoryLimits } from './deviceHistory.js';

// Redis Streams history: one stream per device whose entry ids are
// `<seq>-1`, so Redis itself refuses a seq at or below the last one stored;
// a hash per device for owner and watermark, and one for the latest
// non-waveform reading per code. MAXLEN ~ bounds each stream.

const log = createLogger('device-history-redis');

/** Most entries read back for one late joiner's snapshot. */
const SNAPSHOT_SCAN = 20_000;

export class RedisDeviceHistory implements DeviceHistoryStore {
  readonly kind = 'redis' as const;
  readonly #redis: Redis;

  private constructor(
    redis: Redis,
    private readonly limits: HistoryLimits,
  ) {
    this.#redis = redis;
  }

  static async connect(url: string, limits: HistoryLimits = DEFAULT_HISTORY_LIMITS): Promise<RedisDeviceHistory> {
    const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 3, enableOfflineQueue: true });
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis error'));
    await redis.connect();
    return new RedisDeviceHistory(redis, limits);
  }

  async claim(deviceId: string, siteId: string): Promise<string> {
    const meta = metaKey(deviceId);
    await this.#redis.hsetnx(meta, 'owner', siteId);
    return (await this.#redis.hget(meta, 'owner')) ?? siteId;
  }

  async watermark(deviceId: string): Promise<number> {
    return Number((await this.#redis.hget(metaKey(deviceId), 'watermark')) ?? 0);
  }

  async append(deviceId: string, readings: readonly Reading[], through: number): Promise<void> {
    const multi = this.#redis.multi();
    const stream = streamKey(deviceId);
    const latest: string[] = [];
    for (const r of readings) {
      const json = JSON.stringify(r);
      multi.xadd(stream, 'MAXLEN', '~', String(this.limits.maxReadings), `${r.seq}-1`, 'r', json);
      if (r.kind !== 'waveform') latest.push(latestKey(r), json);
    }
    if (latest.length > 0) multi.hset(latestHashKey(deviceId), ...latest);
    multi.hset(metaKey(deviceId), 'watermark', String(through));
    const results = (await multi.exec()) ?? [];
    for (const [err] of results) {
      // An id at or below the stream's top is a reading Redis already has (a retried append): fine.
      if (err && !/equal or smaller/i.test(err.message)) throw err;
    }
  }

  async resetWatermark(deviceId: string, seq: number): Promise<void> {
    await this.#redis.multi().del(streamKey(deviceId), latestHashKey(deviceId)).hset(metaKey(deviceId), 'watermark', String(seq)).exec();
  }

  async range(deviceId: string, after: number, upTo: number, limit: number): Promise<Reading[]> {
    if (upTo <= after) return [];
    const entries = await this.#redis.xrange(streamKey(deviceId), `${after + 1}-0`, `${upTo}-1`, 'COUNT', limit);
    return entries.map(([, fields]) => JSON.parse(fields[1]!) as Reading);
  }

  async recent(deviceId: string, windowMs: number, upTo: number): Promise<Reading[]> {
    const [entries, latest] = await Promise.all([
      this.#redis.xrevrange(streamKey(deviceId), `${upTo}-1`, '-', 'COUNT', SNAPSHOT_SCAN),
      this.#redis.hvals(latestHashKey(deviceId)),
    ]);
    const newestFirst = entries.map(([, fields]) => JSON.parse(fields[1]!) as Reading);
    return snapshotOf(newestFirst, latest.map((json) => JSON.parse(json) as Reading), windowMs, upTo);
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }
}

// The hash tag keeps one device's keys in one cluster slot (MULTI needs it).
const metaKey = (deviceId: string) => `hoichan:device:{${deviceId}}:meta`;
const streamKey = (deviceId: string) => `hoichan:device:{${deviceId}}:readings`;
const latestHashKey = (deviceId: string) => `hoichan:device:{${deviceId}}:latest`;
