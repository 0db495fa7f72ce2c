import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { cpus, release } from 'node:os';
import type { types } from 'mediasoup';
import type { HoichanConfig } from '../config/schema.js';
import { createLogger } from '../common/logger.js';
import { INGEST_RECV_BUFFER_BYTES, webRtcListenInfos } from './addresses.js';
import { loadMediasoup } from './workerBinary.js';

const log = createLogger('worker-pool');

/** One mediasoup worker process and what it owns that the pool configured. */
export interface MediaWorker {
  /** Stable slot: a replacement worker takes the dead one's slot and ports. */
  readonly slot: number;
  readonly worker: types.Worker;
  readonly webRtcServer: types.WebRtcServer;
  readonly webRtcPort: number;
  /** This worker's slice of media.rtcMinPort..rtcMaxPort: the portRange of its plain (ingest) transports. */
  readonly rtcMinPort: number;
  readonly rtcMaxPort: number;
  /** The worker sends with io_uring (Linux 6+, not disabled by media.ioUring nor refused by a seccomp filter). */
  readonly ioUring: boolean;
  /** Live mediasoup objects, kept by the worker's observer: the load measure. */
  readonly counts: { routers: number; transports: number; producers: number; consumers: number };
}

export interface WorkerPoolEvents {
  /** A worker process died; its routers are already closed. */
  workerdied: [dead: MediaWorker, error: Error];
  workerreplaced: [replacement: MediaWorker];
}

type MediaConfig = HoichanConfig['media'];

const RESPAWN_DELAYS_MS = [0, 500, 1000, 2000, 5000];

/**
 * A pool of mediasoup workers, one per core by default. Each worker has its own
 * WebRtcServer on one fixed UDP+TCP port (hospital firewalls open a few ports,
 * not a range) and a disjoint slice of the RTC port range that its plain
 * transports take as their listen portRange. A worker that dies is replaced in
 * the same slot.
 */
export class WorkerPool extends EventEmitter<WorkerPoolEvents> {
  readonly #config: MediaConfig;
  readonly #slots: (MediaWorker | undefined)[];
  #closed = false;
  readonly #waiters: (() => void)[] = [];
  #restarts = 0;
  #ioUringFallbackLogged = false;

  private constructor(config: MediaConfig, size: number) {
    super();
    this.#config = config;
    this.#slots = new Array<MediaWorker | undefined>(size).fill(undefined);
  }

  static async create(config: MediaConfig): Promise<WorkerPool> {
    const size = config.numWorkers > 0 ? config.numWorkers : cpus().length;
    const pool = new WorkerPool(config, size);
    try {
      await Promise.all(pool.#slots.map((_, slot) => pool.#spawn(slot)));
    } catch (err) {
      pool.close();
      throw err;
    }
    log.info({ workers: size, ioUring: pool.workers.some((w) => w.ioUring) }, 'worker pool ready');
    warnIfRecvBufferCapped();
    return pool;
  }

  get size(): number {
    return this.#slots.length;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** Live workers, in slot order. */
  get workers(): MediaWorker[] {
    return this.#slots.filter((w): w is MediaWorker => w !== undefined && !w.worker.died && !w.worker.closed);
  }

  /** Ready when every slot has a live worker. */
  get ready(): boolean {
    return !this.#closed && this.workers.length === this.#slots.length;
  }

  /** The live worker with the least load (transports, then routers), waiting for one if all are respawning. */
  async leastLoaded(): Promise<MediaWorker> {
    for (;;) {
      if (this.#closed) throw new Error('worker pool is closed');
      const live = this.workers;
      if (live.length > 0) return live.reduce((best, w) => (compareWorkerLoad(w, best) < 0 ? w : best));
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const w of this.#slots) w?.worker.close();
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #portSlice(slot: number): { min: number; max: number } {
    const { rtcMinPort, rtcMaxPort } = this.#config;
    const width = Math.floor((rtcMaxPort - rtcMinPort + 1) / this.#slots.length);
    const min = rtcMinPort + slot * width;
    return { min, max: min + width - 1 };
  }

  async #spawn(slot: number): Promise<MediaWorker> {
    const mediasoup = await loadMediasoup();
    const ports = this.#portSlice(slot);
    const webRtcPort = this.#config.webRtcServerPort + slot;
    // No worker-wide rtcMinPort/rtcMaxPort (deprecated since mediasoup 3.13):
    // every listen info names its own port or portRange.
    const worker = await mediasoup.createWorker({
      logLevel: this.#config.workerLogLevel,
      disableLiburing: !this.#config.ioUring,
      appData: { slot },
    });
    let webRtcServer: types.WebRtcServer;
    const listenInfos = webRtcListenInfos(this.#config.listenIp, this.#config.announcedIp, webRtcPort);
    try {
      webRtcServer = await worker.createWebRtcServer({ listenInfos });
    } catch (err) {
      worker.close();
      throw new Error(`worker ${slot}: cannot listen on WebRTC port ${webRtcPort} (udp+tcp): ${(err as Error).message}`);
    }
    const ioUring = await usesIoUring(worker);
    const entry: MediaWorker = {
      slot,
      worker,
      webRtcServer,
      webRtcPort,
      rtcMinPort: ports.min,
      rtcMaxPort: ports.max,
      ioUring,
      counts: { routers: 0, transports: 0, producers: 0, consumers: 0 },
    };
    this.#observe(entry);
    worker.on('died', (error) => this.#onDied(entry, error));
    this.#slots[slot] = entry;
    const candidates = [...new Set(listenInfos.map((i) => i.announcedIp ?? i.ip))];
    log.info({ slot, pid: worker.pid, webRtcPort, candidates, rtcPorts: `${ports.min}-${ports.max}`, ioUring }, 'worker started');
    if (!ioUring && this.#config.ioUring && !this.#ioUringFallbackLogged) {
      this.#ioUringFallbackLogged = true;
      // Not an error: libuv's sendmsg path is what mediasoup 3.12 always used.
      log.warn(
        { kernel: release() },
        'io_uring unavailable (kernel older than 6, or io_uring refused, e.g. by a container seccomp profile); workers send with libuv',
      );
    }
    for (const wake of this.#waiters.splice(0)) wake();
    return entry;
  }

  #observe(entry: MediaWorker): void {
    const { counts } = entry;
    entry.worker.observer.on('newrouter', (router) => {
      counts.routers++;
      router.observer.once('close', () => counts.routers--);
      router.observer.on('newtransport', (transport) => {
        counts.transports++;
        transport.observer.once('close', () => counts.transports--);
        transport.observer.on('newproducer', (producer) => {
          counts.producers++;
          producer.observer.once('close', () => counts.producers--);
        });
        transport.observer.on('newconsumer', (consumer) => {
          counts.consumers++;
          consumer.observer.once('close', () => counts.consumers--);
        });
      });
    });
  }

  #onDied(dead: MediaWorker, error: Error): void {
    if (this.#closed) return;
    this.#restarts++;
    log.error({ slot: dead.slot, pid: dead.worker.pid, err: error.message }, 'mediasoup worker died; replacing it');
    if (this.#slots[dead.slot] === dead) this.#slots[dead.slot] = undefined;
    this.emit('workerdied', dead, error);
    void this.#respawn(dead.slot);
  }

  async #respawn(slot: number): Promise<void> {
    for (let attempt = 0; !this.#closed; attempt++) {
      const delay = RESPAWN_DELAYS_MS[Math.min(attempt, RESPAWN_DELAYS_MS.length - 1)]!;
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
      if (this.#closed) return;
      try {
        const replacement = await this.#spawn(slot);
        if (this.#closed) {
          replacement.worker.close();
          return;
        }
        this.emit('workerreplaced', replacement);
        return;
      } catch (err) {
        log.error({ slot, attempt, err: (err as Error).message }, 'worker respawn failed; retrying');
      }
    }
  }
}

/** Orders workers by load: transports (one per peer direction, ingest and pipe), then routers. */
export function compareWorkerLoad(a: MediaWorker, b: MediaWorker): number {
  return a.counts.transports - b.counts.transports || a.counts.routers - b.counts.routers;
}

/**
 * Whether the worker enabled io_uring: it probes the kernel at start and says
 * so only in its dump (a 'liburing' section with its send counters), so the
 * pool can log the truth rather than what it asked for.
 */
async function usesIoUring(worker: types.Worker): Promise<boolean> {
  try {
    return (await worker.dump()).liburing !== undefined;
  } catch {
    return false;
  }
}

/**
 * Linux caps SO_RCVBUF requests at net.core.rmem_max (212 992 B by default on
 * many distributions): an ingest socket then holds fewer packets than
 * INGEST_RECV_BUFFER_BYTES and a keyframe burst can overflow it again. Said
 * once at start, with the fix.
 */
function warnIfRecvBufferCapped(path = '/proc/sys/net/core/rmem_max'): void {
  let rmemMax: number;
  try {
    rmemMax = Number(readFileSync(path, 'utf8').trim());
  } catch {
    return; // not Linux, or /proc hidden: nothing to say
  }
  if (Number.isFinite(rmemMax) && rmemMax < INGEST_RECV_BUFFER_BYTES) {
    log.warn(
      { rmemMax, wanted: INGEST_RECV_BUFFER_BYTES },
      `ingest sockets get a smaller receive buffer than wanted; a keyframe burst may be dropped. Raise it: sysctl -w net.core.rmem_max=${INGEST_RECV_BUFFER_BYTES}`,
    );
  }
}
