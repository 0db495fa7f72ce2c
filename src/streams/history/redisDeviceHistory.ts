import type { Result } from 'ioredis';
import { createRedis, type RedisClient } from '../../common/redis.js';
import type { Reading } from '../../devices/reading.js';
import { createLogger } from '../../common/logger.js';
import {
  DEFAULT_HISTORY_LIMITS,
  MAX_LATEST_KEYS,
  collect,
  latestKey,
  readingBytes,
  type DeviceHistoryStore,
  type DeviceRecord,
  type DeviceSession,
  type HistoryEntry,
  type HistoryLimits,
} from './deviceHistory.js';

// Redis Streams history: per device session one stream whose entry ids are
// `<seq>-1`, so Redis itself refuses a seq at or below the last one stored,
// and one hash for the latest non-waveform reading per code; per device a
// hash for owner, watermark, current session and the session's byte count.
// Every key is given the history TTL again on each write, so a device that
// stops writing leaves nothing behind after devices.historyTtlMs. Appends and
// their count/byte trimming run as one Lua script: atomic, and nothing of a
// session that has ended can be written back into Redis.
// On a Redis Cluster one device's keys share the hash tag {<deviceId>}, so the
// script and each MULTI touch one slot; different devices spread over the nodes.

const log = createLogger('device-history-redis');

/** Entries per XREVRANGE page when a snapshot or resume walks a stream newest first. */
const PAGE = 16;

// KEYS: meta, stream, latest. ARGV: sessionId, through, maxReadings, maxBytes, ttlMs, maxLatest,
// session conference, session start seq, then per reading: id, json, latest key ('' for a waveform), estimated bytes, t, kind.
const APPEND = `
local meta, stream, latest = KEYS[1], KEYS[2], KEYS[3]
local ttl = ARGV[5]
local wm = tonumber(redis.call('HGET', meta, 'watermark') or '0')
if tonumber(ARGV[2]) > wm then redis.call('HSET', meta, 'watermark', ARGV[2]) end
redis.call('PEXPIRE', meta, ttl)
local current = redis.call('HGET', meta, 'session')
if not current then
  -- Expired while the device was idle: the caller's session is the device's current one.
  redis.call('HSET', meta, 'session', ARGV[1], 'sessionConference', ARGV[7], 'sessionStart', ARGV[8], 'bytes', '0')
elseif current ~= ARGV[1] then
  return 0
end
local bytes = tonumber(redis.call('HGET', meta, 'bytes') or '0')
local maxLatest = tonumber(ARGV[6])
for i = 9, #ARGV, 6 do
  -- An id at or below the stream's top is a reading Redis already has (a retried append): skipped.
  local added = redis.pcall('XADD', stream, ARGV[i], 's', ARGV[i+3], 't', ARGV[i+4], 'k', ARGV[i+5], 'r', ARGV[i+1])
  if type(added) == 'string' then
    bytes = bytes + tonumber(ARGV[i+3])
    local key = ARGV[i+2]
    if key ~= '' and (redis.call('HEXISTS', latest, key) == 1 or redis.call('HLEN', latest) < maxLatest) then
      redis.call('HSET', latest, key, ARGV[i+1])
    end
  end
end
local maxReadings, maxBytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local len = redis.call('XLEN', stream)
while len > 0 and (len > maxReadings or bytes > maxBytes) do
  local ids = {}
  for _, e in ipairs(redis.call('XRANGE', stream, '-', '+', 'COUNT', 64)) do
    if len <= maxReadings and bytes <= maxBytes then break end
    bytes = bytes - tonumber(e[2][2])
    len = len - 1
    ids[#ids + 1] = e[1]
  end
  if #ids == 0 then break end
  redis.call('XDEL', stream, unpack(ids))
end
redis.call('HSET', meta, 'bytes', tostring(bytes))
redis.call('PEXPIRE', stream, ttl)
redis.call('PEXPIRE', latest, ttl)
return 1
`;

// The Lua command defineCommand adds at run time, declared for the compiler.
declare module 'ioredis' {
  interface RedisCommander<Context> {
    hoichanAppend(meta: string, stream: string, latest: string, ...args: string[]): Result<number, Context>;
  }
}

export class RedisDeviceHistory implements DeviceHistoryStore {
  readonly kind = 'redis' as const;
  readonly #redis: RedisClient;
  readonly #limits: HistoryLimits;

  private constructor(redis: RedisClient, limits: HistoryLimits) {
    this.#redis = redis;
    this.#limits = limits;
    redis.defineCommand('hoichanAppend', { numberOfKeys: 3, lua: APPEND });
  }

  get reachable(): boolean {
    return this.#redis.status === 'ready';
  }

  static async connect(url: string, limits: Partial<HistoryLimits> = {}): Promise<RedisDeviceHistory> {
    const redis = createRedis(url, { lazyConnect: true, maxRetriesPerRequest: 3, enableOfflineQueue: true });
    redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis error'));
    await redis.connect();
    return new RedisDeviceHistory(redis, { ...DEFAULT_HISTORY_LIMITS, ...limits });
  }

  async claim(deviceId: string, siteId: string): Promise<string> {
    const meta = metaKey(deviceId);
    const results = (await this.#redis.multi().hsetnx(meta, 'owner', siteId).pexpire(meta, this.#limits.ttlMs).hget(meta, 'owner').exec()) ?? [];
    return (results[2]?.[1] as string | null) ?? siteId;
  }

  async watermark(deviceId: string): Promise<number> {
    return Number((await this.#redis.hget(metaKey(deviceId), 'watermark')) ?? 0);
  }

  async record(deviceId: string): Promise<DeviceRecord> {
    const [watermark, id, conferenceId, startSeq] = await this.#redis.hmget(metaKey(deviceId), 'watermark', 'session', 'sessionConference', 'sessionStart');
    const session = id && conferenceId && startSeq ? { id, conferenceId, startSeq: Number(startSeq) } : undefined;
    return { watermark: Number(watermark ?? 0), ...(session ? { session } : {}) };
  }

  async startSession(deviceId: string, session: DeviceSession): Promise<void> {
    const meta = metaKey(deviceId);
    const previous = await this.#redis.hget(meta, 'session');
    const multi = this.#redis.multi();
    if (previous) multi.del(streamKey(deviceId, previous), latestHashKey(deviceId, previous));
    multi.hset(meta, 'session', session.id, 'sessionConference', session.conferenceId, 'sessionStart', String(session.startSeq), 'bytes', '0');
    multi.pexpire(meta, this.#limits.ttlMs);
    await multi.exec();
  }

  async append(deviceId: string, session: DeviceSession, readings: readonly Reading[], through: number, maxBytes = this.#limits.maxBytes): Promise<void> {
    const limits = [String(this.#limits.maxReadings), String(Math.min(maxBytes, this.#limits.maxBytes)), String(this.#limits.ttlMs), String(MAX_LATEST_KEYS)];
    const args: string[] = [session.id, String(through), ...limits, session.conferenceId, String(session.startSeq)];
    for (const r of readings) args.push(`${r.seq}-1`, JSON.stringify(r), r.kind === 'waveform' ? '' : latestKey(r), String(readingBytes(r)), String(r.t), r.kind);
    await this.#redis.hoichanAppend(metaKey(deviceId), streamKey(deviceId, session.id), latestHashKey(deviceId, session.id), ...args);
  }

  async resetWatermark(deviceId: string, seq: number): Promise<void> {
    const meta = metaKey(deviceId);
    const session = await this.#redis.hget(meta, 'session');
    const multi = this.#redis.multi();
    if (session) multi.del(streamKey(deviceId, session), latestHashKey(deviceId, session));
    await multi.hset(meta, 'watermark', String(seq), 'bytes', '0').pexpire(meta, this.#limits.ttlMs).exec();
  }

  async range(deviceId: string, sessionId: string, after: number, upTo: number, limit: number, maxBytes: number): Promise<Reading[]> {
    if (upTo <= after) return [];
    const latest = await this.#redis.hvals(latestHashKey(deviceId, sessionId));
    return collect(this.#newestFirst(streamKey(deviceId, sessionId), after, upTo), latest.map((json) => JSON.parse(json) as Reading), { after, upTo, limit, maxBytes });
  }

  async recent(deviceId: string, sessionId: string, windowMs: number, upTo: number, maxBytes: number): Promise<Reading[]> {
    const latest = await this.#redis.hvals(latestHashKey(deviceId, sessionId));
    return collect(this.#newestFirst(streamKey(deviceId, sessionId), 0, upTo), latest.map((json) => JSON.parse(json) as Reading), {
      after: 0,
      upTo,
      windowMs,
      limit: this.#limits.maxReadings,
      maxBytes,
    });
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  /** Pages of entries, newest first, only as many as the collector asks for. */
  async *#newestFirst(stream: string, after: number, upTo: number): AsyncGenerator<HistoryEntry> {
    let end = `${upTo}-1`;
    for (;;) {
      const page = await this.#redis.xrevrange(stream, end, `${after + 1}-0`, 'COUNT', PAGE);
      for (const [id, fields] of page) {
        const value = new Map<string, string>();
        for (let i = 0; i + 1 < fields.length; i += 2) value.set(fields[i]!, fields[i + 1]!);
        yield {
          seq: Number.parseInt(id, 10),
          t: Number(value.get('t')),
          kind: value.get('k') as Reading['kind'],
          bytes: Number(value.get('s')),
          read: () => JSON.parse(value.get('r')!) as Reading,
        };
      }
      if (page.length < PAGE) return;
      end = `(${page[page.length - 1]![0]}`;
    }
  }
}

// The hash tag keeps one device's keys in one cluster slot (MULTI and the script need it).
const metaKey = (deviceId: string) => `hoichan:device:{${deviceId}}:meta`;
const streamKey = (deviceId: string, sessionId: string) => `hoichan:device:{${deviceId}}:session:${sessionId}:readings`;
const latestHashKey = (deviceId: string, sessionId: string) => `hoichan:device:{${deviceId}}:session:${sessionId}:latest`;
