import { EventEmitter } from 'node:events';
import { badRequest, limitExceeded } from '../common/errors.js';
import { Conference, type ConferenceLimits } from './Conference.js';
import type { IngestInfo, IngestRequest } from './ingest.js';
import type { WorkerPool } from './WorkerPool.js';

export interface HubMediaLimits extends ConferenceLimits {
  /** Conferences held at once (open and being created). */
  maxConferences: number;
  /** Ingests one token subject holds across all conferences. */
  maxIngestsPerUser: number;
  /** Hub policy: every ingest uses SRTP. */
  ingestRequireSrtp: boolean;
}

export interface ConferenceManagerEvents {
  /** A conference was created (its peers, close and recovery are its own events). */
  conference: [Conference];
}

/**
 * Owns the conferences of this hub. Creation per id is serialised, so two
 * peers joining an empty conference at once share one router.
 */
export class ConferenceManager extends EventEmitter<ConferenceManagerEvents> {
  readonly #conferences = new Map<string, Conference>();
  readonly #creating = new Map<string, Promise<Conference>>();
  /** Other hubs a joined peer may rejoin through if this one is lost (a cluster's hubs of this region). */
  alternates: (() => Array<{ hubId: string; url: string }>) | undefined;
  /** Called before each join: throws to send the peer to another hub (a cluster hub draining or past cluster.maxLoad). */
  admitJoin: ((conferenceId: string) => void) | undefined;
  /** Called for each new conference before its first peer is added (the cluster attaches it to the other hubs). */
  onCreated: ((conference: Conference) => Promise<void>) | undefined;
  /** Ingests being opened per owner, so concurrent requests count against maxIngestsPerUser. */
  readonly #openingIngests = new Map<string, number>();

  constructor(
    readonly pool: WorkerPool,
    readonly limits: HubMediaLimits,
  ) {
    super();
  }

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
      if (this.#conferences.size + this.#creating.size >= this.limits.maxConferences) {
        throw limitExceeded(`this hub holds at most ${this.limits.maxConferences} conferences (media.maxConferences)`);
      }
      pending = Conference.create(id, this.pool, this.limits).then(async (conference) => {
        await this.onCreated?.(conference);
        this.#conferences.set(id, conference);
        conference.once('close', () => {
          if (this.#conferences.get(id) === conference) this.#conferences.delete(id);
        });
        this.emit('conference', conference);
        return conference;
      });
      this.#creating.set(id, pending);
      pending.finally(() => this.#creating.delete(id)).catch(() => undefined);
    }
    return pending;
  }

  /**
   * Opens an ingest for `owner` (the token `sub`) in a conference, creating the
   * conference if needed (and closing it again if the ingest fails and nobody
   * else is in it). Enforces the SRTP policy and the per-owner cap here; the
   * per-conference caps are the conference's.
   */
  async openIngest(conferenceId: string, request: IngestRequest, owner: string): Promise<IngestInfo> {
    if (this.limits.ingestRequireSrtp && !request.srtp) {
      throw badRequest('srtp: this hub requires SRTP for ingests (media.ingestRequireSrtp); omit srtp or set it true');
    }
    const held = this.list().reduce((n, c) => n + c.ingests.ownedBy(owner), 0) + (this.#openingIngests.get(owner) ?? 0);
    if (held >= this.limits.maxIngestsPerUser) {
      throw limitExceeded(`one user may hold at most ${this.limits.maxIngestsPerUser} ingests (media.maxIngestsPerUser)`);
    }
    this.#openingIngests.set(owner, (this.#openingIngests.get(owner) ?? 0) + 1);
    try {
      const conference = await this.getOrCreate(conferenceId);
      try {
        return await conference.ingests.open(request, owner);
      } catch (err) {
        conference.closeIfEmpty();
        throw err;
      }
    } finally {
      const left = (this.#openingIngests.get(owner) ?? 1) - 1;
      if (left <= 0) this.#openingIngests.delete(owner);
      else this.#openingIngests.set(owner, left);
    }
  }

  close(): void {
    for (const conference of this.list()) conference.close();
  }
}
