import { createLogger } from '../common/logger.js';
import { recordsDropped, recordsQueueDepth, recordsWriteErrors } from './metrics.js';
import { RecordsStore } from './RecordsStore.js';

const log = createLogger('records');

/**
 * bulk: numerics, waveform windows, device counters, network summaries;
 * essential: sessions, participants, devices, alarms (few, and what the others refer to).
 */
export type WriteClass = 'bulk' | 'essential';

interface Write {
  cls: WriteClass;
  /** A name for logs (never the row's contents). */
  what: string;
  run: (store: RecordsStore) => Promise<void>;
}

/** Writes per transaction at most: enough to amortise a commit. */
const BATCH = 200;
/**
 * A transaction stops taking writes after this long, so one commit never holds
 * the event loop (SQLite's calls are synchronous) much beyond it; the rest wait
 * for the next turn.
 */
const SLICE_MS = 8;
/** At most one "dropped" warning per this many ms; the counter has every drop. */
const DROP_LOG_EVERY_MS = 10_000;

/**
 * The recorder's writes, in order, off the media and signaling paths: enqueue
 * never waits. A background loop commits them in batches of BATCH, one
 * transaction each; a batch the database refuses is retried write by write so
 * one bad row costs only itself. Bounded: past `maxQueue` waiting writes bulk
 * ones are dropped, past twice that essential ones too (counted in
 * hoichan_records_dropped_total and logged without contents).
 */
export class WriteQueue {
  readonly #store: RecordsStore;
  readonly #maxQueue: number;
  #queue: Write[] = [];
  #draining: Promise<void> | undefined;
  #closed = false;
  #droppedSinceLog = 0;
  #lastDropLog = 0;
  dropped = 0;
  failed = 0;

  constructor(store: RecordsStore, maxQueue: number) {
    this.#store = store;
    this.#maxQueue = maxQueue;
  }

  get depth(): number {
    return this.#queue.length;
  }

  enqueue(cls: WriteClass, what: string, run: (store: RecordsStore) => Promise<void>): boolean {
    if (this.#closed) return false;
    const limit = cls === 'bulk' ? this.#maxQueue : this.#maxQueue * 2;
    if (this.#queue.length >= limit) {
      this.#drop(cls);
      return false;
    }
    this.#queue.push({ cls, what, run });
    recordsQueueDepth.set(this.#queue.length);
    this.#draining ??= this.#drain().finally(() => (this.#draining = undefined));
    return true;
  }

  /** Resolves when everything enqueued so far is written (or refused). */
  async flush(): Promise<void> {
    while (this.#draining) await this.#draining;
  }

  /** Writes what is queued, then refuses new writes. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      // Let media and signaling callbacks run between batches (SQLite calls are synchronous).
      await new Promise((resolve) => setImmediate(resolve));
      let batch = this.#queue.splice(0, BATCH);
      try {
        await this.#store.db.transaction(async (tx) => {
          const store = new RecordsStore(tx);
          const start = performance.now();
          // PostgreSQL's calls are asynchronous: the loop is free while they run, and fuller transactions are cheaper.
          const sliceMs = store.kind === 'sqlite' ? SLICE_MS : Number.POSITIVE_INFINITY;
          for (let i = 0; i < batch.length; i++) {
            await batch[i]!.run(store);
            if (performance.now() - start > sliceMs && i + 1 < batch.length) {
              // Back to the front, in order: they go in the next transaction.
              this.#queue.unshift(...batch.slice(i + 1));
              batch = batch.slice(0, i + 1);
              break;
            }
          }
        });
        recordsQueueDepth.set(this.#queue.length);
      } catch {
        recordsQueueDepth.set(this.#queue.length);
        for (const write of batch) {
          try {
            await write.run(this.#store);
          } catch (err) {
            this.failed++;
            recordsWriteErrors.inc();
            // The statement's error, never its values: they hold names and readings.
            log.error({ write: write.what, err: (err as { code?: string }).code ?? (err as Error).message.slice(0, 200) }, 'record write refused');
          }
        }
      }
    }
  }

  #drop(cls: WriteClass): void {
    this.dropped++;
    this.#droppedSinceLog++;
    recordsDropped.inc({ class: cls });
    const now = Date.now();
    if (now - this.#lastDropLog >= DROP_LOG_EVERY_MS) {
      log.warn({ dropped: this.#droppedSinceLog, queued: this.#queue.length, maxQueue: this.#maxQueue }, 'records write queue full: writes dropped (records.maxQueue)');
      this.#lastDropLog = now;
      this.#droppedSinceLog = 0;
    }
  }
}
