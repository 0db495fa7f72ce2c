// The cost of a pipe between two routers on two workers (what a conference
// spread over workers pays per producer and router, src/media/ConferenceRouter.ts):
//  - latency: one stream, two receivers in this process, one consuming on
//    the producer's router, one on a second router on another worker through
//    router.pipeToRouter, as Hoichan makes it. Per packet, arrival through the
//    pipe minus arrival direct (same packet: RTP timestamp and payload tail).
//  - CPU: K streams (K ffmpeg senders) each consumed once, first directly on
//    their router, then on the second router through K pipes; the workers'
//    CPU difference per piped stream and per piped packet. Alternated twice,
//    medians kept (a shared VM's CPU per packet varies ±30 %).
// The mediasoup calls are Hoichan's own (same options); bare workers keep the
// hub's signaling and telemetry out of the CPU numbers.

import { createSocket, type Socket } from 'node:dgram';
import type { ChildProcess } from 'node:child_process';
import type { types } from 'mediasoup';
import { CpuMeter, percentile, sleep } from '../support/common.js';
import { BARE_CODECS, producerRtpParameters, sendRtp, type BenchCodec } from './targets.js';
import { INGEST_RECV_BUFFER_BYTES } from '../../../src/media/addresses.js';

export interface PipeCost {
  codec: BenchCodec;
  /** Packets matched on both paths in the latency window. */
  latencySamples: number;
  addedLatencyP50Us: number;
  addedLatencyP99Us: number;
  streams: number;
  packetsPerSecondPerStream: number;
  /** Both workers' CPU, direct and piped, 100 = one core (medians of the runs). */
  cpuDirectPercent: number;
  cpuPipedPercent: number;
  cpuPerPipedStreamPercent: number;
  usPerPipedPacket: number;
}

const LISTEN: types.TransportListenInfo = { protocol: 'udp', ip: '127.0.0.1', portRange: { min: 36000, max: 37999 } };

interface Receiver {
  socket: Socket;
  port: number;
  packets: number;
}

async function receiver(onPacket?: (msg: Buffer, at: bigint) => void): Promise<Receiver> {
  const socket = createSocket('udp4');
  const r: Receiver = { socket, port: 0, packets: 0 };
  socket.on('message', (msg) => {
    // RTCP (payload types 192-223 in the second byte) is not media.
    if (msg.length < 12 || (msg[1]! >= 192 && msg[1]! <= 223)) return;
    r.packets++;
    onPacket?.(msg, process.hrtime.bigint());
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  r.port = socket.address().port;
  return r;
}

async function consumeInto(router: types.Router, producerId: string, port: number): Promise<types.PlainTransport> {
  const transport = await router.createPlainTransport({ listenInfo: LISTEN, rtcpMux: true, comedia: false });
  await transport.connect({ ip: '127.0.0.1', port });
  await transport.consume({ producerId, rtpCapabilities: router.rtpCapabilities, paused: false });
  return transport;
}

async function ingestOn(router: types.Router, codec: BenchCodec, clip: string, ssrc: number): Promise<{ producer: types.Producer; sender: ChildProcess }> {
  const transport = await router.createPlainTransport({
    listenInfo: { ...LISTEN, recvBufferSize: INGEST_RECV_BUFFER_BYTES },
    rtcpListenInfo: LISTEN,
    rtcpMux: false,
    comedia: true,
  });
  const rtp = producerRtpParameters(codec);
  const producer = await transport.produce({ kind: 'video', rtpParameters: { ...rtp, encodings: [{ ssrc }] } });
  const sender = sendRtp(clip, { ip: '127.0.0.1', port: transport.tuple.localPort, rtcpPort: transport.rtcpTuple!.localPort, ssrc });
  return { producer, sender };
}

/** The packet's identity on both paths: consumers rewrite sequence numbers, not timestamps or payloads. */
function packetKey(msg: Buffer): string {
  return `${msg.readUInt32BE(4)}:${msg.subarray(Math.max(12, msg.length - 24)).toString('base64')}`;
}

export async function measurePipeCost(codec: BenchCodec, clip: string, options: { streams: number; windowMs: number }): Promise<PipeCost> {
  const { loadMediasoup } = await import('../../../src/media/workerBinary.js');
  const mediasoup = await loadMediasoup();
  const workers = [await mediasoup.createWorker({ logLevel: 'error' }), await mediasoup.createWorker({ logLevel: 'error' })];
  const senders: ChildProcess[] = [];
  const sockets: Socket[] = [];
  try {
    const [source, target] = await Promise.all(workers.map((w) => w.createRouter({ mediaCodecs: BARE_CODECS })));
    const pipeTo = (producerId: string) => source!.pipeToRouter({ producerId, router: target!, listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, enableSctp: false });

    // Latency: one stream, direct and piped receivers.
    const first = await ingestOn(source!, codec, clip, 2000);
    senders.push(first.sender);
    const direct = new Map<string, bigint>();
    const piped = new Map<string, bigint>();
    const deltas: number[] = [];
    const match = (mine: Map<string, bigint>, other: Map<string, bigint>, sign: number) => (msg: Buffer, at: bigint) => {
      const key = packetKey(msg);
      const seen = other.get(key);
      if (seen === undefined) {
        mine.set(key, at);
        if (mine.size > 5000) mine.delete(mine.keys().next().value as string);
        return;
      }
      other.delete(key);
      deltas.push((sign * Number(at - seen)) / 1000);
    };
    const rDirect = await receiver(match(direct, piped, -1));
    const rPiped = await receiver(match(piped, direct, 1));
    sockets.push(rDirect.socket, rPiped.socket);
    await consumeInto(source!, first.producer.id, rDirect.port);
    await pipeTo(first.producer.id);
    await consumeInto(target!, first.producer.id, rPiped.port);
    await sleep(1500);
    deltas.length = 0;
    await sleep(options.windowMs);
    const latency = [...deltas];
    first.sender.kill('SIGKILL');

    // CPU: K streams, consumed directly or through K pipes.
    const streams = await Promise.all(Array.from({ length: options.streams }, (_, i) => ingestOn(source!, codec, clip, 3000 + i)));
    senders.push(...streams.map((s) => s.sender));
    const sink = await receiver();
    sockets.push(sink.socket);
    const pids = workers.map((w) => w.pid);
    const measure = async () => {
      await sleep(1000);
      const before = sink.packets;
      const cpu = new CpuMeter(pids);
      const t0 = performance.now();
      await sleep(options.windowMs);
      return { cpu: cpu.percent(), pps: (sink.packets - before) / ((performance.now() - t0) / 1000) };
    };
    const runs: { direct: { cpu: number; pps: number }; piped: { cpu: number; pps: number } }[] = [];
    for (let round = 0; round < 2; round++) {
      const directTransports = await Promise.all(streams.map((s) => consumeInto(source!, s.producer.id, sink.port)));
      const d = await measure();
      for (const t of directTransports) t.close();
      const pipes = await Promise.all(streams.map((s) => pipeTo(s.producer.id)));
      const pipedTransports = await Promise.all(streams.map((s) => consumeInto(target!, s.producer.id, sink.port)));
      const p = await measure();
      for (const t of pipedTransports) t.close();
      for (const pipe of pipes) pipe.pipeConsumer?.close();
      runs.push({ direct: d, piped: p });
    }
    const median = (values: number[]) => percentile(values, 0.5);
    const cpuDirect = median(runs.map((r) => r.direct.cpu));
    const cpuPiped = median(runs.map((r) => r.piped.cpu));
    const pps = median(runs.map((r) => r.piped.pps)) / options.streams;
    const perStream = (cpuPiped - cpuDirect) / options.streams;
    return {
      codec,
      latencySamples: latency.length,
      addedLatencyP50Us: percentile(latency, 0.5),
      addedLatencyP99Us: percentile(latency, 0.99),
      streams: options.streams,
      packetsPerSecondPerStream: pps,
      cpuDirectPercent: cpuDirect,
      cpuPipedPercent: cpuPiped,
      cpuPerPipedStreamPercent: perStream,
      usPerPipedPacket: ((perStream / 100) * 1e6) / pps,
    };
  } finally {
    for (const s of senders) s.kill('SIGKILL');
    for (const s of sockets) s.close();
    for (const w of workers) w.close();
  }
}
