import type { types } from 'mediasoup';
import { mediaCodecs } from './codecs.js';
import type { MediaWorker } from './WorkerPool.js';

/**
 * One router of a conference, on one worker, and the producers of the
 * conference's other routers piped into it. A conference has at most one per
 * worker, so a piped producer keeps its id (mediasoup's keepId needs the two
 * routers on different workers) and a consumer on any router names a
 * producer by the id its owner was told.
 */
export class ConferenceRouter {
  readonly worker: MediaWorker;
  readonly router: types.Router;
  /** Pipe producers here, by the id of the producer they carry; a pipe being made is its promise. */
  readonly #pipes = new Map<string, Promise<types.Producer>>();
  /** Consumers on this router's transports (WebRTC, plain and pipe): the forwarding load. */
  #consumers = 0;

  private constructor(worker: MediaWorker, router: types.Router) {
    this.worker = worker;
    this.router = router;
    router.observer.on('newtransport', (transport) => {
      transport.observer.on('newconsumer', (consumer) => {
        this.#consumers++;
        consumer.observer.once('close', () => this.#consumers--);
      });
    });
  }

  static async open(worker: MediaWorker, conferenceId: string): Promise<ConferenceRouter> {
    const router = await worker.worker.createRouter({ mediaCodecs, appData: { conferenceId } });
    return new ConferenceRouter(worker, router);
  }

  get id(): string {
    return this.router.id;
  }
  get closed(): boolean {
    return this.router.closed;
  }
  get consumers(): number {
    return this.#consumers;
  }
  /** Producers of other routers piped here and live (being made not counted). */
  get pipes(): number {
    return this.#pipeCount;
  }
  #pipeCount = 0;

  /** This router's pipe of producerId, if one is made or being made. */
  hasPipe(producerId: string): boolean {
    return this.#pipes.has(producerId);
  }

  /**
   * Makes `producerId` (a producer of `source`) consumable here: the first
   * call pipes it, later calls share that pipe. The pipe closes with the
   * producer (mediasoup closes the pipe producer with its pipe consumer), and
   * with either router; it is then forgotten, so the next consumer here
   * builds it again.
   */
  pipeFrom(source: ConferenceRouter, producerId: string): Promise<types.Producer> {
    let pipe = this.#pipes.get(producerId);
    if (pipe) return pipe;
    // Pipes stay on this machine: loopback UDP, no SCTP (no data channels here), no SRTP (never leaves the host).
    // Both ends take ports within media.rtcMinPort-rtcMaxPort (the two workers' slices and what lies between):
    // mediasoup gives both pipe transports one listenInfo, and a port taken by the other worker is retried.
    const portRange = { min: Math.min(source.worker.rtcMinPort, this.worker.rtcMinPort), max: Math.max(source.worker.rtcMaxPort, this.worker.rtcMaxPort) };
    pipe = source.router
      .pipeToRouter({ producerId, router: this.router, listenInfo: { protocol: 'udp', ip: '127.0.0.1', portRange }, enableSctp: false })
      .then(({ pipeProducer }) => {
        if (!pipeProducer) throw new Error(`pipe of producer ${producerId} made no producer`);
        this.#pipeCount++;
        pipeProducer.observer.once('close', () => {
          this.#pipeCount--;
          if (this.#pipes.get(producerId) === pipe) this.#pipes.delete(producerId);
        });
        return pipeProducer;
      });
    this.#pipes.set(producerId, pipe);
    pipe.catch(() => {
      if (this.#pipes.get(producerId) === pipe) this.#pipes.delete(producerId);
    });
    return pipe;
  }

  close(): void {
    this.router.close();
  }
}
