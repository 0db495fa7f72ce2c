import os from 'node:os';
import path from 'node:path';
import {
  AttributeIds,
  ClientMonitoredItem,
  DataChangeFilter,
  DataChangeTrigger,
  DeadbandType,
  MessageSecurityMode,
  OPCUAClient,
  SecurityPolicy,
  TimestampsToReturn,
  UserTokenType,
  type ClientSession,
  type ClientSubscription,
  type DataValue,
  type UserIdentityInfo,
} from 'node-opcua-client';
// The client package and the certificate manager alone: the umbrella
// 'node-opcua' package would load the OPC UA server too (twice the modules)
// into every site agent that talks to a gateway.
import { OPCUACertificateManager } from 'node-opcua-certificate-manager';
import { Backoff } from '../../common/backoff.js';
import { createLogger, type Logger } from '../../common/logger.js';
import { DeviceDriver, type DeviceReadingBody, type ReadingSink } from '../driver.js';
import { opcuaDeviceConfigSchema, type OpcuaDeviceConfig, type OpcuaDeviceConfigInput, type OpcuaMapping } from './config.js';
import { convertDataValue, valueIdentity } from './convert.js';

// Lifecycle: one OPCUAClient -> one session -> one subscription -> one monitored
// item per mapped nodeId. node-opcua's own reconnection (connectionStrategy with
// infinite retries) reopens the channel and, when the server restarted and forgot
// the session, recreates session, subscription and monitored items itself. A
// watchdog covers whatever that misses: if a "connected" subscription brings
// neither data nor keepalives, the driver throws the client away and starts over.

const KEEPALIVE_TARGET_MS = 2_000;
const MIN_STALL_MS = 5_000;
const WATCHDOG_TICK_MS = 1_000;
const FIRST_RESET_DELAY_MS = 500;
const CLOSE_TIMEOUT_MS = 3_000;
const ITEM_CREATION_TIMEOUT_MS = 10_000;
const MAX_REASONS_SHOWN = 3;

export function defaultOpcuaPkiDir(): string {
  return path.join(os.homedir(), '.hoichan', 'pki', 'opcua');
}

interface Connection {
  client: OPCUAClient;
  certificates: OPCUACertificateManager;
  session?: ClientSession;
  subscription?: ClientSubscription;
}

export class OpcuaDriver extends DeviceDriver {
  readonly deviceIds: readonly string[];
  readonly #deviceId: string;
  readonly #settings: OpcuaDeviceConfig;
  readonly #log: Logger;

  #stopped = true;
  /** Bumped on every new connection and on stop; callbacks of older ones are ignored. */
  #generation = 0;
  #connection?: Connection;
  #subscribed = false;
  /** Data or a keepalive arrived since the connection was (re)established. */
  #flowing = false;
  #lastActivity = 0;
  #stallMs = MIN_STALL_MS;
  /** Delays between our own client resets (node-opcua backs off its own reconnects). */
  readonly #resetBackoff: Backoff;
  #offlineReason = 'not started';
  /** nodeId -> why it is not delivering good values. */
  readonly #problems = new Map<string, string>();
  /** nodeId -> identity of the last value turned into a reading. */
  readonly #lastValue = new Map<string, string>();
  #repeatsSkipped = 0;
  #pending: DeviceReadingBody[] = [];
  #flushScheduled = false;
  #delivering: Promise<void> = Promise.resolve();
  #watchdog?: NodeJS.Timeout;
  #retryTimer?: NodeJS.Timeout;

  /** Values a server sent again (same node, source time, status and content) and the driver skipped. */
  get repeatedValuesSkipped(): number {
    return this.#repeatsSkipped;
  }

  /** Settings are (re)validated here, so raw config input works too; throws a ZodError when invalid. */
  constructor(deviceId: string, settings: OpcuaDeviceConfig | OpcuaDeviceConfigInput, sink: ReadingSink) {
    super(sink);
    this.#deviceId = deviceId;
    this.deviceIds = [deviceId];
    this.#settings = opcuaDeviceConfigSchema.parse(settings);
    this.#resetBackoff = new Backoff({ minMs: FIRST_RESET_DELAY_MS, maxMs: this.#settings.reconnectMaxDelayMs });
    this.#log = createLogger('opcua', { deviceId });
    for (const mapping of Object.values(this.#settings.mappings)) {
      this.declareChannel(deviceId, { code: mapping.code, unit: mapping.unit, kind: mapping.kind });
    }
  }

  async start(): Promise<void> {
    if (!this.#stopped) return;
    this.#stopped = false;
    const { endpoint, securityMode, securityPolicy, username } = this.#settings;
    this.#log.info(
      { endpoint, securityMode, securityPolicy, auth: username ? 'username' : 'anonymous', nodes: Object.keys(this.#settings.mappings).length },
      'starting OPC UA driver',
    );
    if (securityMode === 'None') {
      this.#log.warn({ endpoint }, 'OPC UA securityMode "None" (set in the site config): readings cross the network unsigned and in clear');
    }
    this.#markOffline(`connecting to ${endpoint}`);
    this.#watchdog = setInterval(() => this.#checkStall(), WATCHDOG_TICK_MS);
    void this.#open();
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#generation++;
    clearInterval(this.#watchdog);
    clearTimeout(this.#retryTimer);
    this.#flush();
    await this.#delivering;
    const connection = this.#connection;
    this.#connection = undefined;
    this.#subscribed = false;
    if (connection) await closeConnection(connection, this.#log);
    this.#markOffline('stopped');
    this.#log.info('OPC UA driver stopped');
  }

  // --- connection lifecycle -------------------------------------------------

  async #open(): Promise<void> {
    if (this.#stopped) return;
    const generation = ++this.#generation;
    const current = () => generation === this.#generation && !this.#stopped;
    const settings = this.#settings;
    const certificates = new OPCUACertificateManager({
      rootFolder: settings.pkiDir ?? defaultOpcuaPkiDir(),
      automaticallyAcceptUnknownCertificate: settings.acceptUnknownServerCertificate,
    });
    const client = OPCUAClient.create({
      applicationName: 'Hoichan site agent',
      endpointMustExist: false, // devices often advertise a hostname the agent cannot resolve
      securityMode: MessageSecurityMode[settings.securityMode],
      securityPolicy: SecurityPolicy[settings.securityPolicy],
      connectionStrategy: { initialDelay: 250, maxDelay: settings.reconnectMaxDelayMs, maxRetry: -1 },
      keepSessionAlive: true,
      requestedSessionTimeout: 60_000,
      clientCertificateManager: certificates,
    });
    const connection: Connection = { client, certificates };
    this.#connection = connection;
    this.#watchClient(client, current);

    try {
      await client.connect(settings.endpoint);
      if (!current()) return;
      connection.session = await client.createSession2(this.#identity());
      if (!current()) return;
      const keepAliveCount = Math.max(1, Math.ceil(KEEPALIVE_TARGET_MS / settings.publishingIntervalMs));
      const subscription = await connection.session.createSubscription2({
        requestedPublishingInterval: settings.publishingIntervalMs,
        requestedMaxKeepAliveCount: keepAliveCount,
        requestedLifetimeCount: keepAliveCount * 10,
        maxNotificationsPerPublish: 0,
        publishingEnabled: true,
        priority: 10,
      });
      connection.subscription = subscription;
      if (!current()) return;
      this.#stallMs = Math.max(MIN_STALL_MS, 3 * subscription.publishingInterval * subscription.maxKeepAliveCount);
      subscription.on('keepalive', () => current() && this.#noteActivity());
      // Online only once every item exists, so no write is missed between "online" and creation.
      const created = Object.entries(settings.mappings).map(([nodeId, mapping]) => this.#monitor(subscription, nodeId, mapping, current));
      await withTimeout(Promise.all(created), ITEM_CREATION_TIMEOUT_MS).catch(() =>
        this.#log.warn('some OPC UA monitored items were not confirmed in time; continuing'),
      );
      if (!current()) return;
      this.#resetBackoff.reset();
      // The link may have dropped meanwhile; connection_reestablished will mark it subscribed then.
      this.#subscribed = !client.isReconnecting;
      this.#lastActivity = Date.now();
      this.#log.info({ publishingIntervalMs: subscription.publishingInterval }, 'subscribed');
      this.#refreshStatus();
    } catch (err) {
      if (!current()) return;
      const untrusted = /server certificate verification failed/i.test(describe(err));
      if (untrusted) {
        // The usual first-connection state of a secure link: say what to do, not node-opcua's words.
        const pki = settings.pkiDir ?? defaultOpcuaPkiDir();
        const reason = `server certificate not trusted: copy it from ${path.join(pki, 'rejected')} (or the device) into ${path.join(pki, 'trusted', 'certs')}`;
        this.#log.warn({ endpoint: settings.endpoint, err: describe(err) }, 'OPC UA server certificate not trusted; retrying');
        this.#reset(reason);
      } else {
        this.#log.warn({ err: describe(err) }, 'OPC UA connection setup failed; starting over');
        this.#reset(`connection setup failed: ${describe(err)}`);
      }
    }
  }

  #watchClient(client: OPCUAClient, current: () => boolean): void {
    client.on('backoff', (retry: number, delay: number) => {
      if (!current()) return;
      if (retry === 0) this.#log.warn({ endpoint: this.#settings.endpoint }, 'OPC UA server not reachable; retrying');
      this.#log.debug({ retry, delay }, 'OPC UA connection retry');
    });
    client.on('connection_lost', () => {
      if (!current()) return;
      this.#subscribed = false;
      this.#log.warn('OPC UA connection lost; reconnecting');
      this.#markOffline('connection lost; reconnecting');
    });
    client.on('connection_reestablished', () => {
      if (!current()) return;
      this.counters.reconnects++;
      this.#log.info({ reconnects: this.counters.reconnects }, 'OPC UA connection re-established');
      // Status turns online once data or a keepalive proves the subscription is back.
      this.#subscribed = this.#connection?.subscription !== undefined;
      this.#lastActivity = Date.now();
      this.#refreshStatus();
    });
  }

  /** Resolves once the server created the item or refused it. */
  #monitor(subscription: ClientSubscription, nodeId: string, mapping: OpcuaMapping, current: () => boolean): Promise<void> {
    const settings = this.#settings;
    const item = ClientMonitoredItem.create(
      subscription,
      { nodeId, attributeId: AttributeIds.Value },
      {
        samplingInterval: mapping.samplingIntervalMs ?? settings.samplingIntervalMs,
        queueSize: mapping.queueSize ?? settings.queueSize,
        discardOldest: settings.discardOldest,
        filter: new DataChangeFilter({ trigger: DataChangeTrigger[settings.dataChangeTrigger], deadbandType: DeadbandType.None }),
      },
      // The default is Neither: without this, values arrive with no source time.
      TimestampsToReturn.Both,
    );
    item.on('changed', (dataValue: DataValue) => current() && this.#onValue(nodeId, mapping, dataValue));
    return new Promise((resolve) => {
      item.once('initialized', () => resolve());
      item.on('err', (message: string) => {
        resolve();
        if (!current()) return;
        this.#log.error({ nodeId, code: mapping.code, error: message }, 'configured OPC UA node cannot be monitored; check the nodeId in the device mappings');
        this.#setProblem(nodeId, `node ${nodeId}: ${message}`);
      });
    });
  }

  #onValue(nodeId: string, mapping: OpcuaMapping, dataValue: DataValue): void {
    const receivedAt = Date.now();
    this.#noteActivity();
    const identity = valueIdentity(dataValue);
    if (identity !== undefined && identity === this.#lastValue.get(nodeId)) {
      this.#repeatsSkipped++;
      this.#log.debug({ nodeId }, 'repeated OPC UA value after re-subscribe; skipped');
      return;
    }
    const result = convertDataValue(dataValue, {
      deviceId: this.#deviceId,
      mapping,
      receivedAt,
      waveformTimestamp: this.#settings.waveformTimestamp,
    });
    if (result.ok === 'empty') return;
    if (!result.ok) {
      this.counters.framesRejected++;
      if (!this.#problems.has(nodeId)) this.#log.warn({ nodeId, code: mapping.code, error: result.error }, 'OPC UA value rejected');
      this.#setProblem(nodeId, `node ${nodeId}: ${result.error}`);
      return;
    }
    this.counters.framesDecoded++;
    if (identity !== undefined) this.#lastValue.set(nodeId, identity);
    this.#pending.push(result.reading);
    this.#scheduleFlush();
    if (result.quality === 'good') this.#clearProblem(nodeId);
    else this.#setProblem(nodeId, `node ${nodeId}: ${result.statusName}`);
  }

  /** Throws the client away and opens a fresh one after a growing delay. */
  #reset(reason: string): void {
    if (this.#stopped) return;
    const generation = ++this.#generation;
    this.#subscribed = false;
    this.#markOffline(reason);
    const old = this.#connection;
    this.#connection = undefined;
    const delay = this.#resetBackoff.next();
    void (async () => {
      if (old) await closeConnection(old, this.#log);
      if (this.#stopped || generation !== this.#generation) return;
      this.#retryTimer = setTimeout(() => {
        if (generation === this.#generation) void this.#open();
      }, delay);
    })();
  }

  #checkStall(): void {
    if (!this.#subscribed || Date.now() - this.#lastActivity <= this.#stallMs) return;
    this.#log.warn({ stallMs: this.#stallMs }, 'OPC UA subscription silent (no data, no keepalive); reconnecting');
    this.#reset(`no data or keepalive for ${Math.round(this.#stallMs / 1000)} s; reconnecting`);
  }

  #identity(): UserIdentityInfo {
    const { username, password } = this.#settings;
    return username === undefined
      ? { type: UserTokenType.Anonymous }
      : { type: UserTokenType.UserName, userName: username, password: password ?? '' };
  }

  // --- status ---------------------------------------------------------------

  #noteActivity(): void {
    this.#lastActivity = Date.now();
    if (!this.#flowing) {
      this.#flowing = true;
      this.#refreshStatus();
    }
  }

  #markOffline(reason: string): void {
    this.#flowing = false;
    this.#offlineReason = reason;
    this.setStatus(this.#deviceId, { status: 'offline', reason });
  }

  #setProblem(nodeId: string, reason: string): void {
    if (this.#problems.get(nodeId) === reason) return;
    this.#problems.set(nodeId, reason);
    this.#refreshStatus();
  }

  #clearProblem(nodeId: string): void {
    if (this.#problems.delete(nodeId)) this.#refreshStatus();
  }

  #refreshStatus(): void {
    if (this.#stopped) return;
    if (!this.#subscribed) {
      this.setStatus(this.#deviceId, { status: 'offline', reason: this.#offlineReason });
    } else if (this.#problems.size > 0) {
      const reasons = [...this.#problems.values()];
      const more = reasons.length > MAX_REASONS_SHOWN ? ` (+${reasons.length - MAX_REASONS_SHOWN} more)` : '';
      this.setStatus(this.#deviceId, { status: 'degraded', reason: reasons.slice(0, MAX_REASONS_SHOWN).join('; ') + more });
    } else if (this.#flowing) {
      this.setStatus(this.#deviceId, { status: 'online' });
    } else {
      this.setStatus(this.#deviceId, { status: 'offline', reason: 'subscribed; waiting for data' });
    }
  }

  // --- delivery -------------------------------------------------------------

  /** All changes of one publish response arrive in one tick: hand them over as one batch. */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    // Chained so batches reach the sink in arrival order.
    this.#delivering = this.#delivering
      .then(async () => {
        await this.deliver(batch);
      })
      .catch((err: unknown) => this.#log.error({ err: describe(err), lost: batch.length }, 'sink refused OPC UA readings'));
  }
}

async function closeConnection(connection: Connection, log: Logger): Promise<void> {
  const close = async () => {
    // Closing the session deletes its subscriptions on the server too.
    if (connection.session) await connection.session.close(true).catch(() => undefined);
    await connection.client.disconnect();
  };
  try {
    await withTimeout(close(), CLOSE_TIMEOUT_MS);
  } catch (err) {
    log.debug({ err: describe(err) }, 'OPC UA client did not close cleanly');
  }
  await connection.certificates.dispose().catch(() => undefined);
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** One driver per OPC UA device (one client, session and subscription each). */
export function createOpcuaDriver(deviceId: string, settings: OpcuaDeviceConfig | OpcuaDeviceConfigInput, sink: ReadingSink): DeviceDriver {
  return new OpcuaDriver(deviceId, settings, sink);
}
