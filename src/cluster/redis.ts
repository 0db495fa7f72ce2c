import { createRedis, type RedisClient } from '../common/redis.js';

// The cluster's Redis connections (redis.url: redis://, rediss://,
// redis-sentinel:// or redis-cluster://, src/common/redis.ts). Every cluster
// key carries the hash tag {hoichan}, so the multi-key commands (a heartbeat's
// MULTI, the directory's MGET) stay in one slot of a Redis Cluster. The
// directory is a few kilobytes renewed every heartbeat: one slot holds it
// easily, and the heavy keys (device histories) spread by device.
//
// The bus is plain pub/sub, on a Redis Cluster too: a PUBLISH on any node
// reaches subscribers on every node, so one subscriber connection per hub
// hears every channel and ioredis moves it (and its subscriptions) to another
// node when its node fails. Sharded pub/sub would keep each message on one
// shard, but every bus channel is tagged {hoichan}, i.e. one shard anyway, and
// the bus carries signaling and device batches (kilobytes a second), not media.

export type RedisConnection = RedisClient;

/** Reconnect quickly (at most 1 s apart): a hub must be back in the directory within 10 s of Redis returning. */
const retryStrategy = (times: number): number => Math.min(100 * times, 1000);

/**
 * `failFast`: commands fail at once while Redis is away instead of queueing
 * (heartbeats and publishes must not pile up during an outage; the next
 * heartbeat rewrites everything). Subscriber connections queue instead, so
 * their subscriptions are made when Redis is back.
 */
export function connectRedis(url: string, options: { failFast: boolean; name: string }): RedisConnection {
  return createRedis(url, {
    connectionName: `hoichan-${options.name}`,
    retryStrategy,
    enableOfflineQueue: !options.failFast,
    maxRetriesPerRequest: options.failFast ? 0 : null,
    connectTimeout: 2000,
  });
}

/** Key names; the {hoichan} hash tag keeps them in one Redis Cluster slot. */
export const keys = {
  hubs: '{hoichan}:hubs',
  hub: (hubId: string) => `{hoichan}:hub:${hubId}`,
  conferenceHubs: (conferenceId: string) => `{hoichan}:conf:${conferenceId}:hubs`,
  conferenceState: (conferenceId: string, hubId: string) => `{hoichan}:conf:${conferenceId}:hub:${hubId}`,
  conferenceDevices: (conferenceId: string) => `{hoichan}:devices:${conferenceId}`,
  busConference: (conferenceId: string) => `{hoichan}:bus:conf:${conferenceId}`,
  busHub: (hubId: string) => `{hoichan}:bus:hub:${hubId}`,
  busCluster: '{hoichan}:bus:cluster',
};
