import { expect } from 'chai';
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import type { types } from 'mediasoup';
import { loadMediasoup } from '../../src/media/workerBinary.js';
import { waitUntil } from '../support/hub.js';

// A consumer paused by last-N used to cost its worker one 48-byte heap node per
// packet of its producer, kept for 32,768 packets (~1.5 MiB per paused consumer,
// ~100 MiB/min over 20 viewers with last-N 4 of 20 cameras; docs/PERFORMANCE.md
// section 8). scripts/patch-worker-consumer.mjs removes that; these tests hold
// the worker to it, and to the sequence numbers a receiver sees across a pause.

const PAYLOAD_TYPE = 100;
const SSRC = 0x1234_5678;
const PAUSED_CONSUMERS = 200;
/** Packets sent while every consumer is paused: 200 x 20,000 x 48 B = 183 MiB on an unpatched worker. */
const PACKETS = 20_000;
/** What the worker's RSS may move by while it forwards nothing (allocator noise, stats). */
const BOUND_MIB = 16;
const MiB = 2 ** 20;

function rssOf(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:'));
  if (!line) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(line.split(/\s+/)[1]) * 1024;
}

function opusPacket(seq: number): Buffer {
  const packet = Buffer.alloc(12 + 40, 0x11);
  packet[0] = 0x80;
  packet[1] = PAYLOAD_TYPE;
  packet.writeUInt16BE(seq & 0xffff, 2);
  packet.writeUInt32BE((seq * 960) >>> 0, 4);
  packet.writeUInt32BE(SSRC, 8);
  return packet;
}

function bindLoopback(socket: Socket): Promise<number> {
  return new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket.address().port)));
}

describe('mediasoup worker: paused consumers (scripts/patch-worker-consumer.mjs)', function () {
  this.timeout(120_000);
  let worker: types.Worker;
  let router: types.Router;
  let producer: types.Producer;
  let consumerTransport: types.PlainTransport;
  let sender: Socket;
  let sink: Socket;
  let producerPort: number;
  let nextSeq = 1000;
  let sent = 0;

  /** Sends n packets in order, a batch at a time so that the worker's socket buffer never overflows. */
  async function send(n: number): Promise<void> {
    for (let i = 0; i < n; i += 100) {
      const batch = Array.from({ length: Math.min(100, n - i) }, () => opusPacket(nextSeq++));
      await Promise.all(batch.map((p) => new Promise<void>((resolve, reject) => sender.send(p, producerPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())))));
      sent += batch.length;
      // Let the worker read them before the next batch (waits on what arrived, not on time).
      await waitUntil(async () => ((await producer.getStats())[0]?.packetCount ?? 0) >= sent - 100, 10_000);
    }
    await waitUntil(async () => ((await producer.getStats())[0]?.packetCount ?? 0) >= sent - 50, 10_000);
  }

  before(async () => {
    const mediasoup = await loadMediasoup();
    worker = await mediasoup.createWorker({ logLevel: 'error' });
    router = await worker.createRouter({ mediaCodecs: [{ kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 }] });
    const producerTransport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: true });
    producerPort = producerTransport.tuple.localPort;
    producer = await producerTransport.produce({
      kind: 'audio',
      rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: PAYLOAD_TYPE, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: SSRC }] },
    });
    sink = createSocket('udp4');
    const sinkPort = await bindLoopback(sink);
    consumerTransport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false });
    await consumerTransport.connect({ ip: '127.0.0.1', port: sinkPort });
    sender = createSocket('udp4');
    await bindLoopback(sender);
  });
  after(async () => {
    sender?.close();
    sink?.close();
    worker?.close();
  });

  it(`keeps the worker's memory flat while ${PAUSED_CONSUMERS} paused consumers skip ${PACKETS} packets each`, async () => {
    const consumers: types.Consumer[] = [];
    for (let i = 0; i < PAUSED_CONSUMERS; i++) {
      consumers.push(await consumerTransport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities, paused: true }));
    }
    await send(2_000); // warm-up: the worker's own buffers and pools settle
    const before = rssOf(worker.pid);
    await send(PACKETS);
    const growth = rssOf(worker.pid) - before;
    // The control that the packets did reach the paused consumers' producer.
    expect((await producer.getStats())[0]?.packetCount).to.be.at.least(sent - 50);
    expect(
      growth / MiB,
      `worker RSS grew ${(growth / MiB).toFixed(1)} MiB (an unpatched worker grows ~${((PAUSED_CONSUMERS * PACKETS * 48) / MiB).toFixed(0)} MiB: rebuild it with scripts/build-worker.sh)`,
    ).to.be.below(BOUND_MIB);
    for (const c of consumers) c.close();
  });

  it('gives a receiver contiguous sequence numbers across a pause, as an unpatched worker does', async () => {
    const consumer = await consumerTransport.consume({ producerId: producer.id, rtpCapabilities: router.rtpCapabilities, paused: false });
    const outSsrc = consumer.rtpParameters.encodings![0]!.ssrc!;
    const received: number[] = [];
    const onMessage = (msg: Buffer) => {
      if (msg.length >= 12 && msg.readUInt32BE(8) === outSsrc) received.push(msg.readUInt16BE(2));
    };
    sink.on('message', onMessage);
    try {
      await send(100);
      await waitUntil(() => received.length >= 100, 10_000);
      await consumer.pause();
      await send(1_000); // skipped by the paused consumer
      await consumer.resume();
      await send(100);
      await waitUntil(() => received.length >= 200, 10_000);
      expect(received).to.have.length(200);
      // Every step +1 (mod 2^16): no jump where the 1,000 skipped packets were.
      const steps = received.slice(1).map((s, i) => (s - received[i]! + 0x10000) & 0xffff);
      expect(steps.filter((d) => d !== 1)).to.deep.equal([]);
    } finally {
      sink.off('message', onMessage);
      consumer.close();
    }
  });
});
