import { randomUUID } from 'node:crypto';
import type { types } from 'mediasoup';
import { HoichanError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import type { Conference } from '../media/Conference.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import type { PeerEventMap, PeerEventName, PeerSummary, ProducerInfo } from '../media/events.js';
import type { BroadcastEvent, RemoteMedia, RemotePeer, RemoteProducer } from '../media/remote.js';
import { ClusterBus } from './bus.js';
import type { ClusterConfig } from './config.js';
import { ClusterDevices } from './devices.js';
import { ClusterDirectory } from './directory.js';
import type { DeviceStreams } from '../streams/DeviceStreams.js';
import type { BusMessage, BusMessageOf, ConferenceState, HubLoad, HubRecord } from './messages.js';
import { PipeLinks, type PipeAddress } from './pipes.js';
import { connectRedis, type RedisConnection } from './redis.js';

const log = createLogger('cluster');

export interface HubClusterOptions {
  redisUrl: string;
  config: ClusterConfig;
  conferences: ConferenceManager;
  /** This hub's URL as browsers and agents reach it (cluster.publicUrl, else the listen URL, known once listening). */
  url: () => string;
  /** Where pipe transports listen, and the address other hubs send to. */
  pipeAddress: PipeAddress;
  /** The hub's name elsewhere (records.hubId, HOICHAN_HUB_ID): its cluster id too when cluster.hubId is null and it fits. */
  fallbackHubId?: string | null;
  /** This hub's load now (workers, conferences, consumers, bitrate). */
  load: () => Omit<HubLoad, 'pipesIn' | 'pipesOut'>;
}

/** What this hub knows of one other hub's part of a conference. */
interface RemotePart {
  epoch: string;
  rev: number;
  peers: Map<string, PeerSummary>;
  producers: Map<string, ProducerInfo>;
}

/** This hub's side of a conference it hosts. */
interface Hosted {
  conference: Conference;
  epoch: string;
  rev: number;
  remote: Map<string, RemotePart>;
  /** Resyncs from Redis, one at a time. */
  syncing?: Promise<void>;
}

/** The conference-wide view `GET /api/cluster` gives. */
export interface ClusterReport {
  enabled: true;
  hubId: string;
  region: string;
  redis: 'reachable' | 'unreachable';
  hubs: HubRecord[];
  /** Each conference and the hubs it spans. */
  conferences: Array<{ conferenceId: string; hubs: string[] }>;
}

/**
 * This hub as a member of a cluster (docs/SCALING.md): its directory entry
 * and heartbeat, the cluster bus, the other hubs' parts of the conferences it
 * hosts, and the pipes that carry media between hubs. It hangs off the
 * ConferenceManager (onCreated) and each Conference (its `remote` seam and
 * its 'broadcast' event); the media core knows nothing else of it.
 */
export class HubCluster {
  readonly hubId: string;
  readonly #options: HubClusterOptions;
  readonly #pub: RedisConnection;
  readonly #sub: RedisConnection;
  readonly directory: ClusterDirectory;
  readonly bus: ClusterBus;
  readonly pipes: PipeLinks;
  readonly #hosted = new Map<string, Hosted>();
  readonly #startedAt = Date.now();
  #draining = false;
  #closed = false;
  /** Device flow across hubs, once the hub's device streams are attached. */
  #devices: ClusterDevices | undefined;

  private constructor(options: HubClusterOptions) {
    this.#options = options;
    const { config } = options;
    const fallback = options.fallbackHubId && /^[A-Za-z0-9_.-]{1,64}$/.test(options.fallbackHubId) ? options.fallbackHubId : undefined;
    this.hubId = config.hubId ?? fallback ?? `hub-${randomUUID().slice(0, 8)}`;
    this.#pub = connectRedis(options.redisUrl, { failFast: true, name: `cluster-${this.hubId}` });
    this.#sub = connectRedis(options.redisUrl, { failFast: false, name: `cluster-sub-${this.hubId}` });
    for (const conn of [this.#pub, this.#sub]) conn.on('error', (err: Error) => log.debug({ err: err.message }, 'redis connection error'));
    this.bus = new ClusterBus(this.#pub, this.#sub, this.hubId, config.maxMessageBytes, (m) => this.#onMessage(m));
    this.directory = new ClusterDirectory(this.#pub, this.hubId, { record: () => this.record(), conferenceStates: () => this.#states() }, config);
    this.pipes = new PipeLinks(this.hubId, this.bus, options.conferences, options.pipeAddress, config, async (hubId) => {
      if (!this.directory.hub(hubId)) await this.directory.beat();
      return this.directory.hub(hubId)?.mediaAddress;
    });
    this.directory.on('hubGone', (hubId) => this.#onHubGone(hubId));
    this.directory.on('reconnected', () => this.#resyncAll());
  }

  /**
   * Joins the cluster. Redis being away at start is not fatal: the hub runs,
   * and registers at the first heartbeat that reaches Redis.
   */
  static async start(options: HubClusterOptions): Promise<HubCluster> {
    const cluster = new HubCluster(options);
    options.conferences.onCreated = (conference) => cluster.#attach(conference);
    options.conferences.admitJoin = (conferenceId) => cluster.#admitJoin(conferenceId);
    options.conferences.alternates = () =>
      cluster.directory.hubs.filter((h) => h.hubId !== cluster.hubId && h.region === cluster.region && !h.draining).map((h) => ({ hubId: h.hubId, url: h.url }));
    await withTimeout(cluster.bus.start(), options.config.requestTimeoutMs).catch((err: Error) => log.warn({ err: err.message }, 'cluster bus not subscribed yet (Redis unreachable?); it will be when Redis is back'));
    // Each heartbeat also reconciles the remote parts: a bus message lost while Redis blinked is made good here.
    cluster.directory.on('beat', () => cluster.#resyncAll());
    return cluster;
  }

  /** Device readings and status of this hub's agents go to the other hubs, theirs come here. */
  attachDevices(streams: DeviceStreams): void {
    // Device entries live as long as a device is listed when its agent is away (the history keeps the readings).
    this.#devices = new ClusterDevices(this.hubId, this.#pub, this.bus, this.directory, streams, this.#options.config.ttlMs * 10);
    this.directory.on('beat', () => this.#devices?.heartbeat());
  }

  /** Enters the directory (once the hub listens and its URL is known); heartbeats from then on. */
  async register(): Promise<void> {
    await this.directory.start();
    log.info({ hubId: this.hubId, region: this.region, url: this.#options.url(), redis: this.directory.reachable ? 'reachable' : 'unreachable' }, 'joined the cluster');
  }

  get region(): string {
    return this.#options.config.region;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Stops taking new conferences here (POST /api/ops/drain); the directory shows it. */
  drain(): void {
    this.#draining = true;
    void this.directory.beat();
  }

  record(): HubRecord {
    const { config } = this.#options;
    return {
      hubId: this.hubId,
      region: config.region,
      url: this.#options.url(),
      mediaAddress: this.#options.pipeAddress.announced,
      startedAt: this.#startedAt,
      heartbeatAt: Date.now(),
      draining: this.#draining,
      maxLoad: config.maxLoad,
      load: { ...this.#options.load(), pipesOut: this.pipes.outCount, pipesIn: this.pipes.inCount },
      conferences: [...this.#hosted.keys()],
    };
  }

  report(): ClusterReport {
    const hubs = this.directory.hubs.filter((h) => h.hubId !== this.hubId);
    const all = [this.record(), ...hubs];
    const spans = new Map<string, string[]>();
    for (const hub of all) for (const c of hub.conferences) spans.set(c, [...(spans.get(c) ?? []), hub.hubId]);
    return {
      enabled: true,
      hubId: this.hubId,
      region: this.region,
      redis: this.directory.reachable ? 'reachable' : 'unreachable',
      hubs: all,
      conferences: [...spans].map(([conferenceId, ids]) => ({ conferenceId, hubs: ids.sort() })).sort((a, b) => a.conferenceId.localeCompare(b.conferenceId)),
    };
  }

  /**
   * Where a join goes instead of this hub: a live hub of this region that is
   * not draining and under its own cluster.maxLoad; among them one that already
   * hosts the conference (its streams are there already), then the least
   * loaded (consumers: each is a stream the hub forwards).
   */
  redirectTarget(conferenceId: string): HubRecord | undefined {
    return this.directory.hubs
      .filter((h) => h.hubId !== this.hubId && h.region === this.region && !h.draining && (h.maxLoad === null || h.load.consumers < h.maxLoad))
      .sort((a, b) => Number(b.conferences.includes(conferenceId)) - Number(a.conferences.includes(conferenceId)) || a.load.consumers - b.load.consumers)[0];
  }

  /**
   * Placement (docs/SCALING.md): a conference goes where its first peer
   * connects; a hub that drains sends every join elsewhere, and one past
   * cluster.maxLoad sends it to another hub of its region with room. The
   * answer is `unavailable` with `redirect: { hubId, url }` (a documented
   * extension); with nowhere to send it, an overloaded hub takes the join
   * and a draining one refuses it.
   */
  #admitJoin(conferenceId: string): void {
    const { maxLoad } = this.#options.config;
    const overloaded = maxLoad !== null && this.#options.load().consumers >= maxLoad;
    if (!this.#draining && !overloaded) return;
    const target = this.redirectTarget(conferenceId);
    const why = this.#draining ? 'this hub is draining' : `this hub is past cluster.maxLoad (${maxLoad} consumers)`;
    if (target) throw new HoichanError('unavailable', `${why}; join through hub ${target.hubId}`, { redirect: { hubId: target.hubId, url: target.url } });
    if (this.#draining) throw new HoichanError('unavailable', `${why} and no other hub of region ${this.region} can take the join; try again later`);
  }

  /** SIGTERM: stop taking joins, then wait until the conferences here ended or `timeoutMs` passed. */
  async drainUntilEmpty(timeoutMs: number): Promise<void> {
    this.drain();
    const deadline = Date.now() + timeoutMs;
    log.info({ conferences: this.#hosted.size, timeoutMs }, 'draining: no new joins; waiting for the conferences here to end');
    while (this.#options.conferences.list().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
  }

  // ---- conferences --------------------------------------------------------

  /**
   * A conference opened on this hub: subscribe to its channel, read the other
   * hubs' parts, publish ours. Never throws: with Redis away the conference
   * runs on this hub alone until the heartbeat reconciles it.
   */
  async #attach(conference: Conference): Promise<void> {
    const hosted: Hosted = { conference, epoch: randomUUID(), rev: 0, remote: new Map() };
    this.#hosted.set(conference.id, hosted);
    conference.remote = this.#remoteMedia(hosted);
    conference.on('broadcast', (event) => this.#onLocalEvent(hosted, event));
    conference.once('close', () => this.#detach(hosted));
    const timeout = this.#options.config.requestTimeoutMs;
    try {
      await withTimeout(this.bus.subscribeConference(conference.id), timeout);
      await withTimeout(this.#sync(hosted), timeout);
    } catch (err) {
      log.warn({ conferenceId: conference.id, err: (err as Error).message }, 'conference not yet shared with the cluster (Redis unreachable?); the heartbeat will');
    }
    this.directory.writeConferenceState(conference.id, this.#state(hosted));
  }

  #detach(hosted: Hosted): void {
    const id = hosted.conference.id;
    if (this.#hosted.get(id) !== hosted) return;
    this.#hosted.delete(id);
    this.bus.unsubscribeConference(id);
    this.directory.dropConference(id);
    this.pipes.conferenceClosed(id);
    this.#devices?.conferenceClosed(id);
  }

  #state(hosted: Hosted): ConferenceState {
    const { conference } = hosted;
    return {
      hubId: this.hubId,
      epoch: hosted.epoch,
      rev: hosted.rev,
      peers: conference.peers.map((p) => p.summary),
      producers: conference.producers,
    };
  }

  #states(): Array<{ conferenceId: string; state: ConferenceState }> {
    return [...this.#hosted.values()].map((h) => ({ conferenceId: h.conference.id, state: this.#state(h) }));
  }

  #onLocalEvent(hosted: Hosted, e: BroadcastEvent): void {
    const conferenceId = hosted.conference.id;
    if (e.event === 'activeSpeaker') {
      this.bus.toConference(conferenceId, { type: 'activeSpeaker', conferenceId, peerId: e.data.peerId, producerId: e.data.producerId });
      return;
    }
    if (e.event !== 'peerJoined' && e.event !== 'peerLeft' && e.event !== 'newProducer' && e.event !== 'producerClosed') return;
    hosted.rev++;
    const change = { conferenceId, epoch: hosted.epoch, rev: hosted.rev };
    // The state first, then the event, on one connection: Redis applies them in that order,
    // so a hub that reads the state at rev n has seen every event up to n.
    this.directory.writeConferenceState(conferenceId, this.#state(hosted));
    if (e.event === 'peerJoined') this.bus.toConference(conferenceId, { ...change, type: 'peerJoined', peer: e.data });
    else if (e.event === 'peerLeft') this.bus.toConference(conferenceId, { ...change, type: 'peerLeft', peerId: e.data.peerId });
    else if (e.event === 'newProducer') this.bus.toConference(conferenceId, { ...change, type: 'newProducer', producer: e.data });
    else {
      this.bus.toConference(conferenceId, { ...change, type: 'producerClosed', producerId: e.data.producerId });
      this.pipes.producerClosed(e.data.producerId);
    }
  }

  #remoteMedia(hosted: Hosted): RemoteMedia {
    const producers = (): RemoteProducer[] => [...hosted.remote].flatMap(([hubId, part]) => [...part.producers.values()].map((p) => ({ ...p, hubId })));
    return {
      peers: (): RemotePeer[] => [...hosted.remote].flatMap(([hubId, part]) => [...part.peers.values()].map((p) => ({ ...p, hubId }))),
      producers,
      producer: (producerId) => producers().find((p) => p.producerId === producerId),
      pipe: (producerId: string, router: types.Router, slot: { rtcMinPort: number; rtcMaxPort: number }) => {
        const producer = producers().find((p) => p.producerId === producerId);
        if (!producer) return Promise.reject(new HoichanError('not_found', `producer ${producerId} not found in this conference`));
        return this.pipes.pipeIn(hosted.conference.id, producer, router, slot);
      },
    };
  }

  // ---- other hubs ---------------------------------------------------------

  #onMessage(message: BusMessage): void {
    switch (message.type) {
      case 'peerJoined':
      case 'peerLeft':
      case 'newProducer':
      case 'producerClosed':
        return this.#onRemoteChange(message);
      case 'activeSpeaker': {
        const hosted = this.#hosted.get(message.conferenceId);
        if (hosted?.remote.has(message.hub)) this.#notifyLocal(hosted, 'activeSpeaker', { peerId: message.peerId, producerId: message.producerId });
        return;
      }
      case 'deviceReadings':
      case 'deviceStatus':
      case 'deviceAlarm':
        if (this.#hosted.has(message.conferenceId)) this.#devices?.onMessage(message);
        return;
      case 'pipeRequest':
        return void this.pipes.answer(message);
      case 'pipeClosed':
        return this.pipes.remoteClosed(message.pipeId);
      case 'hubLeft':
        return this.directory.forget(message.hub);
      case 'pipeReply':
      case 'pipeRefused':
        // A reply whose request timed out already.
        return;
    }
  }

  #onRemoteChange(message: BusMessageOf<'peerJoined' | 'peerLeft' | 'newProducer' | 'producerClosed'>): void {
    const hosted = this.#hosted.get(message.conferenceId);
    if (!hosted) return;
    const part = hosted.remote.get(message.hub);
    if (part && part.epoch === message.epoch && message.rev <= part.rev) return; // the state we read already had it
    if (!part || part.epoch !== message.epoch || message.rev !== part.rev + 1) {
      // Missed something (or first news of this hub): the stored state has this change and any before it.
      void this.#resync(hosted);
      return;
    }
    part.rev = message.rev;
    switch (message.type) {
      case 'peerJoined':
        part.peers.set(message.peer.peerId, message.peer);
        this.#notifyLocal(hosted, 'peerJoined', { ...message.peer, hubId: message.hub });
        break;
      case 'peerLeft':
        part.peers.delete(message.peerId);
        this.#notifyLocal(hosted, 'peerLeft', { peerId: message.peerId });
        // That hub's part ended (its conference closes there); a later one starts a new epoch.
        if (part.peers.size === 0 && part.producers.size === 0) hosted.remote.delete(message.hub);
        break;
      case 'newProducer':
        part.producers.set(message.producer.producerId, message.producer);
        this.#notifyLocal(hosted, 'newProducer', { ...message.producer, hubId: message.hub });
        hosted.conference.remoteProducersChanged();
        break;
      case 'producerClosed':
        part.producers.delete(message.producerId);
        this.pipes.producerClosed(message.producerId);
        this.#notifyLocal(hosted, 'producerClosed', { producerId: message.producerId });
        hosted.conference.remoteProducersChanged();
        break;
    }
  }

  /** Reads the other hubs' parts of a conference and tells this hub's peers what changed. */
  #resync(hosted: Hosted): Promise<void> {
    hosted.syncing ??= this.#sync(hosted)
      .catch((err: Error) => log.debug({ conferenceId: hosted.conference.id, err: err.message }, 'conference resync failed'))
      .finally(() => (hosted.syncing = undefined));
    return hosted.syncing;
  }

  async #sync(hosted: Hosted): Promise<void> {
    await this.#devices?.load(hosted.conference.id);
    const states = await this.directory.conferenceStates(hosted.conference.id);
    if (this.#hosted.get(hosted.conference.id) !== hosted) return;
    // Only live hubs have a state (it expires with their entry); a hub that left is dropped by #onHubGone.
    for (const state of states) this.#apply(hosted, state.hubId, state);
  }

  /** Moves the cached part of `hubId` to `state` (none: the hub left), telling local peers the difference. */
  #apply(hosted: Hosted, hubId: string, state: ConferenceState | undefined): void {
    const before = hosted.remote.get(hubId);
    if (state && before && before.epoch === state.epoch && state.rev <= before.rev) return;
    const peers = new Map((state?.peers ?? []).map((p) => [p.peerId, p]));
    const producers = new Map((state?.producers ?? []).map((p) => [p.producerId, p]));
    for (const [producerId] of before?.producers ?? []) {
      if (producers.has(producerId)) continue;
      this.pipes.producerClosed(producerId);
      this.#notifyLocal(hosted, 'producerClosed', { producerId });
    }
    for (const [peerId] of before?.peers ?? []) if (!peers.has(peerId)) this.#notifyLocal(hosted, 'peerLeft', { peerId });
    for (const [peerId, peer] of peers) if (!before?.peers.has(peerId)) this.#notifyLocal(hosted, 'peerJoined', { ...peer, hubId });
    for (const [producerId, producer] of producers) if (!before?.producers.has(producerId)) this.#notifyLocal(hosted, 'newProducer', { ...producer, hubId });
    if (!state || (peers.size === 0 && producers.size === 0)) hosted.remote.delete(hubId);
    else hosted.remote.set(hubId, { epoch: state.epoch, rev: state.rev, peers, producers });
    const changed = [...producers.keys()].some((id) => !before?.producers.has(id)) || [...(before?.producers.keys() ?? [])].some((id) => !producers.has(id));
    if (changed) hosted.conference.remoteProducersChanged();
  }

  #notifyLocal<E extends PeerEventName>(hosted: Hosted, event: E, data: PeerEventMap[E]): void {
    for (const peer of hosted.conference.peers) peer.notify(event, data);
  }

  #resyncAll(): void {
    for (const hosted of this.#hosted.values()) void this.#resync(hosted);
  }

  #onHubGone(hubId: string): void {
    for (const hosted of this.#hosted.values()) if (hosted.remote.has(hubId)) this.#apply(hosted, hubId, undefined);
    this.pipes.hubGone(hubId);
    this.#devices?.hubGone(hubId);
  }

  // ---- shutdown -----------------------------------------------------------

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.bus.toCluster({ type: 'hubLeft' });
    await this.directory.close([...this.#hosted.keys()]);
    this.bus.close();
    this.pipes.close();
    this.#pub.disconnect();
    this.#sub.disconnect();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer from Redis within ${ms} ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}
