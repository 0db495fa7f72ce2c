import type { Redis } from 'ioredis';
import { createRedis } from '../common/redis.js';

// The cluster's Redis connections (redis.url: redis://, rediss:// or
// redis-sentinel://, src/common/redis.ts). Every cluster key carries the hash
// tag {hoichan}, so the multi-key commands stay in one slot.

export type RedisConnection = Redis;

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
