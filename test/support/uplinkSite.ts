import { io, type Socket } from 'socket.io-client';
import type { ChannelInfo, DeviceType, ReadingBody } from '../../src/devices/reading.js';
import { UPLINK_NAMESPACE, UPLINK_PROTOCOL_VERSION, type HelloMessage } from '../../src/streams/protocol.js';
import { agentToken } from './hub.js';

export interface UplinkDevice {
  deviceId: string;
  type: DeviceType;
  model: string;
  channels: ChannelInfo[];
}

/**
 * A site agent reduced to its wire protocol (docs/PROTOCOL.md, "Uplink protocol"): it
 * says hello, sends each reading as a one-reading batch in seq order and can
 * drop its connection, so a test drives the hub's real uplink path (schemas,
 * watermark, fan-out, "site agent disconnected") without drivers or a journal.
 */
export class UplinkSite {
  #socket: Socket | undefined;
  readonly #seqs = new Map<string, number>();

  constructor(
    private readonly hubUrl: string,
    readonly siteId: string,
    readonly conferenceId: string,
    readonly devices: UplinkDevice[],
  ) {}

  /** Connects and says hello (again after disconnect(): the hub shows the devices online). */
  async connect(): Promise<void> {
    const token = agentToken(this.siteId, this.conferenceId, undefined, 600);
    const socket = io(`${this.hubUrl}${UPLINK_NAMESPACE}`, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('connect_error', reject);
    });
    this.#socket = socket;
    const hello: HelloMessage = {
      version: UPLINK_PROTOCOL_VERSION,
      siteId: this.siteId,
      clock: { offsetMs: 0, rttMs: 0 },
      devices: this.devices.map((d) => {
        const seq = this.#seqs.get(d.deviceId) ?? 0;
        return { ...d, conferenceId: this.conferenceId, protocol: 'hl7-mllp', status: 'online', acked: seq, lastSeq: seq };
      }),
    };
    const reply = await this.#request('hello', hello);
    if ((reply.rejected as unknown[]).length > 0) throw new Error(`hello rejected: ${JSON.stringify(reply.rejected)}`);
  }

  /** Sends readings of one device, in order, each as its own batch; resolves when the hub has acked them all. */
  async send(deviceId: string, bodies: ReadingBody[]): Promise<void> {
    for (const body of bodies) {
      const seq = (this.#seqs.get(deviceId) ?? 0) + 1;
      await this.#request('batch', { deviceId, from: seq, to: seq, readings: [{ ...body, deviceId, seq }] });
      this.#seqs.set(deviceId, seq);
    }
  }

  /** Sends readings of one device as one batch (as the agent's catch-up does); resolves when the hub acked it. */
  async sendBatch(deviceId: string, bodies: ReadingBody[]): Promise<void> {
    const from = (this.#seqs.get(deviceId) ?? 0) + 1;
    const to = from + bodies.length - 1;
    await this.#request('batch', { deviceId, from, to, readings: bodies.map((body, i) => ({ ...body, deviceId, seq: from + i })) });
    this.#seqs.set(deviceId, to);
  }

  /** Drops the connection as a crashed agent would: the hub shows the site's devices offline. */
  disconnect(): void {
    this.#socket?.disconnect();
    this.#socket = undefined;
  }

  async #request(event: string, payload: unknown): Promise<Record<string, unknown>> {
    const socket = this.#socket;
    if (!socket) throw new Error('not connected');
    const reply = (await socket.timeout(10_000).emitWithAck(event, payload)) as { ok: boolean; error?: { message: string } } & Record<string, unknown>;
    if (!reply.ok) throw new Error(`${event}: ${reply.error?.message}`);
    return reply;
  }
}
