import { z } from 'zod';
import { authConfigSchema, checkAuth } from '../auth/config.js';
import { checkRecords, recordsConfigSchema } from '../records/config.js';
import { TrustedProxies } from '../common/clientAddress.js';
import { checkCluster, clusterConfigSchema } from '../cluster/config.js';

const port = z.number().int().min(1).max(65535);

export { DEMO_JWT_SECRET } from '../auth/config.js';

export const configSchema = z
  .object({
    http: z.object({
      listenIp: z.string().ip(),
      /** 0 picks a free port (tests). */
      port: z.number().int().min(0).max(65535),
      /** Per client IP, on /api and /metrics: requests per second and burst; past it, 429 rate_limited. */
      requestsPerSecond: z.number().positive(),
      requestBurst: z.number().int().positive(),
      /**
       * Reverse proxies (IPs, CIDRs) whose X-Forwarded-For names the client, for the
       * per-IP limits and the audit log; empty: the TCP peer is the client.
       */
      trustedProxies: z
        .array(z.string())
        .max(64)
        .superRefine((list, ctx) => {
          for (const [i, entry] of list.entries()) {
            try {
              new TrustedProxies([entry]);
            } catch (err) {
              ctx.addIssue({ code: 'custom', path: [i], message: (err as Error).message });
            }
          }
        }),
    }),
    /** Native HTTPS/WSS: PEM file paths, both or neither (docs/SECURITY.md, "Transport security"). */
    tls: z.object({
      cert: z.string().min(1).nullable(),
      key: z.string().min(1).nullable(),
    }),
    media: z.object({
      /** 0 means one worker per CPU core. */
      numWorkers: z.number().int().min(0).max(64),
      listenIp: z.string().ip(),
      /** Public address put in ICE candidates when listenIp is 0.0.0.0 or behind NAT. */
      announcedIp: z.string().min(1).nullable(),
      /** Worker i listens on webRtcServerPort + i, UDP and TCP: a few fixed firewall ports. */
      webRtcServerPort: port,
      /** Range split into disjoint slices per worker: the listen portRange of its plain (ingest) transports. */
      rtcMinPort: port,
      rtcMaxPort: port,
      workerLogLevel: z.enum(['debug', 'warn', 'error', 'none']),
      /** Workers send with io_uring where the kernel allows (Linux 6+); false forces libuv's sendmsg path. */
      ioUring: z.boolean(),
      maxIncomingBitrate: z.number().int().positive(),
      initialAvailableOutgoingBitrate: z.number().int().positive(),
      /**
       * Fit each viewer's video to its downlink (docs/LINKS.md): lower layers,
       * then thumbnails, then the stage paused, audio untouched. false: every
       * viewer gets the layers it asks for, as before (bench:links compares).
       */
      bandwidthPolicy: z.boolean(),
      /**
       * Close a WebRTC transport this long after ICE disconnects. ICE consent
       * (RFC 7675) gets the rest of 30 s: a silent peer is closed within 30 s.
       * At most 20 s, since mediasoup's consent timeout is at least 10 s.
       */
      iceDisconnectedTimeoutMs: z.number().int().min(1000).max(20_000),
      /** An RTP ingest (ultrasound, device video) that receives nothing for this long is closed. */
      ingestIdleTimeoutMs: z.number().int().min(1000),
      /** Conferences this hub holds at once; one more join or ingest answers limit_exceeded. */
      maxConferences: z.number().int().min(1),
      /** Peers (people and ingests) in one conference. */
      maxPeersPerConference: z.number().int().min(2),
      /**
       * A conference router with this many consumers is full: newcomers go to
       * a router of the conference on another worker (docs/SCALING.md). The
       * default is below one worker's measured capacity (docs/PERFORMANCE.md).
       */
      maxConsumersPerRouter: z.number().int().min(1).max(100_000),
      /**
       * A conference router other than its only one, left with no peer, no
       * ingest and no producer, closes after this long (docs/SCALING.md);
       * a newcomer within it is placed there again rather than on a new one.
       */
      idleRouterCloseMs: z.number().int().min(0).max(600_000),
      /** Hub policy: an ingest must use SRTP; a request for plain RTP answers 400. */
      ingestRequireSrtp: z.boolean(),
      maxIngestsPerConference: z.number().int().min(1),
      /** Ingests one token subject holds across all conferences. */
      maxIngestsPerUser: z.number().int().min(1),
    }),
    auth: authConfigSchema,
    signaling: z.object({
      pingIntervalMs: z.number().int().min(1000),
      pingTimeoutMs: z.number().int().min(1000),
      /** How long a dropped socket's peer is kept so a reconnecting client gets it back. */
      reconnectGraceMs: z.number().int().min(0),
      /**
       * Signaling events (not device events) kept for sockets that may recover within reconnectGraceMs,
       * all peers together; past it the oldest go, and a socket that missed one joins again instead.
       */
      recoveryMaxEvents: z.number().int().min(100).max(1_000_000),
      /** Dropped sockets whose session (rooms, peer) is kept for recovery; the oldest go first. */
      recoveryMaxSessions: z.number().int().min(10).max(1_000_000),
      /** Token buckets: per socket, per token subject (all its sockets) and per client IP (all of theirs). Every event counts, known or not. */
      requestsPerSecond: z.number().positive(),
      requestBurst: z.number().int().positive(),
      userRequestsPerSecond: z.number().positive(),
      userRequestBurst: z.number().int().positive(),
      ipRequestsPerSecond: z.number().positive(),
      ipRequestBurst: z.number().int().positive(),
      /** Concurrent sockets per token subject and per client IP (loopback included); past them the handshake fails with too_many_connections. */
      maxConnectionsPerUser: z.number().int().min(1),
      maxConnectionsPerIp: z.number().int().min(1),
      maxTransportsPerPeer: z.number().int().min(2),
      maxProducersPerPeer: z.number().int().min(1),
      /** Consumers one peer holds (one per producer at most). */
      maxConsumersPerPeer: z.number().int().min(1),
    }),
    devices: z.object({
      /** A reading reaching the hub this long after its agent received it is marked late (backfill). */
      lateAfterMs: z.number().int().min(100),
      /** Uplink lag above which an online device is shown degraded; cleared below half of it. */
      degradedLagMs: z.number().int().min(1000),
      /** Per site (all its connections): readings (plus one per message) per second the hub takes; past it, rate_limited. */
      uplinkReadingsPerSecond: z.number().positive(),
      /** Burst of the same; at least one full batch (1000 readings + 1). */
      uplinkBurst: z.number().int().min(1001),
      /** Per site: estimated bytes of readings per second (8 a sample + 160 a reading); past it, rate_limited. */
      uplinkBytesPerSecond: z.number().int().min(1024),
      /** Burst of the same; a full 1 MB frame of one-digit samples estimates at ~4 MiB, so at least 5 MB. */
      uplinkBytesBurst: z.number().int().min(5_000_000),
      /** Most devices one site may have announced; the next is refused with limit_exceeded. */
      maxDevicesPerSite: z.number().int().min(1).max(10_000),
      /** A device whose site connection has been gone this long is forgotten (no longer listed on join). */
      deviceTtlMs: z.number().int().min(100),
      /** A device's history, latest values and watermark are forgotten this long after its last write (memory and Redis). */
      historyTtlMs: z.number().int().min(100),
      /** History kept per device session, estimated bytes (oldest readings go first). */
      historyBytesPerDevice: z.number().int().min(65_536),
      /** History kept for all of one site's devices, shared evenly between them. */
      historyBytesPerSite: z.number().int().min(65_536),
      /** Estimated bytes of history one peer's join replay carries, all devices together (oldest waveforms dropped first). */
      maxReplayBytes: z.number().int().min(65_536),
      /** A peer with more than this queued on its socket gets no waveforms until it drains (announced as slow-reader gaps). */
      maxPeerBacklogBytes: z.number().int().min(65_536),
      /** While the device history (Redis) is unreachable: estimated bytes of delivered, not yet stored readings kept per device. */
      unstoredBytesPerDevice: z.number().int().min(65_536),
      /** The same for all devices of the hub together. */
      unstoredBytes: z.number().int().min(65_536),
    }),
    redis: z.object({
      url: z.string().url().nullable(),
    }),
    /** Several hubs sharing conferences over Redis (src/cluster, docs/SCALING.md); used only with redis.url. */
    cluster: clusterConfigSchema,
    /** The hash-chained audit log (docs/SECURITY.md, "Audit log"). */
    audit: z.object({
      /** Directory of the day files, created 0700; relative paths are from the hub's working directory. */
      dir: z.string().min(1),
      /** Day files older than this are deleted. */
      retentionDays: z.number().int().min(1).max(36500),
      /** Optional HMAC key: the chain cannot be recomputed without it. Keep it off the hub's disk (HOICHAN_AUDIT_HMAC_KEY). */
      hmacKey: z.string().min(32, 'must be at least 32 characters').nullable(),
      fsyncIntervalMs: z.number().int().min(10).max(60_000),
      /** Records waiting for a stalled disk beyond which new ones are dropped and counted (hoichan_audit_dropped_total). */
      maxQueue: z.number().int().min(100).max(1_000_000),
      /** Records per minute of one source (type, user, address) written one by one; the rest become one audit.suppressed count. */
      maxPerSourcePerMinute: z.number().int().min(10).max(100_000),
      /** How often the head (seq, hash) is logged for anchoring elsewhere; 0 = never. */
      anchorIntervalMinutes: z.number().int().min(0).max(10_080),
    }),
    /** Consultation records (docs/RECORDS.md). */
    records: recordsConfigSchema,
    /** Conference recording (docs/RECORDING.md): one file per track, without transcoding. */
    recording: z.object({
      /** Directory of the recordings, one 0700 folder per recording; relative paths are from the hub's working directory. */
      dir: z.string().min(1),
      /** The ffmpeg binary that writes the tracks. */
      ffmpegPath: z.string().min(1),
      /** ffprobe checks each finished file (its state in the sidecar). */
      ffprobePath: z.string().min(1),
      /** A recording stops by itself after this long (the files are finalised). */
      maxDurationMinutes: z.number().min(0.05).max(24 * 60),
      /** Refuse to start, and stop a running recording, when the recording dir's file system has less than this free. */
      minFreeDiskMB: z.number().int().min(1),
      /** Tracks (ffmpeg processes) one recording runs at once; producers past it are not recorded (logged). */
      maxTracksPerRecording: z.number().int().min(1).max(256),
      /** Recordings running on this hub at once (one per conference in any case). */
      maxConcurrentRecordings: z.number().int().min(1).max(1000),
    }),
  })
  .strict()
  .superRefine((config, ctx) => {
    if (config.media.rtcMinPort >= config.media.rtcMaxPort) {
      ctx.addIssue({ code: 'custom', path: ['media', 'rtcMaxPort'], message: 'must be greater than media.rtcMinPort' });
    }
    if ((config.tls.cert === null) !== (config.tls.key === null)) {
      ctx.addIssue({
        code: 'custom',
        path: ['tls', config.tls.cert === null ? 'cert' : 'key'],
        message: 'tls.cert and tls.key go together: set both (HOICHAN_TLS_CERT, HOICHAN_TLS_KEY) or neither',
      });
    }
    checkAuth(config.auth, ctx);
    checkRecords(config.records, ctx);
    checkCluster(config.cluster, ctx);
    if (config.devices.degradedLagMs < config.devices.lateAfterMs) {
      ctx.addIssue({ code: 'custom', path: ['devices', 'degradedLagMs'], message: 'must be at least devices.lateAfterMs' });
    }
    const { pingIntervalMs, pingTimeoutMs } = config.signaling;
    if (pingIntervalMs + pingTimeoutMs + config.signaling.reconnectGraceMs > 30_000) {
      ctx.addIssue({
        code: 'custom',
        path: ['signaling', 'reconnectGraceMs'],
        message: 'pingIntervalMs + pingTimeoutMs + reconnectGraceMs must stay within 30000 so vanished peers are cleaned up in 30 s',
      });
    }
  });

export type HoichanConfig = z.infer<typeof configSchema>;
