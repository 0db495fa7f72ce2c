import { readFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { resolve as resolvePath } from 'node:path';
import { Server as SocketServer } from 'socket.io';
import { AuditLog } from '../audit/AuditLog.js';
import { auditTokenLifecycle } from '../audit/tokens.js';
import { TrustedProxies, trustProxies } from '../common/clientAddress.js';
import { Authenticator, KeyRing, openRevocations } from '../auth/index.js';
import type { HoichanConfig } from '../config/schema.js';
import { createHttpApp } from '../http/app.js';
import { securityHeaders } from '../http/security.js';
import { ConferenceManager } from '../media/ConferenceManager.js';
import { Records } from '../records/index.js';
import { WorkerPool } from '../media/WorkerPool.js';
import { SignalingServer, type DeviceDirectory } from '../signaling/SignalingServer.js';
import { boundedRecoveryAdapter } from '../signaling/recoveryStore.js';
import { startDeviceStreams, type DeviceStreams, type UplinkServer } from '../streams/index.js';
import { HubTelemetry } from '../telemetry/HubTelemetry.js';
import { RecordingManager } from '../recording/RecordingManager.js';
import { createLogger } from '../common/logger.js';
import { HubCluster } from '../cluster/HubCluster.js';
import { clusterLoad, pipeAddress } from '../cluster/hubHooks.js';

const log = createLogger('hub');

/**
 * The hub process: a worker pool, its conferences, and the HTTP and socket.io
 * front doors over them. Hub.start() brings all of it up; close() takes it down
 * in reverse order.
 */
export class Hub {
  /** Device flow from site agents (namespace /uplink) into conferences. */
  streams?: DeviceStreams;
  uplink?: UplinkServer;
  /** The hash-chained audit log (src/audit). */
  audit?: AuditLog;
  /** Consultation records (src/records); absent when records.enabled is false. */
  records?: Records;
  /** Conference recordings (src/recording); its events feed the consultation records. */
  recording?: RecordingManager;
  /** This hub's membership of a cluster (src/cluster); only with redis.url. */
  cluster?: HubCluster;

  private constructor(
    readonly config: HoichanConfig,
    readonly pool: WorkerPool,
    readonly conferences: ConferenceManager,
    readonly httpServer: HttpServer,
    readonly io: SocketServer,
    readonly signaling: SignalingServer,
    private readonly sockets: Set<Socket>,
    readonly telemetry: HubTelemetry,
    /** Token checks for every endpoint; `auth.events` reports refusals, expiries and revocations (for an audit log). */
    readonly auth: Authenticator,
  ) {}

  static async start(config: HoichanConfig, devices?: DeviceDirectory): Promise<Hub> {
    if (config.auth.demo) log.warn('DEMO MODE: the built-in JWT secret is public; never run a hospital hub like this');
    const keys = KeyRing.fromConfig(config.auth);
    const auth = new Authenticator(keys, config.auth, await openRevocations({ file: config.auth.revocationFile, redisUrl: config.redis.url, maxStalenessSeconds: config.auth.revocationMaxStaleness }));
    const pool = await WorkerPool.create(config.media).catch(async (err: unknown) => {
      await auth.close();
      throw err;
    });
    const audit = await AuditLog.open({
      dir: resolvePath(config.audit.dir),
      retentionDays: config.audit.retentionDays,
      hmacKey: config.audit.hmacKey,
      fsyncIntervalMs: config.audit.fsyncIntervalMs,
      maxQueue: config.audit.maxQueue,
      maxPerSourcePerMinute: config.audit.maxPerSourcePerMinute,
      anchorIntervalMs: config.audit.anchorIntervalMinutes * 60_000,
    }).catch(async (err: Error) => {
      pool.close();
      await auth.close();
      throw new Error(`cannot open the audit log in ${config.audit.dir}: ${err.message}`);
    });
    // Sockets cut at expiry or by revocation, refreshes, new revocations (auth.close() drops the listeners).
    auditTokenLifecycle(auth.events, audit);
    const conferences = new ConferenceManager(pool, { ...config.media, ...config.signaling });
    const telemetry = new HubTelemetry({ pool, conferences });
    let records: Records | undefined;
    if (config.records.enabled) {
      records = await Records.open(config.records, {
        conferences,
        network: (peer) => telemetry.peerNetwork(peer),
        sampleIntervalMs: telemetry.statsIntervalMs,
      }).catch(async (err: Error) => {
        telemetry.close();
        pool.close();
        await audit.close();
        await auth.close();
        throw err;
      });
    }
    let listenUrl = '';
    const cluster = config.redis.url
      ? await HubCluster.start({
          redisUrl: config.redis.url,
          config: config.cluster,
          conferences,
          url: () => config.cluster.publicUrl ?? listenUrl,
          fallbackHubId: config.records.hubId,
          pipeAddress: pipeAddress(config),
          load: () => clusterLoad(pool, conferences, telemetry),
        })
      : undefined;
    const tls = config.tls.cert !== null && config.tls.key !== null;
    // One list for HTTP and both socket.io namespaces: per-IP limits and the audit log see the same client address.
    const trustedProxies = new TrustedProxies(config.http.trustedProxies);
    // Needs the device streams (made below) only once a recording starts: set then.
    const recording = new RecordingManager(config.recording, undefined, audit);
    // Recording files go with the consultation records that point at them.
    recording.keepFor(config.records.retentionDays);
    const app = createHttpApp({ pool, conferences, auth, telemetry, tls, audit, rateLimit: config.http, trustedProxies, recording, cluster, ...(records ? { records: records.store } : {}) });
    let httpServer: HttpServer;
    try {
      // https.Server is an http.Server subclass: socket.io, listen and close treat both alike.
      httpServer = tls ? createHttpsServer(readTlsFiles(config.tls.cert!, config.tls.key!), app) : createServer(app);
    } catch (err) {
      telemetry.close();
      await cluster?.close();
      pool.close();
      await records?.close();
      await audit.close();
      await auth.close();
      const message = (err as Error).message;
      throw new Error(message.startsWith('cannot read tls.') ? message : `tls.cert / tls.key are not a usable PEM certificate and key: ${message}`);
    }
    // Upgraded WebSockets are not closed by server.close(); a frozen peer would hold shutdown for 30 s.
    const sockets = new Set<Socket>();
    httpServer.on('connection', (socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    const { pingIntervalMs, pingTimeoutMs, reconnectGraceMs, recoveryMaxEvents, recoveryMaxSessions } = config.signaling;
    const io = new SocketServer(httpServer, {
      pingInterval: pingIntervalMs,
      pingTimeout: pingTimeoutMs,
      maxHttpBufferSize: 1_000_000,
      serveClient: false,
      // A client whose link blips keeps its socket id, rooms and missed signaling events; its device
      // gap comes from the device history, and the store is bounded (src/signaling/recoveryStore.ts).
      connectionStateRecovery: { maxDisconnectionDuration: reconnectGraceMs, skipMiddlewares: false },
      adapter: boundedRecoveryAdapter({
        graceMs: reconnectGraceMs,
        // A dead link is noticed within a ping interval and timeout; 30 s more for what sat in its socket's queue.
        unnoticedMs: pingIntervalMs + pingTimeoutMs + 30_000,
        maxEvents: recoveryMaxEvents,
        maxSessions: recoveryMaxSessions,
      }),
    });
    trustProxies(io, trustedProxies);
    // engine.io answers /socket.io/ itself, before express: give its responses the same headers.
    io.engine.on('headers', (headers: Record<string, string>) => Object.assign(headers, securityHeaders({ tls })));
    const { streams, uplink } = await startDeviceStreams({
      io,
      conferences,
      auth,
      redisUrl: config.redis.url,
      streams: {
        lateAfterMs: config.devices.lateAfterMs,
        degradedLagMs: config.devices.degradedLagMs,
        maxReplayBytes: config.devices.maxReplayBytes,
        maxDevicesPerSite: config.devices.maxDevicesPerSite,
        deviceTtlMs: config.devices.deviceTtlMs,
        historyBytesPerDevice: config.devices.historyBytesPerDevice,
        historyBytesPerSite: config.devices.historyBytesPerSite,
        maxPeerBacklogBytes: config.devices.maxPeerBacklogBytes,
        unstoredBytesPerDevice: config.devices.unstoredBytesPerDevice,
        unstoredBytes: config.devices.unstoredBytes,
      },
      history: { ttlMs: config.devices.historyTtlMs, maxBytes: config.devices.historyBytesPerDevice },
      uplink: {
        readingsPerSecond: config.devices.uplinkReadingsPerSecond,
        burst: config.devices.uplinkBurst,
        bytesPerSecond: config.devices.uplinkBytesPerSecond,
        bytesBurst: config.devices.uplinkBytesBurst,
      },
      audit,
    });
    records?.recorder.watchDevices(streams);
    cluster?.attachDevices(streams);
    const signaling = new SignalingServer(io, conferences, config, devices ?? streams, auth, audit);
    recording.attachDevices(streams);
    records?.recorder.watchRecordings(recording);
    signaling.attachRecording(recording);
    telemetry.watchSignaling(io);
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.http.port, config.http.listenIp, () => {
        httpServer.off('error', reject);
        resolve();
      });
    }).catch(async (err: Error) => {
      telemetry.close();
      await cluster?.close();
      uplink.close();
      await streams.close();
      pool.close();
      await records?.close();
      await audit.close();
      await auth.close();
      throw new Error(`cannot listen on ${config.http.listenIp}:${config.http.port}: ${err.message}`);
    });
    const hub = new Hub(config, pool, conferences, httpServer, io, signaling, sockets, telemetry, auth);
    hub.streams = streams;
    hub.uplink = uplink;
    hub.audit = audit;
    if (records) hub.records = records;
    hub.recording = recording;
    if (cluster) {
      hub.cluster = cluster;
      listenUrl = hub.url;
      await cluster.register();
    }
    // The device stream service (when this hub has one) reports its own numbers to /api/ops.
    telemetry.deviceStats = () => hub.streams?.stats() ?? [];
    log.info({ url: hub.url, workers: pool.size }, 'hub listening');
    return hub;
  }

  get port(): number {
    return (this.httpServer.address() as AddressInfo).port;
  }

  get url(): string {
    const ip = this.config.http.listenIp;
    const host = ip === '0.0.0.0' ? '127.0.0.1' : ip === '::' ? '::1' : ip;
    const scheme = this.config.tls.cert !== null ? 'https' : 'http';
    return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  /**
   * SIGTERM: a cluster hub drains first (its joins go to other hubs, its
   * conferences may end, for at most cluster.drainTimeoutMs), then closes.
   */
  async shutdown(): Promise<void> {
    await this.cluster?.drainUntilEmpty(this.config.cluster.drainTimeoutMs);
    await this.close();
  }

  async close(): Promise<void> {
    // First: the other hubs drop this one now, not at its TTL.
    await this.cluster?.close();
    // Then, while routers live: every track's ffmpeg finalises its file.
    await this.recording?.close();
    this.telemetry.close();
    this.signaling.close();
    this.uplink?.close();
    this.io.disconnectSockets(true);
    this.conferences.close();
    this.pool.close();
    // io.close() also closes the HTTP server, which waits for every open socket: end them now.
    const closed = new Promise<void>((resolve) => this.io.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    await this.streams?.close();
    // After the conferences closed: their sessions' ends are written before the database closes.
    await this.records?.close();
    await this.auth.close();
    // Last: leaves and disconnects above are recorded.
    await this.audit?.close();
    log.info('hub closed');
  }
}

/** PEM certificate chain and key for native HTTPS; an unreadable file is named with its config key. */
function readTlsFiles(certPath: string, keyPath: string): { cert: Buffer; key: Buffer } {
  const read = (key: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`cannot read ${key} ${path} (HOICHAN_${key.replace('.', '_').toUpperCase()}): ${(err as Error).message}`);
    }
  };
  return { cert: read('tls.cert', certPath), key: read('tls.key', keyPath) };
}
