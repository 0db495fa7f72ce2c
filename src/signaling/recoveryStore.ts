// socket.io's connection-state recovery, with the hub's bounds.
//
// With `connectionStateRecovery` on, socket.io's SessionAwareAdapter keeps
// every non-volatile event broadcast to a room, in one array per namespace,
// so that a socket whose link blips gets what it missed: each kept event
// carries an id (its "offset") as a last argument, the client remembers the
// newest offset it got and presents it when it reconnects, and gets every kept
// event of its rooms after that one. The hub sends every event to a peer's own
// room (SignalingServer.notifierFor), so the store held every device batch
// once per peer: about 32,000 events a second at 80 devices and 40 peers,
// 530 MiB of heap within a minute in the soak (docs/PERFORMANCE.md, section
// 8), and a recovered socket got all of it at once, past PeerFanout's
// backlog bound.
//
// This adapter keeps the recovery of signaling events (peers, producers,
// consumers, speaker, recording), which are few and small, but:
// - never keeps a device event. A recovered peer gets its device gap from the
//   device history instead, resumed from the seqs it names in its handshake
//   (auth.deviceSeqs; DeviceStreams.replay), under the replay's byte budget.
//   A device event still carries an offset: the newest kept event's id when it
//   was sent, so a client's offset always says which kept events it had.
// - keeps events for a set time (`retentionMs`: the grace period plus the time
//   a dead link takes to be noticed, plus slack for a queued socket) and at
//   most `maxEvents` of them, and at most `maxSessions` dropped sessions.
// - recovers a session whose offset is no longer kept (it got no kept event
//   for a while): every kept event is newer than what it had, so it gets all of
//   its rooms'. Unless the count bound dropped an event it may have missed:
//   then it is not recovered and the client joins again from scratch, which is
//   always correct, only slower (the web client does so when `socket.recovered`
//   is false).
// - recovers a client that reconnects before the hub has seen its old
//   connection drop, by closing the stale one first (#closeStale).

import { randomUUID } from 'node:crypto';
import { Adapter, SessionAwareAdapter, type BroadcastOptions, type Session } from 'socket.io-adapter';
import type { PeerEventName } from '../contract/index.js';
import { createLogger } from '../common/logger.js';
import { signalingRecoveryEvicted, signalingRecoveryStored } from '../telemetry/metrics.js';

const log = createLogger('signaling');

/** Device events: resumed from the device history by seq, never from socket.io's store. */
export const NOT_RECOVERED_EVENTS: ReadonlySet<PeerEventName> = new Set<PeerEventName>(['deviceReadings', 'deviceAlarm', 'deviceStatus']);

export interface RecoveryStoreOptions {
  /** How long a dropped socket may recover (signaling.reconnectGraceMs). */
  graceMs: number;
  /** How long before its drop was noticed a socket may have stopped receiving: kept events go back this far. */
  unnoticedMs: number;
  /** Events kept for recovering sockets, all peers of the namespace together; the oldest go first. */
  maxEvents: number;
  /** Dropped sessions kept for recovery; the oldest go first. */
  maxSessions: number;
}

/** What SessionAwareAdapter keeps (private in its typings, plain fields in its JavaScript). */
interface StoreView {
  packets: Array<{ id: string; emittedAt: number; data: unknown[]; opts: BroadcastOptions }>;
  sessions: Map<string, Session & { disconnectedAt: number }>;
  maxDisconnectionDuration: number;
}

/** socket.io-parser's EVENT packet type. */
const EVENT = 2;

/** The adapter class for the Server's `adapter` option. */
export function boundedRecoveryAdapter(options: RecoveryStoreOptions): typeof SessionAwareAdapter {
  const retentionMs = options.graceMs + options.unnoticedMs;
  return class BoundedRecoveryAdapter extends SessionAwareAdapter {
    /** The newest kept event's id (or one never kept, before the first): the offset device events carry. */
    #newestId: string = randomUUID();
    /** emittedAt of the newest event the count bound dropped. */
    #evictedUpTo = 0;

    constructor(nsp: ConstructorParameters<typeof SessionAwareAdapter>[0]) {
      super(nsp);
      // socket.io's own minute timer prunes kept events and sessions older than this: the retention, not the grace
      // (restoreSession below holds sessions to the grace).
      (this as unknown as StoreView).maxDisconnectionDuration = retentionMs;
    }

    override broadcast(packet: { type: number; data?: unknown[] }, opts: BroadcastOptions): void {
      const name = packet.data?.[0];
      if (packet.type === EVENT && typeof name === 'string' && NOT_RECOVERED_EVENTS.has(name as PeerEventName)) {
        packet.data!.push(this.#newestId);
        // Sent as socket.io would without recovery: encoded once, written to each socket of the rooms.
        Adapter.prototype.broadcast.call(this, packet, opts);
        return;
      }
      super.broadcast(packet, opts);
      const store = this as unknown as StoreView;
      const newest = store.packets[store.packets.length - 1];
      if (newest) this.#newestId = newest.id;
      this.#bound(store);
    }

    override persistSession(session: Parameters<SessionAwareAdapter['persistSession']>[0]): void {
      super.persistSession(session);
      const { sessions } = this as unknown as StoreView;
      // A Map iterates in insertion order: the first key is the oldest disconnection.
      while (sessions.size > options.maxSessions) sessions.delete(sessions.keys().next().value!);
    }

    override restoreSession(pid: string, offset: string): Promise<Session> {
      const { sessions, packets } = this as unknown as StoreView;
      if (!sessions.has(pid)) this.#closeStale(pid);
      const session = sessions.get(pid);
      if (!session) return Promise.resolve(null as unknown as Session);
      sessions.delete(pid);
      if (session.disconnectedAt + options.graceMs < Date.now()) return Promise.resolve(null as unknown as Session);
      const index = packets.findIndex((p) => p.id === offset);
      // Not kept any more (or never): every kept event is newer than the client's last. Recover only if the count bound
      // dropped nothing the client may have missed (sent since it may have stopped receiving).
      if (index === -1 && this.#evictedUpTo >= session.disconnectedAt - options.unnoticedMs) return Promise.resolve(null as unknown as Session);
      const missedPackets: unknown[][] = [];
      for (let i = index + 1; i < packets.length; i++) {
        const packet = packets[i]!;
        if (forRooms(session.rooms, packet.opts)) missedPackets.push(packet.data);
      }
      return Promise.resolve({ ...session, missedPackets });
    }

    /**
     * A client presents the private id of a socket this hub still has open: it noticed the link die first (its own
     * ping timed out, or this hub was too busy to ping in time) and reconnected before the hub closed the old
     * socket, which is stale. Closed now, the old socket's session is kept as for any drop, and this reconnect
     * recovers it instead of finding nothing and joining again as a new peer. The id is only ever sent to that
     * client (in socket.io's CONNECT packet); the new connection's token is still checked, and the peer is only
     * resumed for the same user (SignalingServer#resume).
     */
    #closeStale(pid: string): void {
      for (const socket of this.nsp.sockets.values() as Iterable<{ pid?: string; data?: { peerId?: string }; conn: { close(discard?: boolean): void } }>) {
        if (socket.pid !== pid) continue;
        log.info({ peerId: socket.data?.peerId }, 'a client reconnected before its old connection was seen to drop; closing the old one to recover it');
        // discard: the stale socket's queue will never drain, and the close must persist its session right now.
        socket.conn.close(true);
        return;
      }
    }

    #bound(store: StoreView): void {
      const { packets } = store;
      const threshold = Date.now() - retentionMs;
      let expired = 0;
      while (expired < packets.length && packets[expired]!.emittedAt < threshold) expired++;
      const drop = Math.max(expired, packets.length - options.maxEvents);
      if (drop > expired) {
        this.#evictedUpTo = packets[drop - 1]!.emittedAt;
        signalingRecoveryEvicted.inc(drop - expired);
      }
      if (drop > 0) packets.splice(0, drop);
      signalingRecoveryStored.set({ namespace: this.nsp.name as string }, packets.length);
    }
  };
}

/** Whether a kept event was sent to any of a session's rooms (and not excluded from them). */
function forRooms(rooms: string[], opts: BroadcastOptions): boolean {
  const included = opts.rooms.size === 0 || rooms.some((room) => opts.rooms.has(room));
  return included && rooms.every((room) => !opts.except?.has(room));
}
