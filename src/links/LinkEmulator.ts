import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import { createServer, connect, type Server, type Socket as TcpSocket } from 'node:net';
import { createLogger } from '../common/logger.js';
import { seededRandom } from '../sim/random.js';
import { LinkDirection, TCP_MSS, type DirectionCounters } from './linkModel.js';
import type { LinkProfile, OutageSchedule } from './profiles.js';

const log = createLogger('link-emulator');

export interface RelayTarget {
  host: string;
  port: number;
}

export interface LinkEmulatorOptions {
  profile: LinkProfile;
  /** Seed of the loss and jitter draws: the same seed drops the same packets of the same sequence. */
  seed?: number;
  /** Address the relay ports listen on (loopback: tests and benches only). */
  listenHost?: string;
  /** Replaces the profile's outage schedule; null: no scheduled outages (setOutage() still works). */
  outages?: OutageSchedule | null;
  /** Client 5-tuples one UDP relay port keeps a mapping for (each holds one upstream socket). */
  maxUdpMappings?: number;
  /** A mapping that carried nothing for this long is closed. */
  udpIdleMs?: number;
  /** TCP connections through all TCP relay ports together. */
  maxTcpConnections?: number;
}

export interface LinkStats {
  profile: string;
  up: DirectionCounters;
  down: DirectionCounters;
  udpMappings: number;
  udpMappingsRefused: number;
  /** Datagrams dropped because UDP is blocked (blockUdp). */
  udpBlocked: number;
  tcpConnections: number;
  tcpConnectionsRefused: number;
  outages: number;
  inOutage: boolean;
}

export interface LinkEmulatorEvents {
  outage: [on: boolean];
}

interface UdpMapping {
  upstream: UdpSocket;
  lastUsedMs: number;
}

/**
 * A user-space link emulator on loopback: relay ports that forward a site's
 * traffic to the hub through one emulated link (one LinkDirection each way,
 * shared by every relay port, as one modem carries a site's media, signaling
 * and uplink). UDP relays keep one upstream socket per client 5-tuple, so the
 * hub sees each browser socket as a distinct remote address; TCP relays open
 * one upstream connection per client connection.
 *
 * Chromium 156 as Debian ships it has no WebRTC network-emulation field trials
 * and these machines have no tc netem, so this is how tests and benches put a
 * thin link between a browser and the hub (docs/LINKS.md).
 *
 * Bounded: mappings, connections, each direction's queue (datagrams beyond it
 * are dropped, TCP readers are paused), and TCP chunks held during an outage
 * (readers are paused, so at most what was in flight).
 */
export class LinkEmulator extends EventEmitter<LinkEmulatorEvents> {
  readonly profile: LinkProfile;
  readonly up: LinkDirection;
  readonly down: LinkDirection;
  /** Drop every datagram both ways (a network that blocks UDP): ICE must fall back to TCP. */
  blockUdp = false;
  readonly #listenHost: string;
  readonly #maxUdpMappings: number;
  readonly #udpIdleMs: number;
  readonly #maxTcpConnections: number;
  readonly #udpFronts: UdpSocket[] = [];
  readonly #udpMappings = new Map<UdpSocket, Map<string, UdpMapping>>();
  readonly #tcpServers: Server[] = [];
  readonly #tcpSockets = new Set<TcpSocket>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #onOutageEnd = new Set<() => void>();
  /** Per TCP pipe: push what it has in flight back by the outage's length. */
  readonly #tcpPipes = new Set<(outageMs: number) => void>();
  #outageStartedMs = 0;
  #sweepTimer: NodeJS.Timeout | undefined;
  #inOutage = false;
  /** Bumped at every outage start: packets in flight from an older epoch are lost. */
  #epoch = 0;
  #outages = 0;
  #udpMappingsRefused = 0;
  #udpBlocked = 0;
  #tcpConnections = 0;
  #tcpRefused = 0;
  #closed = false;

  constructor(options: LinkEmulatorOptions) {
    super();
    this.profile = options.profile;
    const seed = options.seed ?? 1;
    this.up = new LinkDirection(options.profile.up, seededRandom(seed));
    this.down = new LinkDirection(options.profile.down, seededRandom(seed ^ 0x5bd1e995));
    this.#listenHost = options.listenHost ?? '127.0.0.1';
    this.#maxUdpMappings = options.maxUdpMappings ?? 64;
    this.#udpIdleMs = options.udpIdleMs ?? 60_000;
    this.#maxTcpConnections = options.maxTcpConnections ?? 64;
    const schedule = options.outages === undefined ? options.profile.outages : options.outages;
    if (schedule) this.#scheduleOutages(schedule);
    this.#sweepTimer = setInterval(() => this.#sweepIdleMappings(), Math.min(this.#udpIdleMs, 10_000));
    this.#sweepTimer.unref();
  }

  get inOutage(): boolean {
    return this.#inOutage;
  }

  /** Starts or ends an outage now (tests drive outages by hand; profiles schedule theirs). */
  setOutage(on: boolean): void {
    if (this.#closed || on === this.#inOutage) return;
    this.#inOutage = on;
    const now = performance.now();
    if (on) {
      this.#epoch++;
      this.#outages++;
      this.up.reset(now);
      this.down.reset(now);
      this.#outageStartedMs = now;
    } else {
      for (const shift of this.#tcpPipes) shift(now - this.#outageStartedMs);
      for (const resume of [...this.#onOutageEnd]) resume();
      this.#onOutageEnd.clear();
    }
    log.info({ profile: this.profile.name, outage: on }, on ? 'link down' : 'link up');
    this.emit('outage', on);
  }

  stats(): LinkStats {
    let udpMappings = 0;
    for (const map of this.#udpMappings.values()) udpMappings += map.size;
    return {
      profile: this.profile.name,
      up: { ...this.up.counters },
      down: { ...this.down.counters },
      udpMappings,
      udpMappingsRefused: this.#udpMappingsRefused,
      udpBlocked: this.#udpBlocked,
      tcpConnections: this.#tcpConnections,
      tcpConnectionsRefused: this.#tcpRefused,
      outages: this.#outages,
      inOutage: this.#inOutage,
    };
  }

  /** A UDP port that relays to `target` through the link; resolves to the port. */
  async relayUdp(target: RelayTarget): Promise<number> {
    const front = createSocket('udp4');
    const mappings = new Map<string, UdpMapping>();
    this.#udpFronts.push(front);
    this.#udpMappings.set(front, mappings);
    front.on('error', (err) => log.warn({ err: err.message }, 'udp relay socket error'));
    front.on('message', (msg, rinfo) => {
      const key = `${rinfo.address}:${rinfo.port}`;
      let mapping = mappings.get(key);
      if (!mapping) {
        if (mappings.size >= this.#maxUdpMappings) {
          this.#udpMappingsRefused++;
          return;
        }
        const upstream = createSocket('udp4');
        upstream.on('error', (err) => log.warn({ err: err.message }, 'udp upstream socket error'));
        upstream.on('message', (reply) => {
          mapping!.lastUsedMs = performance.now();
          this.#forwardDatagram(this.down, reply, () => front.send(reply, rinfo.port, rinfo.address));
        });
        upstream.bind(0, this.#listenHost);
        mapping = { upstream, lastUsedMs: performance.now() };
        mappings.set(key, mapping);
      }
      mapping.lastUsedMs = performance.now();
      const upstream = mapping.upstream;
      this.#forwardDatagram(this.up, msg, () => upstream.send(msg, target.port, target.host));
    });
    await new Promise<void>((resolve, reject) => {
      front.once('error', reject);
      front.bind(0, this.#listenHost, () => {
        front.off('error', reject);
        resolve();
      });
    });
    return front.address().port;
  }

  /** A TCP port that relays to `target` through the link; resolves to the port. */
  async relayTcp(target: RelayTarget): Promise<number> {
    const server = createServer({ noDelay: true }, (client) => this.#onTcpClient(client, target));
    this.#tcpServers.push(server);
    server.on('error', (err) => log.warn({ err: err.message }, 'tcp relay server error'));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.#listenHost, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('tcp relay has no port');
    return address.port;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sweepTimer);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const front of this.#udpFronts) {
      for (const mapping of this.#udpMappings.get(front)?.values() ?? []) mapping.upstream.close();
      front.close();
    }
    this.#udpMappings.clear();
    for (const socket of this.#tcpSockets) socket.destroy();
    for (const server of this.#tcpServers) server.close();
    this.removeAllListeners();
  }

  #later(atMs: number, task: () => void): void {
    if (this.#closed) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      task();
    }, Math.max(0, atMs - performance.now()));
    this.#timers.add(timer);
  }

  #forwardDatagram(direction: LinkDirection, payload: Buffer, send: () => void): void {
    if (this.blockUdp) {
      this.#udpBlocked++;
      return;
    }
    if (this.#inOutage) {
      direction.counters.offeredPackets++;
      direction.droppedByOutage();
      return;
    }
    const verdict = direction.offer(payload.length, performance.now());
    if (!verdict.deliver) return;
    const epoch = this.#epoch;
    this.#later(verdict.deliverAtMs, () => {
      if (this.#inOutage || epoch !== this.#epoch) {
        direction.droppedByOutage();
        return;
      }
      direction.delivered(verdict.wireBytes);
      send();
    });
  }

  #onTcpClient(client: TcpSocket, target: RelayTarget): void {
    if (this.#closed || this.#tcpSockets.size / 2 >= this.#maxTcpConnections) {
      this.#tcpRefused++;
      client.destroy();
      return;
    }
    this.#tcpConnections++;
    const server = connect({ host: target.host, port: target.port, noDelay: true });
    this.#tcpSockets.add(client);
    this.#tcpSockets.add(server);
    const teardown = () => {
      client.destroy();
      server.destroy();
      this.#tcpSockets.delete(client);
      this.#tcpSockets.delete(server);
    };
    client.on('error', teardown);
    server.on('error', teardown);
    client.on('close', () => this.#tcpSockets.delete(client));
    server.on('close', () => this.#tcpSockets.delete(server));
    this.#pipeTcp(client, server, this.up);
    this.#pipeTcp(server, client, this.down);
  }

  /**
   * One direction of a TCP connection through the link, in MSS-sized
   * segments, written in order by one pump. Nothing is ever dropped (TCP would
   * resend it): a full queue or an outage pauses the reader instead, and
   * segments in flight when the link drops arrive after it comes back.
   */
  #pipeTcp(from: TcpSocket, to: TcpSocket, direction: LinkDirection): void {
    const pending: { segment: Buffer; deliverAtMs: number; wireBytes: number }[] = [];
    let pumpAtMs = Infinity;
    let ended = false;
    let paused = false;
    const resume = () => {
      paused = false;
      if (!from.destroyed) from.resume();
    };
    const pump = () => {
      pumpAtMs = Infinity;
      if (this.#closed || to.destroyed) return;
      if (this.#inOutage) return; // shiftForOutage reschedules

      const now = performance.now();
      while (pending.length > 0 && pending[0]!.deliverAtMs <= now + 0.5) {
        const { segment, wireBytes } = pending.shift()!;
        direction.delivered(wireBytes);
        to.write(segment);
      }
      if (pending.length > 0) schedule();
      else if (ended) to.end();
    };
    const schedule = () => {
      const next = pending[0];
      if (!next || next.deliverAtMs >= pumpAtMs) return;
      pumpAtMs = next.deliverAtMs;
      this.#later(next.deliverAtMs, pump);
    };
    // A TCP sender stalls through an outage: what it had in flight arrives that much later.
    const shiftForOutage = (outageMs: number) => {
      for (const entry of pending) entry.deliverAtMs += outageMs;
      pumpAtMs = Infinity;
      schedule();
    };
    this.#tcpPipes.add(shiftForOutage);
    to.once('close', () => this.#tcpPipes.delete(shiftForOutage));
    from.on('data', (chunk: Buffer) => {
      const now = performance.now();
      for (let offset = 0; offset < chunk.length; offset += TCP_MSS) {
        const segment = chunk.subarray(offset, offset + TCP_MSS);
        const verdict = direction.offer(segment.length, now, true);
        if (verdict.deliver) pending.push({ segment, deliverAtMs: verdict.deliverAtMs, wireBytes: verdict.wireBytes });
      }
      schedule();
      if (paused) return;
      if (this.#inOutage) {
        from.pause();
        paused = true;
        this.#onOutageEnd.add(resume);
      } else if (direction.queuedBytes(now) > direction.spec.queueBytes) {
        from.pause();
        paused = true;
        this.#later(direction.drainedBelowAt(direction.spec.queueBytes / 2, now), resume);
      }
    });
    from.on('end', () => {
      ended = true;
      if (pending.length === 0) to.end();
    });
    from.on('close', () => {
      ended = true;
      if (pending.length === 0) to.destroy();
    });
  }

  #scheduleOutages(schedule: OutageSchedule): void {
    if (!(schedule.durationMs > 0) || !(schedule.everyMs > schedule.durationMs)) {
      throw new Error(`outage schedule: durationMs must be > 0 and everyMs > durationMs (got ${schedule.durationMs}, ${schedule.everyMs})`);
    }
    const cycle = () => {
      this.setOutage(true);
      this.#later(performance.now() + schedule.durationMs, () => this.setOutage(false));
      this.#later(performance.now() + schedule.everyMs, cycle);
    };
    this.#later(performance.now() + schedule.firstAtMs, cycle);
  }

  #sweepIdleMappings(): void {
    const cutoff = performance.now() - this.#udpIdleMs;
    for (const mappings of this.#udpMappings.values()) {
      for (const [key, mapping] of mappings) {
        if (mapping.lastUsedMs >= cutoff) continue;
        mapping.upstream.close();
        mappings.delete(key);
      }
    }
  }
}
