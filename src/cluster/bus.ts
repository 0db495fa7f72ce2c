import { randomUUID } from 'node:crypto';
import { HoichanError } from '../common/errors.js';
import { createLogger } from '../common/logger.js';
import { describeIssue } from '../common/zodIssues.js';
import { busMessageSchema, type BusMessage } from './messages.js';
import { keys, type RedisConnection } from './redis.js';

const log = createLogger('cluster-bus');

/** A message as sent: the bus stamps the sending hub's id. */
export type Outgoing = BusMessage extends infer M ? (M extends BusMessage ? Omit<M, 'hub'> : never) : never;

type Handler = (message: BusMessage) => void;

/**
 * The cluster bus: Redis pub/sub between hubs. A channel per conference
 * (peer and device events of that conference), one per hub (requests to it
 * and replies for it), one for the whole cluster. Every message is checked
 * against its schema on arrival and bounded in size before it is parsed;
 * a hub ignores its own messages. Pub/sub delivers at most once and in order
 * per publisher: what is lost while Redis is away is made good by snapshots
 * (peers, producers) and the history store (device readings), not by the bus.
 */
export class ClusterBus {
  readonly #pub: RedisConnection;
  readonly #sub: RedisConnection;
  readonly #hubId: string;
  readonly #maxBytes: number;
  readonly #handler: Handler;
  readonly #pending = new Map<string, { resolve: (m: BusMessage) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  #dropped = 0;

  constructor(pub: RedisConnection, sub: RedisConnection, hubId: string, maxBytes: number, handler: Handler) {
    this.#pub = pub;
    this.#sub = sub;
    this.#hubId = hubId;
    this.#maxBytes = maxBytes;
    this.#handler = handler;
    sub.on('messageBuffer', (_channel: Buffer, payload: Buffer) => this.#receive(payload));
  }

  /** Messages refused on arrival (too big, not JSON, not a known message). */
  get dropped(): number {
    return this.#dropped;
  }

  async start(): Promise<void> {
    await this.#sub.subscribe(keys.busHub(this.#hubId), keys.busCluster);
  }

  subscribeConference(conferenceId: string): Promise<unknown> {
    return this.#sub.subscribe(keys.busConference(conferenceId));
  }

  unsubscribeConference(conferenceId: string): void {
    this.#sub.unsubscribe(keys.busConference(conferenceId)).catch(() => undefined);
  }

  toConference(conferenceId: string, message: Outgoing): void {
    this.#publish(keys.busConference(conferenceId), message);
  }

  toHub(hubId: string, message: Outgoing): void {
    this.#publish(keys.busHub(hubId), message);
  }

  toCluster(message: Outgoing): void {
    this.#publish(keys.busCluster, message);
  }

  /**
   * Sends a request to one hub and waits for the message that carries its
   * requestId (the reply). No reply in `timeoutMs` (the hub is gone, or Redis
   * is away): `unavailable`, naming the hub and the wait.
   */
  request(hubId: string, message: Outgoing & { requestId: string }, timeoutMs: number, what: string): Promise<BusMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(message.requestId);
        reject(new HoichanError('unavailable', `${what}: hub ${hubId} did not answer within ${timeoutMs} ms (cluster.requestTimeoutMs); try again`));
      }, timeoutMs);
      this.#pending.set(message.requestId, { resolve, reject, timer });
      try {
        this.#publish(keys.busHub(hubId), message, true);
      } catch (err) {
        clearTimeout(timer);
        this.#pending.delete(message.requestId);
        reject(err);
      }
    });
  }

  static requestId(): string {
    return randomUUID();
  }

  close(): void {
    for (const { timer, reject } of this.#pending.values()) {
      clearTimeout(timer);
      reject(new HoichanError('unavailable', 'this hub is closing'));
    }
    this.#pending.clear();
  }

  #publish(channel: string, message: Outgoing, throwOnFailure = false): void {
    const text = JSON.stringify({ ...message, hub: this.#hubId });
    if (Buffer.byteLength(text) > this.#maxBytes) {
      log.warn({ type: message.type, bytes: Buffer.byteLength(text), max: this.#maxBytes }, 'cluster message too large; not sent (cluster.maxMessageBytes)');
      if (throwOnFailure) throw new HoichanError('internal', 'cluster message too large');
      return;
    }
    if (this.#pub.status !== 'ready') {
      // Redis is away: nothing queues (snapshots and history make good what peers on other hubs miss).
      if (throwOnFailure) throw new HoichanError('unavailable', 'the cluster bus (Redis) is unreachable; try again');
      return;
    }
    this.#pub.publish(channel, text).catch((err: Error) => log.debug({ err: err.message, type: message.type }, 'publish failed'));
  }

  #receive(payload: Buffer): void {
    if (payload.length > this.#maxBytes) {
      this.#dropped++;
      log.warn({ bytes: payload.length }, 'cluster message over cluster.maxMessageBytes dropped');
      return;
    }
    let json: unknown;
    try {
      json = JSON.parse(payload.toString('utf8'));
    } catch {
      this.#dropped++;
      log.warn('cluster message is not JSON; dropped');
      return;
    }
    const parsed = busMessageSchema.safeParse(json);
    if (!parsed.success) {
      this.#dropped++;
      log.warn({ why: describeIssue(parsed.error) }, 'cluster message refused');
      return;
    }
    const message = parsed.data;
    if (message.hub === this.#hubId) return;
    if ((message.type === 'pipeReply' || message.type === 'pipeRefused') && this.#pending.has(message.requestId)) {
      const pending = this.#pending.get(message.requestId)!;
      this.#pending.delete(message.requestId);
      clearTimeout(pending.timer);
      pending.resolve(message);
      return;
    }
    try {
      this.#handler(message);
    } catch (err) {
      log.error({ type: message.type, err: (err as Error).message }, 'cluster message handler failed');
    }
  }
}
