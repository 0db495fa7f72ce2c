import { Cluster, Redis, type RedisOptions } from 'ioredis';

// One place that turns redis.url into ioredis connections, so a cluster runs
// the same on a single Redis, behind Sentinel, or on Redis Cluster
// (docs/SCALING.md, "Managed Redis"):
//   redis://[:password@]host:port[/db]  and  rediss://…        a single Redis (TLS with rediss)
//   redis-sentinel://[:password@]h1:p1,h2:p2/<master name>     Sentinel: ioredis asks them where the master is
//   redis-cluster://[:password@]h1:p1,h2:p2                    Redis Cluster: ioredis follows the slots
// Every cluster key carries the hash tag {hoichan}, so multi-key commands work on Redis Cluster.

export type RedisConnection = Redis | Cluster;

/** Reconnect quickly (at most 1 s apart): a hub must be back in the directory within 10 s of Redis returning. */
const retryStrategy = (times: number): number => Math.min(100 * times, 1000);

/**
 * `failFast`: commands fail at once while Redis is away instead of queueing
 * (heartbeats and publishes must not pile up during an outage; the next
 * heartbeat rewrites everything). Subscriber connections queue instead, so
 * their subscriptions are made when Redis is back.
 */
export function connectRedis(url: string, options: { failFast: boolean; name: string }): RedisConnection {
  const base: RedisOptions = {
    connectionName: `hoichan-${options.name}`,
    retryStrategy,
    enableOfflineQueue: !options.failFast,
    maxRetriesPerRequest: options.failFast ? 0 : null,
    connectTimeout: 2000,
  };
  const parsed = new URL(url);
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  const hosts = (): Array<{ host: string; port: number }> =>
    parsed.host.length === 0
      ? []
      : url
          .slice(url.indexOf('//') + 2)
          .replace(/^[^@]*@/, '')
          .split('/')[0]!
          .split(',')
          .map((h) => {
            const at = h.lastIndexOf(':');
            return { host: at > 0 ? h.slice(0, at) : h, port: at > 0 ? Number(h.slice(at + 1)) : 26379 };
          });
  switch (parsed.protocol) {
    case 'redis:':
    case 'rediss:':
      return new Redis(url, base);
    case 'redis-sentinel:': {
      const name = parsed.pathname.replace(/^\//, '');
      if (!name) throw new Error(`redis.url ${parsed.protocol}//…: name the master after the hosts (redis-sentinel://h1:26379,h2:26379/mymaster)`);
      return new Redis({ ...base, sentinels: hosts(), name, ...(password ? { password, sentinelPassword: password } : {}) });
    }
    case 'redis-cluster:':
      return new Cluster(hosts(), { clusterRetryStrategy: retryStrategy, enableOfflineQueue: base.enableOfflineQueue!, redisOptions: { ...base, ...(password ? { password } : {}) } });
    default:
      throw new Error(`redis.url: unsupported scheme ${parsed.protocol} (redis:, rediss:, redis-sentinel:, redis-cluster:)`);
  }
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
