// The HL7 v2 / MLLP driver: server-mode listeners (one per host:port, shared
// by the devices configured on it) and client-mode PDS connections (one per
// device), feeding one message processor each, with per-device status.

import type { AddressInfo } from 'node:net';
import { createLogger, type Logger } from '../../common/logger.js';
import { DeliveryQueue, type DeliveryCounters } from '../deliveryQueue.js';
import { DeviceDriver, type AcceptResult, type DeviceReadingBody, type ReadingSink } from '../driver.js';
import { PdsClient } from './client.js';
import { hl7DeviceConfigSchema, offsetMinutes, type Hl7DeviceConfig, type ResolvedHl7DeviceConfig } from './config.js';
import type { MllpConnection } from './connection.js';
import { Hl7MessageProcessor, type ProcessOutcome } from './processor.js';
import { DeviceRouter } from './routing.js';
import { Hl7Listener, type ListenerCounters } from './server.js';

export interface Hl7DeviceEntry {
  deviceId: string;
  settings: Hl7DeviceConfig;
}

interface DeviceState {
  deviceId: string;
  settings: ResolvedHl7DeviceConfig;
  lastSeenAt: number;
  /** The server-mode connection its last message came on. */
  connection: MllpConnection | undefined;
}

interface ListenerGroup {
  key: string;
  listener: Hl7Listener;
  deviceIds: string[];
  retryTimer?: NodeJS.Timeout;
}

const LISTEN_RETRY_MS = 2000;
const STOP_DRAIN_TIMEOUT_MS = 2000;
const MAX_DELIVERY_BATCH = 1000;
/**
 * Test hook, never set in production: the agent process kills itself (SIGKILL)
 * right after the journal took a server-mode message and before its ACK is
 * written, the crash the durable resend dedup is for
 * (test/agent/hl7-resend-restart.test.ts).
 */
const FAULT_EXIT_AFTER_JOURNAL = 'HOICHAN_FAULT_HL7_EXIT_AFTER_JOURNAL';

export class Hl7Driver extends DeviceDriver {
  readonly deviceIds: readonly string[];
  readonly #devices = new Map<string, DeviceState>();
  readonly #groups: ListenerGroup[] = [];
  readonly #clients: Array<{ deviceId: string; client: PdsClient; queue: DeliveryQueue }> = [];
  readonly #log: Logger;
  #staleTimer: NodeJS.Timeout | undefined;
  #running = false;
  readonly #exitAfterJournal = process.env[FAULT_EXIT_AFTER_JOURNAL] === '1';

  constructor(entries: readonly Hl7DeviceEntry[], sink: ReadingSink) {
    super(sink);
    this.#log = createLogger('hl7', { devices: entries.map((e) => e.deviceId) });
    for (const entry of entries) {
      if (this.#devices.has(entry.deviceId)) throw new Error(`device ${entry.deviceId} is configured twice`);
      const settings = hl7DeviceConfigSchema.parse(entry.settings);
      this.#devices.set(entry.deviceId, { deviceId: entry.deviceId, settings, lastSeenAt: 0, connection: undefined });
    }
    this.deviceIds = [...this.#devices.keys()];
    if (this.#exitAfterJournal) this.#log.warn(`${FAULT_EXIT_AFTER_JOURNAL}=1: this process will kill itself after journaling a message (test hook)`);

    const servers = new Map<string, DeviceState[]>();
    for (const state of this.#devices.values()) {
      if (state.settings.mode === 'client') {
        this.#clients.push({ deviceId: state.deviceId, ...this.#createClient(state) });
        continue;
      }
      const key = `${state.settings.host}:${state.settings.port}`;
      servers.set(key, [...(servers.get(key) ?? []), state]);
    }
    for (const [key, states] of servers) this.#groups.push(this.#createGroup(key, states));
  }

  /** The bound address of the listener serving a server-mode device (port 0 picks one). */
  serverAddress(deviceId: string): AddressInfo | undefined {
    return this.#groups.find((g) => g.deviceIds.includes(deviceId))?.listener.address;
  }

  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    for (const state of this.#devices.values()) {
      const waiting = state.settings.mode === 'client' ? `connecting to ${state.settings.host}:${state.settings.port}` : 'waiting for messages';
      this.setStatus(state.deviceId, { status: 'offline', reason: waiting });
    }
    await Promise.all(this.#groups.map((g) => this.#listen(g)));
    for (const { client } of this.#clients) client.start();
    const tick = Math.max(50, Math.min(1000, ...[...this.#devices.values()].map((d) => d.settings.staleAfterMs / 4)));
    this.#staleTimer = setInterval(() => this.#checkStale(), tick);
    this.#staleTimer.unref();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    clearInterval(this.#staleTimer);
    for (const g of this.#groups) clearTimeout(g.retryTimer);
    await Promise.all([...this.#groups.map((g) => g.listener.close()), ...this.#clients.map((c) => c.client.stop())]);
    for (const { deviceId, queue } of this.#clients) {
      const drained = await queue.drain(STOP_DRAIN_TIMEOUT_MS);
      queue.close();
      if (!drained) this.#log.error({ deviceId, undelivered: queue.size }, 'stopped with PDS readings the sink never accepted');
    }
    for (const id of this.deviceIds) this.setStatus(id, { status: 'offline', reason: 'stopped' });
    this.#log.info('hl7 driver stopped');
  }

  #createGroup(key: string, states: DeviceState[]): ListenerGroup {
    const first = states[0]!.settings;
    for (const s of states) {
      for (const field of ['timezoneOffset', 'processingId', 'maxFrameBytes', 'idleTimeoutMs', 'maxConnections'] as const) {
        if (s.settings[field] !== first[field]) throw new Error(`devices on HL7 listener ${key} disagree on ${field}`);
      }
      if ([...s.settings.allowedSenders].sort().join(',') !== [...first.allowedSenders].sort().join(',')) {
        throw new Error(`devices on HL7 listener ${key} disagree on allowedSenders`);
      }
    }
    const deviceIds = states.map((s) => s.deviceId);
    const router = new DeviceRouter(states.map((s) => ({ deviceId: s.deviceId, equipmentId: s.settings.equipmentId })));
    const processor = this.#createProcessor(router, first, true);
    const log = this.#log.child({ listener: key });
    const listenerOptions = {
      host: first.host,
      port: first.port,
      maxFrameBytes: first.maxFrameBytes,
      idleTimeoutMs: first.idleTimeoutMs,
      maxConnections: first.maxConnections,
      allowedSenders: first.allowedSenders,
    };
    const listener = new Hl7Listener(listenerOptions, {
      onFrame: async (frame, receivedAt, connection) => {
        const { reply, outcome } = await processor.process(frame, receivedAt);
        if (this.#exitAfterJournal && outcome.readings > 0 && !outcome.duplicate && outcome.reason === undefined) process.kill(process.pid, 'SIGKILL');
        this.#record(outcome, connection, log);
        return reply;
      },
      onDiscarded: (bytes, oversize) => this.#countDiscarded(bytes, oversize, log),
      onClose: (connection) => {
        for (const id of deviceIds) {
          const state = this.#devices.get(id)!;
          if (state.connection !== connection) continue;
          state.connection = undefined;
          if (this.#running) this.setStatus(id, { status: 'offline', reason: connection.closeReason ?? 'sender disconnected' });
        }
      },
    }, log);
    return { key, listener, deviceIds };
  }

  async #listen(group: ListenerGroup): Promise<void> {
    if (!this.#running) return;
    try {
      const address = await group.listener.listen();
      this.#log.info({ listener: group.key, port: address.port }, 'hl7 listener ready');
    } catch (err) {
      const reason = `cannot listen on ${group.key}: ${(err as Error).message}`;
      this.#log.error({ listener: group.key, err: (err as Error).message }, 'hl7 listen failed, retrying');
      for (const id of group.deviceIds) this.setStatus(id, { status: 'offline', reason });
      group.retryTimer = setTimeout(() => void this.#listen(group), LISTEN_RETRY_MS);
    }
  }

  /** Refusal and idle-cut counters of the listener serving a server-mode device. */
  listenerCounters(deviceId: string): Readonly<ListenerCounters> | undefined {
    return this.#groups.find((g) => g.deviceIds.includes(deviceId))?.listener.counters;
  }

  /** Open connections on the listener serving a server-mode device. */
  listenerConnections(deviceId: string): number | undefined {
    return this.#groups.find((g) => g.deviceIds.includes(deviceId))?.listener.connectionCount;
  }

  /** Retry-buffer counters of a client-mode (PDS) device: buffered, retries, overflowDropped. */
  pdsDelivery(deviceId: string): Readonly<DeliveryCounters> | undefined {
    return this.#clients.find((c) => c.deviceId === deviceId)?.queue.counters;
  }

  #createClient(state: DeviceState): { client: PdsClient; queue: DeliveryQueue } {
    const s = state.settings;
    const router = new DeviceRouter([{ deviceId: state.deviceId }]);
    const log = this.#log.child({ deviceId: state.deviceId, monitor: `${s.host}:${s.port}` });
    // No ACK goes back to a PDS monitor and it never resends: a message the sink
    // refuses waits here, in order, instead of being lost.
    const queue = new DeliveryQueue((batch) => this.deliver(batch), {
      maxBuffered: s.maxBufferedReadings,
      maxBatch: Math.min(MAX_DELIVERY_BATCH, s.maxBufferedReadings),
      retryMinMs: 100,
      retryMaxMs: 5000,
    }, log);
    const processor = this.#createProcessor(router, s, false, async (readings) => queue.enqueue(readings));
    const client = new PdsClient(
      {
        host: s.host,
        port: s.port,
        maxFrameBytes: s.maxFrameBytes,
        heartbeatMs: s.heartbeatMs,
        silenceMs: s.staleAfterMs,
        reconnectMinMs: s.reconnectMinMs,
        reconnectMaxMs: Math.max(s.reconnectMinMs, s.reconnectMaxMs),
        connectTimeoutMs: s.connectTimeoutMs,
        offsetMinutes: offsetMinutes(s.timezoneOffset),
      },
      {
        onFrame: async (frame, receivedAt) => {
          const { reply, outcome } = await processor.process(frame, receivedAt);
          this.#record(outcome, undefined, log);
          return reply;
        },
        onDiscarded: (bytes, oversize) => this.#countDiscarded(bytes, oversize, log),
        onConnected: (reconnect) => {
          if (reconnect) this.counters.reconnects++;
          if (this.#running) this.setStatus(state.deviceId, { status: 'offline', reason: `connected to ${s.host}:${s.port}, waiting for data` });
        },
        onDisconnected: (reason) => {
          if (this.#running) this.setStatus(state.deviceId, { status: 'offline', reason });
        },
      },
      log,
    );
    return { client, queue };
  }

  #createProcessor(
    router: DeviceRouter,
    settings: ResolvedHl7DeviceConfig,
    sendAcks: boolean,
    deliver: (readings: DeviceReadingBody[], dedupKey: string) => Promise<AcceptResult | void> = (readings, dedupKey) => this.deliver(readings, { dedupKey }),
  ): Hl7MessageProcessor {
    return new Hl7MessageProcessor({
      router,
      offsetMinutes: offsetMinutes(settings.timezoneOffset),
      processingId: settings.processingId,
      sendAcks,
      deliver,
    });
  }

  /** Counters, status and a log line per message: control ids and counts only, never content. */
  #record(outcome: ProcessOutcome, connection: MllpConnection | undefined, log: Logger): void {
    const now = Date.now();
    const accepted = outcome.reason === undefined;
    if (accepted) this.counters.framesDecoded++;
    else this.counters.framesRejected++;
    for (const id of outcome.deviceIds) {
      const state = this.#devices.get(id);
      if (!state) continue;
      state.lastSeenAt = now;
      if (connection) state.connection = connection;
      if (!this.#running) continue;
      if (accepted) this.setStatus(id, { status: 'online' });
      else if (outcome.sinkRejected) this.setStatus(id, { status: 'degraded', reason: 'AE replies: sink rejected' });
      else this.setStatus(id, { status: 'degraded', reason: `${outcome.ack === 'none' ? 'rejected' : `${outcome.ack} replies`}: ${outcome.reason}` });
    }
    if (accepted) {
      log.debug({ controlId: outcome.controlId, devices: outcome.deviceIds, readings: outcome.readings, skipped: outcome.skipped, duplicate: outcome.duplicate ?? false }, 'hl7 message taken');
    } else {
      log.warn({ controlId: outcome.controlId, devices: outcome.deviceIds, ack: outcome.ack, reason: outcome.reason }, 'hl7 message refused');
    }
  }

  #countDiscarded(bytes: number, oversize: number, log: Logger): void {
    this.counters.bytesDiscarded += bytes;
    this.counters.framesRejected += oversize;
    // Debug only: a noisy line can discard on every chunk; the counters carry the totals.
    log.debug({ bytes, oversizeFrames: oversize }, 'hl7 bytes discarded while resynchronising');
  }

  #checkStale(): void {
    const now = Date.now();
    for (const state of this.#devices.values()) {
      const current = this.statusOf(state.deviceId).status;
      if (current === 'offline') continue;
      if (now - state.lastSeenAt > state.settings.staleAfterMs) {
        this.setStatus(state.deviceId, { status: 'offline', reason: `no message for ${Math.round(state.settings.staleAfterMs / 1000)} s` });
      }
    }
  }
}

/**
 * One driver for a group of HL7 devices. Devices in server mode that share a
 * host:port share ONE listener (and are told apart by OBX-18 equipment id);
 * each client-mode device gets its own connection. The caller normally passes
 * one listener's devices per call.
 */
export function createHl7Driver(devices: Array<{ deviceId: string; settings: Hl7DeviceConfig }>, sink: ReadingSink): Hl7Driver {
  return new Hl7Driver(devices, sink);
}
