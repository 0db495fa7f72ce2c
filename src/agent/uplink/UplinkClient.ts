// The agent's side of the uplink: one socket.io connection to <hub>/uplink,
// re-made with exponential backoff and jitter whenever it drops. At each
// connect: clock exchange, hello (the hub answers where each device resumes),
// then per device a window of batches in seq order, each acked by the hub
// with its stored watermark, which the journal then records. A batch refused
// as rate_limited keeps the connection: the agent pauses (site-wide, growing
// per refusal), shrinks its batches so one fits the hub's bucket, and resends
// from the last ack. Any other refused batch or a missing ack makes the agent
// reconnect and resend from the last ack.

import { EventEmitter } from 'node:events';
import { io, type Socket } from 'socket.io-client';
import type { DeviceInfo, Reading } from '../../devices/reading.js';
import { UPLINK_NAMESPACE, UPLINK_PROTOCOL_VERSION, type HelloMessage, type HelloResult, type StatusMessage, type UplinkReply } from '../../streams/protocol.js';
import type { Logger } from '../../common/logger.js';
import { hubUrlProblem, hubUrls, readToken, type HubSettings } from '../config.js';
import { Backoff } from '../../common/backoff.js';
import { bestEstimate, type ClockEstimate, type ClockSample } from './clock.js';
import { BacklogBudget, DeviceOutbox, type OutboxJournal } from './DeviceOutbox.js';

/** The journal as the uplink uses it. */
export interface UplinkJournal extends OutboxJournal {
  ack(deviceId: string, seq: number): Promise<void>;
  ackedSeq(deviceId: string): number;
  depth(): { devices: Record<string, { pending: number }>; pending: number; bytes: number };
}

export interface UplinkClientOptions {
  siteId: string;
  hub: HubSettings;
  journal: UplinkJournal;
  /** The site's devices as configured, with their current status. */
  devices: () => DeviceInfo[];
  /** Frames rejected per protocol since start (driver counters), reported to the hub. */
  parseErrors?: () => Record<string, number>;
  logger: Logger;
}

export interface UplinkClientEvents {
  connected: [ClockEstimate];
  disconnected: [reason: string];
  /** The hub stored everything of deviceId up to seq. */
  acked: [deviceId: string, seq: number];
  /** A renewed token file was presented on the live connection (refreshToken); exp is the new deadline. */
  tokenRefreshed: [exp: number];
}

const CLOCK_ROUNDS = 5;
/** After rate_limited: the first pause, doubled per further refusal up to LIMIT_MAX_MS, back to this after an accepted batch. */
const LIMIT_MIN_MS = 250;
const LIMIT_MAX_MS = 4000;
/** After rate_limited batches halve down to this many readings, so one fits the little the hub's bucket refills in a pause. */
const LIMIT_MIN_BATCH = 10;
const HANDSHAKE_TIMEOUT_MS = 10_000;

export class UplinkClient extends EventEmitter<UplinkClientEvents> {
  readonly #o: UplinkClientOptions;
  readonly #log: Logger;
  readonly #outboxes = new Map<string, DeviceOutbox>();
  readonly #budget: BacklogBudget;
  readonly #backoff: Backoff;
  #socket: Socket | undefined;
  /** Bumped per connection, so callbacks of an old connection do nothing. */
  #epoch = 0;
  #ready = false;
  #stopped = true;
  #clock: ClockEstimate | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #tokenTimer: NodeJS.Timeout | undefined;
  #statusSoon: NodeJS.Timeout | undefined;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  readonly #journalAcking = new Set<string>();
  /** The hub answered rate_limited: nothing goes before this time, on any device (the hub's bucket is per site). */
  #limitedUntil = 0;
  #limitDelayMs = LIMIT_MIN_MS;
  #limitLoggedAt = 0;
  /** Readings per batch: halved per rate_limited pause, doubled back per accepted batch up to hub.batchReadings. */
  #batchCap: number;
  /** Which of hub.url's hubs the next connection goes to (several: a cluster, docs/SCALING.md). */
  #hubIndex = 0;

  constructor(options: UplinkClientOptions) {
    super();
    // Settings built in code skip the config schema: the same transport rule holds for them.
    for (const url of hubUrls(options.hub)) {
      const problem = hubUrlProblem(url, options.hub.allowInsecure);
      if (problem) throw new Error(`hub.url: ${problem}`);
    }
    this.#o = options;
    this.#log = options.logger;
    this.#budget = new BacklogBudget(options.hub.catchUpReadingsPerSecond);
    // Full jitter: many sites coming back after a hub restart must not all knock at once.
    this.#backoff = new Backoff({ minMs: options.hub.reconnectMinMs, maxMs: options.hub.reconnectMaxMs, jitter: 'full' });
    this.#batchCap = options.hub.batchReadings;
  }

  get connected(): boolean {
    return this.#ready;
  }

  get clock(): ClockEstimate | undefined {
    return this.#clock;
  }

  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#loop = this.#connectLoop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#socket?.disconnect();
    this.#wake?.();
    clearInterval(this.#statusTimer);
    clearTimeout(this.#statusSoon);
    clearTimeout(this.#tokenTimer);
    await this.#loop;
  }

  /** Readings just made durable by the journal (the live path). */
  offer(readings: readonly Reading[]): void {
    const byDevice = new Map<string, Reading[]>();
    for (const r of readings) {
      let list = byDevice.get(r.deviceId);
      if (!list) byDevice.set(r.deviceId, (list = []));
      list.push(r);
    }
    for (const [deviceId, list] of byDevice) {
      const outbox = this.#outbox(deviceId);
      // While the link is down the journal alone holds the backlog (and its cap policy decides what stays).
      if (!this.#ready || !outbox.accepted) continue;
      outbox.offer(list);
      for (const r of list) {
        // An alarm must not wait behind its device's backlog: a notice goes now, the reading in order later.
        if (r.kind === 'alarm' && outbox.isBehind(r.seq, this.#o.hub.batchReadings)) {
          this.#socket?.emit('alarm', { deviceId, reading: r }, () => undefined);
        }
      }
      void this.#pump(outbox);
    }
  }

  /** A device's status changed: tell the hub soon (coalesced). */
  statusChanged(): void {
    if (!this.#ready || this.#statusSoon) return;
    this.#statusSoon = setTimeout(() => {
      this.#statusSoon = undefined;
      this.#sendStatus();
    }, 50);
  }

  /** Per device: cursor, ack, batches in flight. */
  outboxes(): Array<{ deviceId: string; cursor: number; acked: number; inFlight: number }> {
    return [...this.#outboxes.values()].map((o) => ({ deviceId: o.deviceId, cursor: o.cursor, acked: o.acked, inFlight: o.inFlight }));
  }

  // ---- connection --------------------------------------------------------

  async #connectLoop(): Promise<void> {
    while (!this.#stopped) {
      let reason: string;
      try {
        reason = await this.#session();
      } catch (err) {
        reason = (err as Error).message;
      }
      this.#ready = false;
      clearInterval(this.#statusTimer);
      clearTimeout(this.#tokenTimer);
      this.#socket?.removeAllListeners();
      this.#socket?.disconnect();
      this.#socket = undefined;
      if (this.#stopped) break;
      const urls = hubUrls(this.#o.hub);
      // A cluster: the next hub in the list (the one that failed may be gone); the Redis-shared watermark resumes us there.
      this.#hubIndex = (this.#hubIndex + 1) % urls.length;
      const delay = this.#backoff.next();
      this.#log.warn({ reason, retryInMs: delay, ...(urls.length > 1 ? { next: urls[this.#hubIndex] } : {}) }, 'uplink down; reconnecting');
      this.emit('disconnected', reason);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = undefined;
    }
  }

  /** One connection, from connect to disconnect; resolves with why it ended. */
  async #session(): Promise<string> {
    const token = await readToken(this.#o.hub);
    const epoch = ++this.#epoch;
    const hubUrl = hubUrls(this.#o.hub)[this.#hubIndex]!;
    const socket = io(new URL(UPLINK_NAMESPACE, hubUrl).href, {
      auth: { token },
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: HANDSHAKE_TIMEOUT_MS,
    });
    this.#socket = socket;
    const ended = new Promise<string>((resolve) => {
      socket.once('disconnect', (reason) => resolve(`disconnected: ${reason}`));
      socket.once('connect_error', (err) => resolve(`connect failed: ${err.message}`));
    });
    const connected = new Promise<boolean>((resolve) => {
      socket.once('connect', () => resolve(true));
      void ended.then(() => resolve(false));
    });
    if (!(await connected) || this.#stopped) return ended;

    this.#clock = await this.#measureClock(socket);
    const hello = await this.#hello(socket, this.#clock);
    if (epoch !== this.#epoch) return ended;
    for (const outbox of this.#outboxes.values()) outbox.accepted = false;
    for (const { deviceId, acked } of hello.devices) {
      const outbox = this.#outbox(deviceId);
      outbox.reset(acked);
      this.#recordAck(outbox);
    }
    for (const r of hello.rejected) this.#log.error({ deviceId: r.deviceId, code: r.code, why: r.message }, 'hub refused a device; its readings stay in the journal');
    this.#ready = true;
    this.#backoff.reset();
    this.#log.info({ hub: hubUrl, devices: hello.devices.length, clockOffsetMs: Math.round(this.#clock.offsetMs), rttMs: Math.round(this.#clock.rttMs) }, 'uplink connected');
    this.emit('connected', this.#clock);
    this.#sendStatus();
    this.#statusTimer = setInterval(() => this.#sendStatus(), this.#o.hub.statusIntervalMs);
    this.#watchToken(socket, epoch, token);
    for (const outbox of this.#outboxes.values()) void this.#pump(outbox);
    return ended;
  }

  /**
   * The hub closes the connection at the token's exp. With a tokenFile, a
   * renewed file is presented on the live connection (refreshToken) before
   * then, so a renewal costs no reconnect: the file is looked at from half the
   * token's remaining life (at most an hour) before exp, and again at
   * shrinking intervals until it changes.
   */
  #watchToken(socket: Socket, epoch: number, token: string): void {
    if (!this.#o.hub.tokenFile) return;
    const exp = expOf(token);
    if (exp === undefined) return;
    const remaining = exp * 1000 - Date.now();
    // setTimeout holds at most ~24.8 days and agent tokens may live 30: long waits are chained.
    const schedule = (delay: number) => {
      const at = Date.now() + Math.max(delay, 200);
      const wait = () => {
        this.#tokenTimer = setTimeout(() => (Date.now() < at ? wait() : void check()), Math.min(at - Date.now(), 2 ** 31 - 1));
      };
      wait();
    };
    const check = async () => {
      if (epoch !== this.#epoch || this.#stopped) return;
      let next: string;
      try {
        next = await readToken(this.#o.hub);
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'cannot read the token file; will retry');
        next = token;
      }
      const left = exp * 1000 - Date.now();
      if (next === token || expOf(next) === undefined) {
        if (left > 1000) schedule(Math.min(left / 2, 60_000));
        return;
      }
      const reply = (await socket.timeout(HANDSHAKE_TIMEOUT_MS).emitWithAck('refreshToken', { token: next }).catch((err: Error) => ({ ok: false, error: { code: 'timeout', message: err.message } }))) as UplinkReply<{ exp: number }>;
      if (epoch !== this.#epoch) return;
      if (!reply.ok) {
        // The hub cuts the connection at exp; the reconnect presents whatever the file holds then.
        this.#log.error({ code: reply.error.code, why: reply.error.message }, 'hub refused the renewed token; the uplink will drop at the old token expiry');
        return;
      }
      this.#log.info({ exp: reply.exp }, 'uplink token renewed on the live connection');
      this.emit('tokenRefreshed', reply.exp);
      this.#watchToken(socket, epoch, next);
    };
    schedule(remaining - Math.min(remaining / 2, 3_600_000));
  }

  async #measureClock(socket: Socket): Promise<ClockEstimate> {
    const samples: ClockSample[] = [];
    for (let i = 0; i < CLOCK_ROUNDS; i++) {
      const t0 = Date.now();
      const reply = (await socket.timeout(HANDSHAKE_TIMEOUT_MS).emitWithAck('clock', { t0 })) as UplinkReply<{ t1: number; t2: number }>;
      const t3 = Date.now();
      if (!reply.ok) throw new Error(`clock refused: ${reply.error.message}`);
      samples.push({ t0, t1: reply.t1, t2: reply.t2, t3 });
    }
    return bestEstimate(samples)!;
  }

  async #hello(socket: Socket, clock: ClockEstimate): Promise<HelloResult> {
    const { journal } = this.#o;
    const message: HelloMessage = {
      version: UPLINK_PROTOCOL_VERSION,
      siteId: this.#o.siteId,
      clock,
      devices: this.#o.devices().map((d) => ({
        deviceId: d.deviceId,
        conferenceId: d.conferenceId,
        type: d.type,
        model: d.model,
        protocol: d.protocol as HelloMessage['devices'][number]['protocol'],
        status: d.status,
        ...(d.reason !== undefined ? { reason: d.reason } : {}),
        channels: d.channels,
        acked: journal.ackedSeq(d.deviceId),
        lastSeq: journal.lastSeq(d.deviceId),
      })),
    };
    const reply = (await socket.timeout(HANDSHAKE_TIMEOUT_MS).emitWithAck('hello', message)) as UplinkReply<HelloResult>;
    if (!reply.ok) throw new Error(`hello refused: ${reply.error.code}: ${reply.error.message}`);
    return reply;
  }

  // ---- sending -----------------------------------------------------------

  async #pump(outbox: DeviceOutbox): Promise<void> {
    const { batchReadings, windowBatches, ackTimeoutMs } = this.#o.hub;
    const epoch = this.#epoch;
    const socket = this.#socket;
    if (outbox.pumping) {
      outbox.pumpAgain = true; // picked up when the running pump finishes
      return;
    }
    outbox.pumping = true;
    outbox.pumpAgain = false;
    try {
      while (this.#ready && socket && epoch === this.#epoch && outbox.accepted) {
        if (outbox.refused) {
          // Later batches of the window may still be answered (refused too: they follow a seq gap); the acks settle first.
          if (outbox.inFlight > 0) return;
          outbox.cursor = outbox.acked;
          outbox.refused = false;
        }
        const wait = this.#limitedUntil - Date.now();
        if (wait > 0) {
          outbox.resumeTimer ??= setTimeout(() => {
            outbox.resumeTimer = undefined;
            void this.#pump(outbox);
          }, wait).unref();
          return;
        }
        // While limited, one batch at a time: a refusal then costs one batch of the hub's tokens, not a window of them.
        if (outbox.inFlight >= (this.#batchCap < batchReadings ? 1 : windowBatches)) return;
        const next = await outbox.next(this.#batchCap, this.#budget);
        if (epoch !== this.#epoch || !this.#ready) return;
        if (next.kind === 'idle') return;
        if (next.kind === 'throttled') {
          setTimeout(() => void this.#pump(outbox), next.retryMs).unref();
          return;
        }
        const { batch } = next;
        outbox.cursor = batch.to;
        outbox.inFlight++;
        socket.timeout(ackTimeoutMs).emit('batch', batch, (err: Error | null, reply: UplinkReply<{ acked: number }>) => {
          if (epoch !== this.#epoch) return;
          outbox.inFlight--;
          if (err) {
            if (!socket.connected) return; // the connection is gone; the next one resends from the last ack
            return this.#resync(socket, `no ack for ${batch.deviceId} ${batch.from}..${batch.to} within ${ackTimeoutMs} ms`);
          }
          if (!reply.ok) {
            const fields = { deviceId: batch.deviceId, from: batch.from, to: batch.to, code: reply.error.code, why: reply.error.message };
            // The hub stored nothing of a rate_limited batch, nor of the window's later batches (they then start past a seq gap:
            // conflict): the connection stays, and the pump resends from the last ack after a pause. A reconnect would only
            // spend more of the site's tokens on the handshake and resend the whole window.
            if (reply.error.code === 'rate_limited' || (reply.error.code === 'conflict' && outbox.refused)) {
              if (reply.error.code === 'rate_limited') this.#rateLimited(fields);
              outbox.refused = true;
              void this.#pump(outbox);
              return;
            }
            this.#log.error(fields, 'hub refused a batch');
            return this.#resync(socket, `batch refused: ${reply.error.code}`);
          }
          this.#limitDelayMs = LIMIT_MIN_MS;
          this.#batchCap = Math.min(batchReadings, this.#batchCap * 2);
          if (reply.acked > outbox.acked) {
            outbox.acked = reply.acked;
            this.#recordAck(outbox);
            this.emit('acked', outbox.deviceId, reply.acked);
          }
          void this.#pump(outbox);
        });
      }
    } catch (err) {
      this.#log.error({ deviceId: outbox.deviceId, err: (err as Error).message }, 'reading the journal for the uplink failed');
      this.#resync(socket, 'journal read failed');
    } finally {
      outbox.pumping = false;
      if (outbox.pumpAgain) void this.#pump(outbox);
    }
  }

  /**
   * The hub's bucket for this site is empty: pause every device, longer per
   * refusal, and halve the batches. Refusals of batches sent before the pause
   * began count once.
   */
  #rateLimited(fields: Record<string, unknown>): void {
    const now = Date.now();
    if (now < this.#limitedUntil) return;
    this.#limitedUntil = now + this.#limitDelayMs;
    this.#batchCap = Math.max(Math.min(LIMIT_MIN_BATCH, this.#o.hub.batchReadings), Math.floor(this.#batchCap / 2));
    // Over the limit for minutes, a site would log every pause: one warning per 10 s, the rest at debug.
    const warn = now - this.#limitLoggedAt > 10_000;
    if (warn) this.#limitLoggedAt = now;
    this.#log[warn ? 'warn' : 'debug']({ ...fields, retryInMs: this.#limitDelayMs, batchReadings: this.#batchCap }, 'hub rate-limits this site: resending slower (lower hub.catchUpReadingsPerSecond or raise the hub\'s devices.uplinkReadingsPerSecond)');
    this.#limitDelayMs = Math.min(LIMIT_MAX_MS, this.#limitDelayMs * 2);
  }

  /** Something is off on this connection: start a new one and resend from the last ack. */
  #resync(socket: Socket | undefined, why: string): void {
    if (socket !== this.#socket || !socket) return;
    this.#log.warn({ why }, 'uplink resync');
    socket.disconnect();
  }

  /** Writes the hub's ack to the journal (one write in flight per device; later acks coalesce). */
  #recordAck(outbox: DeviceOutbox): void {
    const { journal } = this.#o;
    const id = outbox.deviceId;
    if (this.#journalAcking.has(id)) return;
    const target = Math.min(outbox.acked, journal.lastSeq(id));
    if (target <= journal.ackedSeq(id)) return;
    this.#journalAcking.add(id);
    journal
      .ack(id, target)
      .catch((err: Error) => this.#log.warn({ deviceId: id, err: err.message }, 'journal ack failed'))
      .finally(() => {
        this.#journalAcking.delete(id);
        if (Math.min(outbox.acked, journal.lastSeq(id)) > journal.ackedSeq(id) && !this.#stopped) this.#recordAck(outbox);
      });
  }

  #sendStatus(): void {
    const socket = this.#socket;
    if (!this.#ready || !socket) return;
    const depth = this.#o.journal.depth();
    const message: StatusMessage = {
      devices: this.#o.devices().map((d) => ({ deviceId: d.deviceId, status: d.status, ...(d.reason !== undefined ? { reason: d.reason } : {}), channels: d.channels })),
      journal: {
        pending: depth.pending,
        bytes: depth.bytes,
        devices: Object.fromEntries(Object.entries(depth.devices).map(([id, d]) => [id, d.pending])),
      },
      ...(this.#o.parseErrors ? { parseErrors: this.#o.parseErrors() } : {}),
    };
    socket.emit('status', message, (reply: UplinkReply) => {
      if (!reply.ok) this.#log.warn({ code: reply.error.code, why: reply.error.message }, 'hub refused a status report');
    });
  }

  #outbox(deviceId: string): DeviceOutbox {
    let outbox = this.#outboxes.get(deviceId);
    if (!outbox) this.#outboxes.set(deviceId, (outbox = new DeviceOutbox(deviceId, this.#o.journal)));
    return outbox;
  }
}

/** The exp claim of a JWT, read without verifying it (the hub verifies; the agent only plans ahead). */
function expOf(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as { exp?: unknown };
    return typeof payload.exp === 'number' ? payload.exp : undefined;
  } catch {
    return undefined;
  }
}
