import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';

// One place that turns redis.url into an ioredis connection, for every room
// that uses Redis (device history, revocations, the cluster), so a hub runs
// the same on a single Redis, behind Sentinel or on a Redis Cluster
// (docs/SCALING.md, "Managed Redis, Sentinel, Redis Cluster"):
//   redis://[:password@]host:port[/db]  and  rediss://…        a single Redis, or a managed
//                                                              endpoint that fails over itself (TLS with rediss)
//   redis-sentinel://[:password@]h1:26379/<master>?sentinels=h2:26379,h3:26379
//                                                              Sentinel: ioredis asks the sentinels where the
//                                                              master is, and again after a failover
//   redis-cluster://[:password@]h1:6379?nodes=h2:6379,h3:6379  and  rediss-cluster://…
//                                                              Redis Cluster: the listed nodes are only where
//                                                              ioredis starts; it learns the slot map from them
//
// On a Redis Cluster every multi-key command and script must keep to one hash
// slot: the device history tags its keys {<deviceId>}, the cluster directory
// {hoichan}, and revocations read their two keys with single-key commands.

/** A connection to a single Redis (direct or found through Sentinel) or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

export function createRedis(url: string, options: RedisOptions = {}): RedisClient {
  const parsed = new URL(url);
  const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
  switch (parsed.protocol) {
    case 'redis:':
    case 'rediss:':
      return new Redis(url, options);
    case 'redis-sentinel:': {
      const name = parsed.pathname.replace(/^\//, '');
      if (!name) throw new Error('redis.url: name the Sentinel master as the path (redis-sentinel://h1:26379/mymaster?sentinels=h2:26379)');
      const hosts = [parsed.host, ...list(parsed, 'sentinels')].map((h) => hostPort(h, 26379));
      return new Redis({ ...options, sentinels: hosts, name, ...(password ? { password, sentinelPassword: password } : {}) });
    }
    case 'redis-cluster:':
    case 'rediss-cluster:': {
      if (parsed.pathname !== '' && parsed.pathname !== '/') throw new Error('redis.url: a Redis Cluster has no database number or path (redis-cluster://h1:6379?nodes=h2:6379,h3:6379)');
      const nodes = [parsed.host, ...list(parsed, 'nodes')].map((h) => hostPort(h, 6379));
      return new Cluster(nodes, clusterOptions(options, parsed.protocol === 'rediss-cluster:', password));
    }
    default:
      throw new Error(`redis.url: unsupported scheme ${parsed.protocol} (redis:, rediss:, redis-sentinel:, redis-cluster: or rediss-cluster:)`);
  }
}

/**
 * The same wishes for a Cluster: reconnecting, the offline queue and lazy
 * connect belong to the cluster as a whole, the rest to each node's
 * connection.
 */
function clusterOptions(options: RedisOptions, tls: boolean, password: string | undefined): ClusterOptions {
  const { retryStrategy, enableOfflineQueue, lazyConnect, host: _host, port: _port, path: _path, sentinels: _sentinels, readOnly: _readOnly, ...node } = options;
  return {
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) } : {}),
    ...(enableOfflineQueue !== undefined ? { enableOfflineQueue } : {}),
    ...(lazyConnect !== undefined ? { lazyConnect } : {}),
    redisOptions: { ...node, ...(password ? { password } : {}), ...(tls ? { tls: {} } : {}) },
  };
}

function list(parsed: URL, name: string): string[] {
  return (parsed.searchParams.get(name) ?? '').split(',').filter(Boolean);
}

function hostPort(text: string, defaultPort: number): { host: string; port: number } {
  const at = text.lastIndexOf(':');
  // An IPv6 literal comes bracketed ([::1]:6379); its own colons are inside the brackets.
  if (at <= 0 || text.endsWith(']')) return { host: text.replace(/^\[|\]$/g, ''), port: defaultPort };
  const port = Number(text.slice(at + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`redis.url: ${text} has no valid port`);
  return { host: text.slice(0, at).replace(/^\[|\]$/g, ''), port };
}
