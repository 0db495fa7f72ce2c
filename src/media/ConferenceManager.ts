import { Conference, type ConferenceLimits } from './Conference.js';
import type { WorkerPool } from './WorkerPool.js';

/**
 * Owns the conferences of this hub. Creation per id is serialised, so two
 * peers joining an empty conference at once share one router.
 */
export class ConferenceManager {
  readonly #conferences = new Map<string, Conference>();
  readonly #creating = new Map<string, Promise<Conference>>();

  constructor(
    readonly pool: WorkerPool,
    readonly limits: ConferenceLimits,
  ) {}

  get(id: string): Conference | undefined {
    return this.#conferences.get(id);
  }

  list(): Conference[] {
    return [...this.#conferences.values()];
  }

  async getOrCreate(id: string): Promise<Conference> {
    const existing = this.#conferences.get(id);
    if (existing && !existing.closed) return existing;
    let pending = this.#creating.get(id);
    if (!pending) {
      pending = Conference.create(id, this.pool, this.limits).then((conference) => {
        this.#conferences.set(id, conference);
        conference.once('close', () => {
          if (this.#conferences.get(id) === conference) this.#conferences.delete(id);
        });
        return conference;
      });
      this.#creating.set(id, pending);
      pending.finally(() => this.#creating.delete(id)).catch(() => undefined);
    }
    return pending;
  }

  close(): void {
    for (const conference of this.list()) conference.close();
  }
}
