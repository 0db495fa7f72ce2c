import { Redis, type RedisOptions } from 'ioredis';

// One place that turns redis.url into an ioredis connection, for every room
// that uses Redis (device history, revocations, the cluster), so a hub runs
// the same on a single Redis or behind Sentinel (docs/SCALING.md, "Managed Redis"):
//   redis://[:password@]host:port[/db]  and  rediss://…        a single Redis, or a managed
//                                                              endpoint that fails over itself (TLS with rediss)
//   redis-sentinel://[:password@]h1:26379/<master>?sentinels=h2:26379,h3:26379
//                                                              Sentinel: ioredis asks the sentinels where the
//                                                              master is, and again after a failover

export function createRedis(url: string, options: RedisOptions = {}): Redis {
  const parsed = new URL(url);
  switch (parsed.protocol) {
    case 'redis:':
    case 'rediss:':
      return new Redis(url, options);
    case 'redis-sentinel:': {
      const name = parsed.pathname.replace(/^\//, '');
      if (!name) throw new Error('redis.url: name the Sentinel master as the path (redis-sentinel://h1:26379/mymaster?sentinels=h2:26379)');
      const password = parsed.password ? decodeURIComponent(parsed.password) : undefined;
      const more = (parsed.searchParams.get('sentinels') ?? '').split(',').filter(Boolean);
      const hosts = [parsed.host, ...more].map((h) => {
        const at = h.lastIndexOf(':');
        return { host: at > 0 ? h.slice(0, at) : h, port: at > 0 ? Number(h.slice(at + 1)) : 26379 };
      });
      return new Redis({ ...options, sentinels: hosts, name, ...(password ? { password, sentinelPassword: password } : {}) });
    }
    default:
      throw new Error(`redis.url: unsupported scheme ${parsed.protocol} (redis:, rediss: or redis-sentinel:)`);
  }
}
