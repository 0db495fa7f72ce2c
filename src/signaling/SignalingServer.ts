import { randomUUID } from 'node:crypto';
import type { Server, Socket } from 'socket.io';
import { handshakeRefusal, type Actor, type AuditSink } from '../audit/events.js';
import type { HoichanConfig } from '../config/schema.js';
import { HoichanError, badRequest, conflict, forbidden, type ErrorCode } from '../common/errors.js';
import type { DeviceInfo, ErrorReply, JoinReply, PeerNotify, RecordingStateEvent, RequestName, RequestReply, Role } from '../contract/index.js';
import type { Conference } from '../media/Conference.js';
import type { ConferenceManager } from '../media/ConferenceManager.js';
import { Peer } from '../media/Peer.js';
import { createLogger } from '../common/logger.js';
import { recordSignalingRequest } from '../telemetry/metrics.js';
import { AuthError, SocketTokens, canAccessConference, tokenHandshake, type Authenticator, type Claims } from '../auth/index.js';
import { socketClientAddress } from '../common/clientAddress.js';
import { KeyedBuckets, TokenBucket } from '../common/tokenBucket.js';
import { ConnectionCounter } from './connectionCounter.js';
import { describeIssue } from '../common/zodIssues.js';
import { requestSchemaFor, requestSchemas, type RequestPayload } from './schemas.js';

const log = createLogger('signaling');

/** What `join` tells a newcomer about the conference's devices; the device hub provides it. */
export interface DeviceDirectory {
  devicesOf(conferenceId: string): DeviceInfo[];
  /**
   * Called at the end of a successful join: sends the newcomer its device
   * replay through notify (after the join reply). `resume` is the client's
   * handshake `auth.deviceSeqs` ({ deviceId: lastSeqSeen }), unvalidated.
   */
  replay?(conferenceId: string, peerId: string, notify: PeerNotify, resume: unknown): void;
  /** The peer's socket dropped and may recover: send it no device events until a replay (recovery or join). */
  away?(conferenceId: string, peerId: string): void;
}

/** The ack of request N: its contract reply, or an error. */
export type Ack<N extends RequestName = RequestName> = (response: ({ ok: true } & RequestReply<N>) | ErrorReply) => void;

/** Recording control (src/recording/RecordingManager), attached by the hub: signaling only checks and forwards. */
export interface RecordingControl {
  stateOf(conferenceId: string): RecordingStateEvent;
  start(conference: Conference, who: { sub: string; role: Role; displayName: string; ip?: string }): Promise<RecordingStateEvent>;
  stop(conferenceId: string, who: { sub: string; role: Role; displayName: string; ip?: string }): Promise<RecordingStateEvent>;
}

/** Per-socket state; socket.io restores it when a dropped client recovers its connection. */
export interface SessionData {
  claims: Claims;
  peerId?: string;
  conferenceId?: string;
}

/** An ack as a refusal answers it (unknown requests have no reply type). */
type ErrorAck = (response: ErrorReply) => void;

interface Session {
  socket: Socket;
  claims: Claims;
  /** The client's address, as the per-IP limits count it. */
  ip: string;
  bucket: TokenBucket;
  /** The joined peer and its conference, when joined. */
  joined?: { peer: Peer; conference: Conference };
}

/** One handler per request: the payload its schema let through, the reply the contract names. */
type Handler<N extends RequestName> = (session: Session, payload: RequestPayload<N>) => Promise<RequestReply<N>>;

/** The handler table: a request of the contract without a handler, or a handler with the wrong reply, does not compile. */
type Handlers = { [N in RequestName]: Handler<N> };

/** Requests a peer may make before joining; all others need a joined peer. */
const PRE_JOIN: ReadonlySet<RequestName> = new Set(['join', 'leave', 'refreshToken']);

/** Requests an engineer's token may make: engineers never join media. */
const ENGINEER_MAY: ReadonlySet<RequestName> = new Set(['leave', 'refreshToken']);

/**
 * socket.io signaling (docs/PROTOCOL.md, "Signaling"). It validates each message against
 * its schema and calls one method of the media layer; no media logic lives here.
 */
export class SignalingServer {
  readonly #io: Server;
  readonly #conferences: ConferenceManager;
  readonly #config: HoichanConfig;
  readonly #devices: DeviceDirectory;
  readonly #auth: Authenticator;
  readonly #tokens: SocketTokens;
  /** Peers whose socket dropped, kept for reconnectGraceMs so a recovering client gets them back. */
  readonly #orphans = new Map<string, { peer: Peer; conference: Conference; timer: NodeJS.Timeout }>();
  readonly #handlers: Handlers;
  readonly #audit: AuditSink;
  /** Shared by all sockets of one token subject, and of one client address: more sockets buy no more requests. */
  readonly #userBuckets: KeyedBuckets;
  readonly #ipBuckets: KeyedBuckets;
  readonly #userConnections: ConnectionCounter;
  readonly #ipConnections: ConnectionCounter;
  #recording: RecordingControl | undefined;

  constructor(io: Server, conferences: ConferenceManager, config: HoichanConfig, devices: DeviceDirectory, auth: Authenticator, audit: AuditSink = { record: () => undefined }) {
    this.#io = io;
    this.#audit = audit;
    this.#conferences = conferences;
    this.#config = config;
    this.#devices = devices;
    const limits = config.signaling;
    this.#userBuckets = new KeyedBuckets(limits.userRequestsPerSecond, limits.userRequestBurst);
    this.#ipBuckets = new KeyedBuckets(limits.ipRequestsPerSecond, limits.ipRequestBurst);
    this.#userConnections = new ConnectionCounter(limits.maxConnectionsPerUser);
    this.#ipConnections = new ConnectionCounter(limits.maxConnectionsPerIp);
    this.#auth = auth;
    this.#tokens = new SocketTokens(auth, io.of('/'), 'signaling', (socket) => (socket.data as Partial<SessionData>).claims);
    this.#handlers = {
      join: (s, p) => this.#join(s, p),
      createTransport: async (s, p) => ({ transport: await this.#media(s).conference.createWebRtcTransport(this.#media(s).peer, p.direction) }),
      connectTransport: async (s, p) => {
        const { peer, conference } = this.#media(s);
        await conference.connectTransport(peer, p.transportId, p.dtlsParameters);
        return {};
      },
      produce: async (s, p) => {
        const { peer, conference } = this.#media(s);
        // rtpParameters passed the schema's shape check; mediasoup checks their meaning (a bad codec is its error).
        return { producerId: await conference.produce(peer, p as Parameters<Conference['produce']>[1]) };
      },
      consume: async (s, p) => {
        const { peer, conference } = this.#media(s);
        // Likewise rtpCapabilities: shape checked by the schema, meaning by mediasoup's canConsume.
        const consumer = await conference.consume(peer, p as Parameters<Conference['consume']>[1]);
        this.#auditConsume(s, peer, conference, consumer.producerId, consumer.kind);
        return { consumer };
      },
      resumeConsumer: async (s, p) => {
        const { peer, conference } = this.#media(s);
        await conference.resumeConsumer(peer, p.consumerId);
        return {};
      },
      pauseProducer: async (s, p) => {
        const { peer, conference } = this.#media(s);
        await conference.pauseProducer(peer, p.producerId);
        return {};
      },
      resumeProducer: async (s, p) => {
        const { peer, conference } = this.#media(s);
        await conference.resumeProducer(peer, p.producerId);
        return {};
      },
      closeProducer: async (s, p) => {
        const { peer, conference } = this.#media(s);
        conference.closeProducer(peer, p.producerId);
        return {};
      },
      setConsumerLayers: async (s, p) => {
        const { peer, conference } = this.#media(s);
        await conference.setConsumerLayers(peer, p.consumerId, p.spatialLayer, p.temporalLayer);
        return {};
      },
      restartIce: async (s, p) => {
        const { peer, conference } = this.#media(s);
        return { iceParameters: await conference.restartIce(peer, p.transportId) };
      },
      setVideoPreferences: async (s, p) => {
        const { peer, conference } = this.#media(s);
        return conference.setVideoPreferences(peer, p);
      },
      leave: async (s) => {
        this.#leave(s);
        return {};
      },
      refreshToken: (s, p) => this.#refresh(s, p.token),
      startRecording: (s, p) => this.#recordingRequest(s, p.conferenceId, 'start'),
      stopRecording: (s, p) => this.#recordingRequest(s, p.conferenceId, 'stop'),
    };

    // socket.io 4.8 runs these middlewares for a recovered connection too
    // (connectionStateRecovery.skipMiddlewares is false in Hub.ts): a client
    // resuming after a blip presents its token again, and an expired or revoked
    // one does not get its session back.
    io.use(
      tokenHandshake(auth, 'signaling', {
        admit: (socket, claims) => this.#admitConnection(socket, claims),
        accept: (socket, claims) => {
          (socket.data as SessionData).claims = claims;
        },
        refused: (address, message) => this.#audit.record(handshakeRefusal('signaling', address, message)),
        refusedMessage: 'handshake refused',
      }),
    );
    io.on('connection', (socket) => this.#onConnection(socket));
  }

  /** The hub attaches its RecordingManager; without one, startRecording answers unavailable. */
  attachRecording(control: RecordingControl): void {
    this.#recording = control;
  }

  /** startRecording / stopRecording: for the conference this socket joined, which its token must grant. */
  async #recordingRequest(session: Session, conferenceId: string, action: 'start' | 'stop'): Promise<{ recording: RecordingStateEvent }> {
    const { peer, conference } = this.#media(session);
    if (conference.id !== conferenceId || !canAccessConference(session.claims, conferenceId)) {
      throw forbidden(`this peer is not in conference ${conferenceId}`);
    }
    if (!this.#recording) throw new HoichanError('unavailable', 'recording is not enabled on this hub');
    const who = { sub: session.claims.sub, role: session.claims.role, displayName: peer.displayName, ip: session.ip };
    const recording = action === 'start' ? await this.#recording.start(conference, who) : await this.#recording.stop(conference.id, who);
    return { recording };
  }

  /** Events for a peer go to its own room: socket.io keeps them for a client that recovers its connection. */
  notifierFor(peerId: string): PeerNotify {
    return (event, data) => {
      this.#io.to(peerRoom(peerId)).emit(event, data);
    };
  }

  /**
   * Counts the socket against its token subject's and its address's connection
   * caps; the leases are released however the socket ends (it may end before
   * 'connection' fires, so the engine connection's close releases them too).
   * Returns the refusal message, or undefined when admitted.
   */
  #admitConnection(socket: Socket, claims: Claims): string | undefined {
    const ip = socketClientAddress(socket);
    const userLease = this.#userConnections.acquire(claims.sub);
    const ipLease = userLease && this.#ipConnections.acquire(ip);
    if (!userLease || !ipLease) {
      userLease?.();
      const limit = userLease ? 'maxConnectionsPerIp' : 'maxConnectionsPerUser';
      log.warn({ limit, sub: claims.sub, address: ip }, 'handshake refused: too many connections');
      return 'too_many_connections';
    }
    const release = () => {
      userLease();
      ipLease();
    };
    socket.once('disconnect', release);
    socket.client.conn.once('close', release);
    return undefined;
  }

  /** Every event a socket sends, known or not, costs a token from its own, its user's and its address's bucket. */
  #admitRequest(session: Session): boolean {
    return session.bucket.take() && this.#userBuckets.take(session.claims.sub) && this.#ipBuckets.take(session.ip);
  }

  #onConnection(socket: Socket): void {
    const data = socket.data as SessionData;
    const session: Session = {
      socket,
      claims: data.claims,
      ip: socketClientAddress(socket),
      bucket: new TokenBucket(this.#config.signaling.requestsPerSecond, this.#config.signaling.requestBurst),
    };
    this.#tokens.watch(socket, data.claims);
    if (socket.recovered && data.peerId) this.#resume(session, data.peerId);

    for (const name of Object.keys(this.#handlers) as RequestName[]) {
      socket.on(name, (...args: unknown[]) => void this.#dispatch(session, name, args));
    }
    socket.onAny((event: string, ...args: unknown[]) => {
      if (Object.hasOwn(this.#handlers, event)) return;
      const ack = args.findLast((a) => typeof a === 'function') as ErrorAck | undefined;
      const admitted = this.#admitRequest(session);
      recordSignalingRequest('unknown', admitted ? 'bad_request' : 'rate_limited', 0);
      if (!admitted) ack?.({ ok: false, error: { code: 'rate_limited', message: 'too many requests; slow down' } });
      else ack?.({ ok: false, error: { code: 'bad_request', message: `unknown request '${String(event).slice(0, 64)}'` } });
    });
    socket.on('disconnect', (reason) => this.#onDisconnect(session, reason));
  }

  async #dispatch<N extends RequestName>(session: Session, name: N, args: unknown[]): Promise<void> {
    // socket.io puts the ack last, after however many arguments the client sent:
    // emit(name, ack) has no payload, emit(name, payload, ack) the usual one.
    const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as Ack<N>) : undefined;
    const payload = args[0];
    // Counted before anything else: a flood without acks costs the sender as much as one with.
    const admitted = this.#admitRequest(session);
    if (!ack) {
      log.debug({ request: name }, 'request without ack ignored');
      return;
    }
    const reply = ack;
    const started = performance.now();
    let code: ErrorCode | 'ok' = 'ok';
    try {
      if (!admitted) throw new HoichanError('rate_limited', 'too many requests; slow down');
      if (args.length > 1) throw badRequest(`'${name}' takes one payload argument, got ${args.length}`);
      const parsed = requestSchemaFor[name].safeParse(payload ?? {});
      if (!parsed.success) throw badRequest(describeIssue(parsed.error));
      if (session.claims.role === 'engineer' && !ENGINEER_MAY.has(name)) {
        throw forbidden('the engineer role may not join media');
      }
      if (!PRE_JOIN.has(name) && !session.joined) throw new HoichanError('bad_request', `join a conference before '${name}'`);
      const handler: Handler<N> = this.#handlers[name];
      const result = await handler(session, parsed.data);
      reply({ ok: true, ...result });
    } catch (err) {
      const known = err instanceof HoichanError;
      code = known ? err.code : 'internal';
      if (!known) log.error({ request: name, err: (err as Error).message, stack: (err as Error).stack }, 'request failed');
      this.#auditRefusal(session, name, payload, code);
      reply({ ok: false, error: { code, message: known ? err.message : 'internal error', ...(known ? err.extra : undefined) } });
    } finally {
      const ms = performance.now() - started;
      recordSignalingRequest(name, code, ms / 1000);
      log.debug({ request: name, code, ms: Math.round(ms) }, 'request');
    }
  }

  #media(session: Session): { peer: Peer; conference: Conference } {
    if (!session.joined) throw badRequest('join a conference first');
    return session.joined;
  }

  async #join(session: Session, payload: RequestPayload<'join'>): Promise<JoinReply> {
    const { claims, socket } = session;
    if (!canAccessConference(claims, payload.conferenceId)) {
      throw forbidden(`this token does not grant conference ${payload.conferenceId}`);
    }
    if (session.joined) throw conflict(`already joined conference ${session.joined.conference.id}; leave first`);
    await this.#stillValid(claims);
    // A cluster hub that is draining or past cluster.maxLoad sends the join elsewhere (src/cluster).
    this.#conferences.admitJoin?.(payload.conferenceId);

    const peerId = randomUUID();
    // The name others see is the token's: a client cannot pass itself off as someone else.
    const peer = new Peer(peerId, claims.sub, claims.name, claims.role, this.notifierFor(peerId), claims.site ?? null);
    // A conference whose last peer just left is closing: take the fresh one.
    let conference = await this.#conferences.getOrCreate(payload.conferenceId);
    if (conference.closed) conference = await this.#conferences.getOrCreate(payload.conferenceId);
    // In the peer's room before it is announced: events for it from then on must reach it.
    await socket.join(peerRoom(peerId));
    let start: Awaited<ReturnType<Conference['addPeer']>>;
    try {
      start = await conference.addPeer(peer);
    } catch (err) {
      void socket.leave(peerRoom(peerId));
      throw err;
    }

    if (!socket.connected) {
      conference.removePeer(peer);
      throw conflict('socket closed during join');
    }
    session.joined = { peer, conference };
    const data = socket.data as SessionData;
    data.peerId = peerId;
    data.conferenceId = conference.id;
    this.#devices.replay?.(conference.id, peerId, this.notifierFor(peerId), socket.handshake.auth?.deviceSeqs);
    const devices = this.#devices.devicesOf(conference.id);
    this.#auditJoin(session, conference.id, peerId, devices);
    return {
      peerId,
      role: claims.role,
      routerRtpCapabilities: start.routerRtpCapabilities,
      // Peers on other hubs of a cluster carry their hubId (docs/PROTOCOL.md, "Several hubs").
      peers: [...start.peers.map((p) => p.summary), ...start.remotePeers],
      producers: start.producers,
      devices,
      // Extension: a late joiner sees the recording indicator at once.
      recording: this.#recording?.stateOf(conference.id) ?? { active: false, recordingId: null, startedAt: null, by: null },
      ...(this.#conferences.alternates ? { hubs: this.#conferences.alternates() } : {}),
    };
  }

  /** Revoked since the handshake, or expired a moment ago (the socket's timer may not have fired yet)? */
  async #stillValid(claims: Claims): Promise<void> {
    try {
      await this.#auth.recheck(claims, 'signaling');
    } catch (err) {
      throw new HoichanError('unauthorized', (err as Error).message);
    }
  }

  async #refresh(session: Session, token: string): Promise<RequestReply<'refreshToken'>> {
    let next: Claims;
    try {
      next = await this.#auth.verifyRefresh(token, 'signaling', session.claims, socketClientAddress(session.socket));
    } catch (err) {
      if (!(err instanceof AuthError)) throw err;
      log.info({ reason: err.message, jti: session.claims.jti }, 'token refresh refused');
      const code = /same subject/.test(err.message) ? 'forbidden' : 'unauthorized';
      this.#tokens.refreshRefused(session.socket, session.claims, code);
      throw new HoichanError(code, err.message);
    }
    session.claims = next;
    (session.socket.data as SessionData).claims = next;
    this.#tokens.refreshed(session.socket, next);
    return { exp: next.exp };
  }

  #leave(session: Session): void {
    const joined = session.joined;
    if (!joined) return;
    session.joined = undefined;
    void session.socket.leave(peerRoom(joined.peer.id));
    const data = session.socket.data as SessionData;
    delete data.peerId;
    delete data.conferenceId;
    joined.conference.removePeer(joined.peer);
    this.#auditLeave(session, joined.conference.id, joined.peer.id, 'leave');
  }

  #resume(session: Session, peerId: string): void {
    const orphan = this.#orphans.get(peerId);
    if (!orphan || orphan.peer.closed) return;
    // The recovered socket was re-authenticated; its token must still be the peer's and grant the conference.
    if (orphan.peer.userId !== session.claims.sub || !canAccessConference(session.claims, orphan.conference.id)) {
      log.info({ peerId }, 'recovered socket presents a token for another user or conference; not resuming its peer');
      (session.socket.data as Partial<SessionData>).peerId = undefined;
      return;
    }
    clearTimeout(orphan.timer);
    this.#orphans.delete(peerId);
    session.joined = { peer: orphan.peer, conference: orphan.conference };
    log.info({ peerId, conferenceId: orphan.conference.id }, 'peer recovered its session');
    // socket.io gave back the signaling events it missed, never device events (src/signaling/recoveryStore.ts):
    // each device's status as it is now (a change during the drop was not sent), then the gap, resumed from the
    // seqs this handshake names or replayed as to a newcomer.
    const notify = this.notifierFor(peerId);
    const devices = this.#devices.devicesOf(orphan.conference.id);
    for (const info of devices) notify('deviceStatus', info);
    this.#devices.replay?.(orphan.conference.id, peerId, notify, session.socket.handshake.auth?.deviceSeqs);
    this.#auditReplay(session, orphan.conference.id, peerId, devices);
  }

  #onDisconnect(session: Session, reason: string): void {
    const joined = session.joined;
    if (!joined) return;
    session.joined = undefined;
    // A deliberate disconnect ends the session now; a lost connection gets a grace period.
    const deliberate = reason === 'client namespace disconnect' || reason === 'server namespace disconnect';
    const grace = this.#config.signaling.reconnectGraceMs;
    if (deliberate || grace === 0) {
      joined.conference.removePeer(joined.peer);
      this.#auditLeave(session, joined.conference.id, joined.peer.id, 'disconnect');
      return;
    }
    log.info({ peerId: joined.peer.id, reason, graceMs: grace }, 'peer connection lost; holding its session');
    this.#devices.away?.(joined.conference.id, joined.peer.id);
    const timer = setTimeout(() => {
      this.#orphans.delete(joined.peer.id);
      log.info({ peerId: joined.peer.id }, 'peer did not come back; cleaning up');
      joined.conference.removePeer(joined.peer);
      this.#auditLeave(session, joined.conference.id, joined.peer.id, 'timeout');
    }, grace);
    this.#orphans.set(joined.peer.id, { ...joined, timer });
  }

  // ---- audit (src/audit): ids, roles, addresses and outcomes only ---------

  #actor(session: Session): Actor {
    return { sub: session.claims.sub, role: session.claims.role, ip: socketClientAddress(session.socket) };
  }

  #auditJoin(session: Session, conferenceId: string, peerId: string, devices: DeviceInfo[]): void {
    this.#audit.record({ type: 'conference.join', actor: this.#actor(session), conferenceId, outcome: 'ok', target: { peerId } });
    this.#auditReplay(session, conferenceId, peerId, devices);
  }

  #auditReplay(session: Session, conferenceId: string, peerId: string, devices: DeviceInfo[]): void {
    // The join (or recovery) replay sends the peer each device's recent readings (or its resume): who saw which patient's stream.
    const seqs: unknown = session.socket.handshake.auth?.deviceSeqs;
    for (const { deviceId } of devices) {
      const resumed = typeof seqs === 'object' && seqs !== null && Object.hasOwn(seqs, deviceId);
      this.#audit.record({ type: 'device.replay', actor: this.#actor(session), conferenceId, outcome: 'ok', target: { peerId, deviceId, resumed } });
    }
  }

  #auditLeave(session: Session, conferenceId: string, peerId: string, reason: 'leave' | 'disconnect' | 'timeout'): void {
    this.#audit.record({ type: 'conference.leave', actor: this.#actor(session), conferenceId, outcome: 'ok', target: { peerId, reason } });
  }

  #auditConsume(session: Session, peer: Peer, conference: Conference, producerId: string, kind: string): void {
    // A producer of another hub of a cluster is recorded with its peer too.
    const producer = conference.producers.find((p) => p.producerId === producerId) ?? conference.remote?.producer(producerId);
    this.#audit.record({
      type: 'media.consume',
      actor: this.#actor(session),
      conferenceId: conference.id,
      outcome: 'ok',
      target: { peerId: peer.id, producerId, producerPeerId: producer?.peerId ?? 'unknown', source: producer?.source ?? 'unknown', kind },
    });
  }

  /** A refused join (any reason), and any request refused as forbidden. */
  #auditRefusal(session: Session, name: RequestName, payload: unknown, code: ErrorCode): void {
    if (name === 'join') {
      const join = requestSchemas.join.safeParse(payload);
      if (join.success) this.#audit.record({ type: 'conference.join', actor: this.#actor(session), conferenceId: join.data.conferenceId, outcome: code });
    } else if (code === 'forbidden') {
      const peerId = session.joined?.peer.id;
      this.#audit.record({ type: 'request.forbidden', actor: this.#actor(session), conferenceId: session.joined?.conference.id, outcome: 'forbidden', target: { via: 'signaling', request: name, ...(peerId ? { peerId } : {}) } });
    }
  }

  close(): void {
    this.#tokens.close();
    for (const orphan of this.#orphans.values()) {
      clearTimeout(orphan.timer);
      const { peer, conference } = orphan;
      this.#audit.record({ type: 'conference.leave', actor: { sub: peer.userId, role: peer.role }, conferenceId: conference.id, outcome: 'ok', target: { peerId: peer.id, reason: 'shutdown' } });
    }
    this.#orphans.clear();
  }
}

export function peerRoom(peerId: string): string {
  return `peer:${peerId}`;
}
