import { z } from 'zod';

// The cluster section of the hub's configuration (docs/SCALING.md). It only
// matters when redis.url is set: without Redis a hub runs alone.

const name = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . or -');

export const clusterConfigSchema = z
  .object({
    /** This hub's id in the directory; null: a fresh random id at each start (a restarted hub is a new hub). */
    hubId: name.nullable(),
    /** The region this hub serves (`hoichan hub --region R`); redirects stay within it. */
    region: name,
    /** The URL browsers and agents use to reach this hub; null: the hub's own listen URL. */
    publicUrl: z.string().url().nullable(),
    /** The address other hubs send piped media to; null: media.announcedIp, else media.listenIp. */
    mediaAddress: z.string().min(1).nullable(),
    /** How often this hub renews its directory entry. */
    heartbeatMs: z.number().int().min(200).max(5000),
    /** A hub that has not renewed its entry for this long is gone (heartbeatMs x 2 at least; with the poll, gone within ttlMs + heartbeatMs). */
    ttlMs: z.number().int().min(500).max(8000),
    /** SRTP on the pipe transports between hubs. */
    pipeSrtp: z.boolean(),
    /** A cross-hub request (pipe set-up) unanswered for this long fails with `unavailable`. */
    requestTimeoutMs: z.number().int().min(100).max(60_000),
    /** Past this load (consumers on this hub), `join` answers a redirect to the least-loaded hub of the region; null: never. */
    maxLoad: z.number().int().min(1).nullable(),
    /** On SIGTERM a cluster hub drains (no new joins) and waits this long at most for its conferences to end before it closes. */
    drainTimeoutMs: z.number().int().min(0).max(24 * 3600_000),
    /** Largest cluster bus message, bytes; a bigger one is not sent (and not parsed when received). */
    maxMessageBytes: z.number().int().min(65_536).max(16 * 1024 * 1024),
  })
  .strict();

export type ClusterConfig = z.infer<typeof clusterConfigSchema>;

/** The cross-field rule: a hub must be able to miss one heartbeat without being declared gone. */
export function checkCluster(config: ClusterConfig, ctx: z.RefinementCtx): void {
  if (config.ttlMs < config.heartbeatMs * 2) {
    ctx.addIssue({ code: 'custom', path: ['cluster', 'ttlMs'], message: 'must be at least twice cluster.heartbeatMs' });
  }
  if (config.ttlMs + config.heartbeatMs > 10_000) {
    ctx.addIssue({ code: 'custom', path: ['cluster', 'ttlMs'], message: 'ttlMs + heartbeatMs must stay within 10000 so a dead hub leaves the directory within 10 s' });
  }
}
