import { hostname } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import type { RecordsConfig } from './config.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import { createLogger } from '../common/logger.js';
import { FhirOutbox } from './FhirOutbox.js';
import { MAX_BUNDLE_OBSERVATIONS } from './fhir.js';
import { migrate } from './migrations.js';
import { PostgresDriver } from './postgres.js';
import { Recorder, type PeerNetworkSource } from './Recorder.js';
import { RecordsStore } from './RecordsStore.js';
import type { SqlDriver } from './sql.js';
import { SqliteDriver } from './sqlite.js';
import { WriteQueue } from './WriteQueue.js';

export { RecordsStore } from './RecordsStore.js';
export { recordsRoutes } from './routes.js';

const log = createLogger('records');

const DAY_MS = 86_400_000;

export type { RecordsConfig } from './config.js';

/** What the recorder listens to; device streams start later (Recorder.watchDevices). */
export interface RecordsSources {
  conferences: ConferenceManager;
  network: PeerNetworkSource;
  /** How often participants' network and devices' counters are written (the stats poll interval). */
  sampleIntervalMs: number;
}

/** Opens the configured engine: PostgreSQL when databaseUrl is set, else SQLite in records.dir. */
export async function openDriver(config: Pick<RecordsConfig, 'databaseUrl' | 'dir'>): Promise<SqlDriver> {
  if (config.databaseUrl) {
    return PostgresDriver.connect(config.databaseUrl).catch((err: Error) => {
      // The URL holds a password: never in the message.
      throw new Error(`cannot connect to the records database (records.databaseUrl / DATABASE_URL): ${err.message}`);
    });
  }
  const file = join(resolvePath(config.dir), 'records.sqlite');
  try {
    return SqliteDriver.open(file);
  } catch (err) {
    throw new Error(`cannot open the records database ${file} (records.dir): ${(err as Error).message}`);
  }
}

/**
 * The consultation records of one hub: the store (migrated at open), the
 * write queue, the recorder listening to the hub, the FHIR outbox when an
 * endpoint is set, and the daily retention job. The Hub owns it; close()
 * ends live sessions, writes what is queued and closes the database.
 */
export class Records {
  readonly hubId: string;
  readonly queue: WriteQueue;
  readonly recorder: Recorder;
  readonly outbox: FhirOutbox | undefined;
  readonly #retention: NodeJS.Timeout;
  readonly #retentionDays: number;
  #closed = false;

  private constructor(
    readonly store: RecordsStore,
    readonly config: RecordsConfig,
    sources: RecordsSources,
  ) {
    this.hubId = config.hubId ?? hostname();
    this.#retentionDays = config.retentionDays;
    this.queue = new WriteQueue(store, config.maxQueue);
    this.outbox = config.fhirEndpoint
      ? new FhirOutbox(store, {
          endpoint: config.fhirEndpoint,
          authorization: config.fhirAuthorization,
          retryInitialMs: config.fhirRetryInitialMs,
          retryMaxMs: config.fhirRetryMaxMs,
          maxObservations: MAX_BUNDLE_OBSERVATIONS,
        })
      : undefined;
    const outbox = this.outbox;
    this.recorder = new Recorder(this.queue, sources.conferences, sources.network, {
      hubId: this.hubId,
      numericIntervalMs: config.numericIntervalMs,
      waveformWindowMs: config.waveformWindowMs,
      waveformEveryMs: config.waveformEveryMs,
      maxWaveformWindowsPerChannel: config.maxWaveformWindowsPerChannel,
      sampleIntervalMs: sources.sampleIntervalMs,
      ...(outbox
        ? {
            onSessionEnded: (sessionId: string) => {
              const row = outbox.row(sessionId, Date.now());
              this.queue.enqueue('essential', 'fhir outbox', (s) => s.enqueueOutbox(row));
              void this.queue.flush().then(() => outbox.poke());
            },
          }
        : {}),
    });
    this.#retention = setInterval(() => void this.purgeExpired(), DAY_MS);
    this.#retention.unref();
  }

  static async open(
    config: RecordsConfig,
    sources: RecordsSources,
  ): Promise<Records> {
    const driver = await openDriver(config);
    const store = new RecordsStore(driver);
    try {
      const version = await migrate(driver);
      const hubId = config.hubId ?? hostname();
      const abandoned = await store.closeAbandoned(hubId);
      const records = new Records(store, config, sources);
      // Their end was never seen, so their Bundles were never queued.
      for (const sessionId of abandoned) if (records.outbox) await store.enqueueOutbox(records.outbox.row(sessionId, Date.now()));
      if (abandoned.length > 0) log.warn({ sessions: abandoned.length }, 'sessions left open by a previous run of this hub were closed (ended at their last recorded activity)');
      log.info({ engine: driver.kind, schemaVersion: version, fhir: records.outbox !== undefined }, 'consultation records ready');
      await records.purgeExpired();
      records.outbox?.start();
      return records;
    } catch (err) {
      await driver.close().catch(() => undefined);
      throw err;
    }
  }

  /** Deletes sessions that ended more than retentionDays ago (the daily job; also run at start). */
  async purgeExpired(now = Date.now()): Promise<number> {
    if (this.#closed) return 0;
    try {
      const deleted = await this.store.purge(now - this.#retentionDays * DAY_MS);
      if (deleted > 0) log.info({ sessions: deleted, retentionDays: this.#retentionDays }, 'expired consultation records deleted');
      return deleted;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'records retention job failed');
      return 0;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#retention);
    this.recorder.close();
    await this.queue.close();
    await this.outbox?.close();
    await this.store.db.close();
  }
}
