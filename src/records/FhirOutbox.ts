import { randomUUID } from 'node:crypto';
import { createLogger } from '../common/logger.js';
import { sessionBundle, type Bundle } from './fhir.js';
import { recordsFhirDeliveries } from './metrics.js';
import type { RecordsStore } from './RecordsStore.js';

const log = createLogger('records-fhir');

export interface FhirOutboxOptions {
  endpoint: string;
  authorization: string | null;
  retryInitialMs: number;
  retryMaxMs: number;
  /** Most numeric and waveform Observations one Bundle carries (the rest are named in the log). */
  maxObservations: number;
  /** One POST's time limit. */
  timeoutMs?: number;
}

/** Sessions whose Bundle is sent per round; a backlog drains over several rounds. */
const ROUND = 10;

/**
 * Delivers ended sessions to a FHIR server from a durable outbox (the
 * fhir_outbox table): a row per session, written after the session's end
 * in the same write queue, so it survives a hub restart. Each round sends
 * the due rows' Bundles as transactions of PUTs with stable ids (a retry after
 * an unknown outcome changes nothing on the server); a refusal or failure is
 * retried after retryInitialMs, doubling up to retryMaxMs, until a 2xx.
 */
export class FhirOutbox {
  readonly #store: RecordsStore;
  readonly #options: FhirOutboxOptions;
  #timer: NodeJS.Timeout | undefined;
  #round: Promise<void> | undefined;
  #closed = false;

  constructor(store: RecordsStore, options: FhirOutboxOptions) {
    this.#store = store;
    this.#options = options;
  }

  /** Starts the rounds (rows left pending by a previous run are sent first). */
  start(): void {
    this.#schedule(0);
  }

  /** A new row: send now rather than at the next round. */
  poke(): void {
    if (!this.#closed) this.#schedule(0);
  }

  /** The row to write for an ended session (through the write queue, after the session's end). */
  row(sessionId: string, now: number): { id: string; sessionId: string; endpoint: string; createdAt: number } {
    return { id: randomUUID(), sessionId, endpoint: this.#options.endpoint, createdAt: now };
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#round;
  }

  #schedule(delayMs: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#round ??= this.#sendDue().finally(() => {
        this.#round = undefined;
        if (!this.#closed) this.#schedule(this.#options.retryInitialMs);
      });
    }, delayMs);
    this.#timer.unref();
  }

  async #sendDue(): Promise<void> {
    let due;
    try {
      due = await this.#store.dueOutbox(Date.now(), ROUND);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'cannot read the FHIR outbox');
      return;
    }
    for (const row of due) {
      if (this.#closed) return;
      let status: number | null = null;
      let error: string;
      try {
        const bundle = await this.bundle(row.sessionId);
        if (!bundle) {
          // Deleted by retention before it could be sent: nothing left to send.
          await this.#store.outboxSent(row.id, Date.now(), 410);
          continue;
        }
        const response = await fetch(row.endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json', ...(this.#options.authorization ? { authorization: this.#options.authorization } : {}) },
          body: JSON.stringify(bundle),
          signal: AbortSignal.timeout(this.#options.timeoutMs ?? 30_000),
        });
        status = response.status;
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) {
          await this.#store.outboxSent(row.id, Date.now(), status);
          recordsFhirDeliveries.inc({ outcome: 'accepted' });
          log.info({ sessionId: row.sessionId, status, attempts: row.attempts + 1, entries: bundle.entry.length }, 'FHIR bundle accepted');
          continue;
        }
        recordsFhirDeliveries.inc({ outcome: 'refused' });
        error = `HTTP ${status}`;
      } catch (err) {
        recordsFhirDeliveries.inc({ outcome: 'failed' });
        error = (err as Error).name === 'TimeoutError' ? 'timed out' : ((err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message);
      }
      const delay = Math.min(this.#options.retryMaxMs, this.#options.retryInitialMs * 2 ** Math.min(row.attempts, 30));
      log.warn({ sessionId: row.sessionId, status, error, attempts: row.attempts + 1, retryInMs: delay }, 'FHIR bundle not accepted; will retry');
      await this.#store.outboxFailed(row.id, Date.now() + delay, status, error).catch((err: Error) => log.warn({ err: err.message }, 'cannot update the FHIR outbox'));
    }
  }

  /** The transaction Bundle of one session, or undefined when it is gone. */
  async bundle(sessionId: string): Promise<Bundle | undefined> {
    return buildBundle(this.#store, sessionId, 'transaction', this.#options.maxObservations);
  }
}

/** Reads a session and makes its Bundle; numerics and waveform strips together are capped at maxObservations. */
export async function buildBundle(store: RecordsStore, sessionId: string, type: 'collection' | 'transaction', maxObservations: number): Promise<Bundle | undefined> {
  const detail = await store.sessionDetail(sessionId);
  if (!detail) return undefined;
  const numerics = await store.numerics(sessionId, maxObservations);
  const waveforms = await store.waveforms(sessionId, Math.max(0, maxObservations - numerics.length));
  return sessionBundle({ detail, numerics, waveforms, type, now: Date.now() });
}
