// Cross-hub hop bench (issue 14, docs/SCALING.md): two hubs in this process,
// one redis-server on loopback, everything on 127.0.0.1.
//  1. Added latency of the hop: one ~1 Mb/s VP8 RTP stream (100 packets/s)
//     into an ingest on hub A, received by a PlainTransport consumer on hub A
//     (local) and one on hub B (through the SRTP pipe). Each packet carries
//     its send time; one-way latency p50/p99 at each receiver, and the difference.
//  2. CPU per piped stream: N such streams, each consumed once on hub A
//     (local), then each consumed once on hub B instead (piped); the extra
//     worker CPU of both hubs, divided by N.
//  3. Signaling: time from a produce request on hub A to newProducer at a
//     peer on hub A and at a peer on hub B.
//  4. Fan-out: one presenter stream on hub A, V viewers (PlainTransport
//     receivers) spread evenly over 1, 2 and 3 hubs: each hub's worker CPU
//     and what the viewers receive.
//   node dist/scripts/bench/cluster-hop.js [--streams 1,10,30] [--viewers 60] [--window 5] [--rounds 40]
// Writes bench-results/cluster-hop.json.

import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { types } from 'mediasoup';
import { io, type Socket as ClientSocket } from 'socket.io-client';
import './support/quiet.js';
import { Authenticator } from '../../src/auth/index.js';
import { loadConfig } from '../../src/config/load.js';
import { Hub } from '../../src/hub/Hub.js';
import { CpuMeter, machine, percentile, printTable, sleep, writeResults } from './support/common.js';

const { values } = parseArgs({
  options: {
    streams: { type: 'string', default: '1,10,30' },
    viewers: { type: 'string', default: '60' },
    window: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '40' },
  },
});
const SECRET = 'bench-secret-0123456789abcdef-0123456789abcdef';
const auth = Authenticator.forSecret(SECRET);
const PACKETS_PER_SECOND = 100;
const PACKET_BYTES = 1200;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function startRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn('/usr/bin/redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  await sleep(300);
  return { url: `redis://127.0.0.1:${port}`, child };
}

async function startHub(redisUrl: string, hubId: string, rtcPort: number): Promise<Hub> {
  const config = loadConfig({
    env: {},
    overrides: {
      http: { listenIp: '127.0.0.1', port: 0 },
      media: { numWorkers: 1, listenIp: '127.0.0.1', webRtcServerPort: rtcPort, workerLogLevel: 'error', ingestRequireSrtp: false, maxIngestsPerConference: 64, maxIngestsPerUser: 64, maxPeersPerConference: 128 },
      auth: { jwtSecret: SECRET, demo: false },
      audit: { dir: mkdtempSync(join(tmpdir(), `hoichan-bench-audit-${hubId}-`)) },
      redis: { url: redisUrl },
      cluster: { hubId, region: 'bench' },
    },
  });
  return Hub.start(config);
}

const personToken = (conf: string, name: string) => auth.sign({ kind: 'person', sub: `specialist-${name}`, name, role: 'specialist', conf, ttlSeconds: 3600 });

/** A VP8 packet whose payload carries its send time (ns, after the 2-byte VP8 descriptor and header); every 50th a keyframe. */
function packet(seq: number, ssrc: number, payloadType: number): Buffer {
  const p = Buffer.alloc(PACKET_BYTES, 0x5a);
  p[0] = 0x80;
  p[1] = 0x80 | payloadType;
  p.writeUInt16BE(seq & 0xffff, 2);
  p.writeUInt32BE((seq * 900) >>> 0, 4);
  p.writeUInt32BE(ssrc, 8);
  p[12] = 0x10;
  p[13] = seq % 50 === 0 ? 0x00 : 0x01;
  p.writeBigUInt64BE(process.hrtime.bigint(), 14);
  return p;
}

/** Send time carried by a forwarded packet (the consumer may add header extensions: skip them). */
function sentAt(msg: Buffer): bigint | undefined {
  if (msg.length < 12) return undefined;
  let offset = 12 + 4 * (msg[0]! & 0x0f);
  if (msg[0]! & 0x10) offset += 4 + 4 * msg.readUInt16BE(offset + 2);
  if (msg.length < offset + 10) return undefined;
  return msg.readBigUInt64BE(offset + 2);
}

interface Stream {
  producerId: string;
  port: number;
  ssrc: number;
  payloadType: number;
  seq: number;
}

async function openIngest(hub: Hub, conferenceId: string, deviceId: string): Promise<Stream> {
  const res = await fetch(`${hub.url}/api/conferences/${conferenceId}/ingests`, {
    method: 'POST',
    headers: { authorization: `Bearer ${personToken(conferenceId, 'ingest')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ deviceId, codec: 'VP8', srtp: false }),
  });
  if (res.status !== 201) throw new Error(`ingest: ${res.status} ${await res.text()}`);
  const info = (await res.json()) as { producerId: string; port: number; ssrc: number; payloadType: number };
  return { ...info, seq: 0 };
}

/** A PlainTransport consumer of `producerId` on the hub's router for the conference, sending to a UDP socket here. */
async function receiver(hub: Hub, conferenceId: string, producerId: string, onPacket: (msg: Buffer) => void): Promise<{ close: () => void }> {
  const conference = await hub.conferences.getOrCreate(conferenceId);
  const router = conference.router;
  const remote = conference.remote?.producer(producerId);
  if (remote) await conference.remote!.pipe(producerId, router, conference.worker);
  const socket: Socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const transport = await router.createPlainTransport({ listenInfo: { protocol: 'udp', ip: '127.0.0.1' }, rtcpMux: true, comedia: false });
  await transport.connect({ ip: '127.0.0.1', port: socket.address().port });
  const consumer: types.Consumer = await transport.consume({ producerId, rtpCapabilities: router.rtpCapabilities });
  // Media packets only: not RTCP, RTX or the consumer's bandwidth-probation padding.
  const ssrc = consumer.rtpParameters.encodings![0]!.ssrc!;
  socket.on('message', (msg: Buffer) => {
    if (msg.length >= 12 && msg.readUInt32BE(8) === ssrc) onPacket(msg);
  });
  await consumer.requestKeyFrame().catch(() => undefined);
  return {
    close: () => {
      transport.close();
      socket.close();
    },
  };
}

function startSending(sender: Socket, streams: Stream[]): NodeJS.Timeout {
  const perTick = PACKETS_PER_SECOND / 100;
  return setInterval(() => {
    for (const s of streams) for (let i = 0; i < perTick; i++) sender.send(packet(++s.seq, s.ssrc, s.payloadType), s.port, '127.0.0.1');
  }, 10);
}

const quantiles = (ms: number[]) => ({ p50: percentile(ms, 0.5), p99: percentile(ms, 0.99) });

async function waitFor(what: string, condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function main(): Promise<void> {
  const windowMs = Number(values.window) * 1000;
  const redis = await startRedis();
  const base = 33000 + (process.pid % 200) * 4;
  const a = await startHub(redis.url, 'bench-a', base);
  const b = await startHub(redis.url, 'bench-b', base + 2);
  const c3 = await startHub(redis.url, 'bench-c', base + 4);
  const workers = [a.pool.workers[0]!.worker.pid, b.pool.workers[0]!.worker.pid];
  const sender = createSocket('udp4');
  await new Promise<void>((resolve) => sender.bind(0, '127.0.0.1', resolve));
  const results: Record<string, unknown> = { machine: machine() };
  try {
    // 1. Latency of the hop.
    const conf = 'bench-hop';
    const stream = await openIngest(a, conf, 'us-hop');
    await b.conferences.getOrCreate(conf);
    await waitFor('hub B to see the ingest', () => b.conferences.get(conf)?.remote?.producer(stream.producerId) !== undefined);
    const local: number[] = [];
    const piped: number[] = [];
    const timer = startSending(sender, [stream]);
    const record = (into: number[]) => (msg: Buffer) => {
      const t = sentAt(msg);
      if (t !== undefined) into.push(Number(process.hrtime.bigint() - t) / 1e6);
    };
    const r1 = await receiver(a, conf, stream.producerId, record(local));
    const r2 = await receiver(b, conf, stream.producerId, record(piped));
    await waitFor('packets at both receivers', () => local.length > 50 && piped.length > 50);
    local.length = 0;
    piped.length = 0;
    await sleep(windowMs);
    clearInterval(timer);
    r1.close();
    r2.close();
    const l = quantiles(local);
    const p = quantiles(piped);
    const latency = [
      { path: 'hub A -> receiver (local)', packets: local.length, 'p50 ms': l.p50, 'p99 ms': l.p99 },
      { path: 'hub A -> pipe (SRTP) -> hub B -> receiver', packets: piped.length, 'p50 ms': p.p50, 'p99 ms': p.p99 },
      { path: 'added by the hop', packets: '', 'p50 ms': p.p50 - l.p50, 'p99 ms': p.p99 - l.p99 },
    ];
    printTable(`Cross-hub hop latency, one VP8 stream ${PACKETS_PER_SECOND} packets/s of ${PACKET_BYTES} B (~${Math.round((PACKETS_PER_SECOND * PACKET_BYTES * 8) / 1000)} kb/s), ${values.window} s`, latency);
    results.latency = latency;

    // 2. CPU per piped stream.
    const cpuRows: Record<string, unknown>[] = [];
    for (const n of values.streams!.split(',').map(Number)) {
      const c = `bench-cpu-${n}`;
      const streams: Stream[] = [];
      for (let i = 0; i < n; i++) streams.push(await openIngest(a, c, `us-${n}-${i}`));
      await b.conferences.getOrCreate(c);
      await waitFor('hub B to see the ingests', () => streams.every((s) => b.conferences.get(c)?.remote?.producer(s.producerId) !== undefined));
      const t = startSending(sender, streams);
      const measure = async (hub: Hub) => {
        let received = 0;
        const receivers = [];
        for (const s of streams) receivers.push(await receiver(hub, c, s.producerId, () => received++));
        await sleep(1000);
        received = 0;
        const meter = new CpuMeter(workers);
        await sleep(windowMs);
        const cpu = meter.percent();
        const rate = received / (windowMs / 1000);
        for (const r of receivers) r.close();
        return { cpu, rate };
      };
      const localRun = await measure(a);
      const pipedRun = await measure(b);
      clearInterval(t);
      cpuRows.push({
        streams: n,
        'received/s local': Math.round(localRun.rate),
        'received/s piped': Math.round(pipedRun.rate),
        'worker CPU % local (A+B)': localRun.cpu,
        'worker CPU % piped (A+B)': pipedRun.cpu,
        'CPU % per piped stream': (pipedRun.cpu - localRun.cpu) / n,
      });
    }
    printTable(`CPU per piped stream (${PACKETS_PER_SECOND} packets/s each; one receiver per stream on hub A, then on hub B instead)`, cpuRows);
    results.cpu = cpuRows;

    // 3. Signaling across hubs.
    const sig = 'bench-signaling';
    const connect = (hub: Hub, name: string) =>
      new Promise<ClientSocket>((resolve, reject) => {
        const s = io(hub.url, { auth: { token: personToken(sig, name) }, transports: ['websocket'], forceNew: true, reconnection: false });
        s.once('connect', () => resolve(s));
        s.once('connect_error', reject);
      });
    const ask = (s: ClientSocket, name: string, payload: unknown) => s.timeout(10_000).emitWithAck(name, payload) as Promise<{ ok: boolean; [k: string]: unknown }>;
    const presenter = await connect(a, 'presenter');
    const near = await connect(a, 'near');
    const far = await connect(b, 'far');
    for (const s of [presenter, near, far]) await ask(s, 'join', { conferenceId: sig });
    const send = (await ask(presenter, 'createTransport', { direction: 'send' })) as unknown as { transport: { id: string } };
    const onA: number[] = [];
    const onB: number[] = [];
    for (let round = 0; round < Number(values.rounds); round++) {
      let started = 0;
      const seen = (s: ClientSocket, into: number[]) =>
        new Promise<void>((resolve) => {
          s.once('newProducer', () => {
            into.push(performance.now() - started);
            resolve();
          });
        });
      const arrivals = Promise.all([seen(near, onA), seen(far, onB)]);
      started = performance.now();
      const reply = await ask(presenter, 'produce', { transportId: send.transport.id, kind: 'audio', rtpParameters: { codecs: [{ mimeType: 'audio/opus', payloadType: 100, clockRate: 48000, channels: 2 }], encodings: [{ ssrc: 5000 + round }] } });
      await arrivals;
      await ask(presenter, 'closeProducer', { producerId: reply.producerId });
      await sleep(20);
    }
    for (const s of [presenter, near, far]) s.close();
    const sigRows = [
      { 'newProducer at': 'a peer on the same hub', events: onA.length, 'p50 ms': percentile(onA, 0.5), 'p99 ms': percentile(onA, 0.99) },
      { 'newProducer at': 'a peer on the other hub (Redis pub/sub)', events: onB.length, 'p50 ms': percentile(onB, 0.5), 'p99 ms': percentile(onB, 0.99) },
    ];
    printTable('Signaling event latency, from the produce request', sigRows);
    results.signaling = sigRows;

    // 4. Fan-out over 1, 2 and 3 hubs.
    const viewers = Number(values.viewers);
    const fanRows: Record<string, unknown>[] = [];
    const all = [a, b, c3];
    for (const spread of [1, 2, 3]) {
      const fc = `bench-fanout-${spread}`;
      const presenterStream = await openIngest(a, fc, `us-fan-${spread}`);
      const used = all.slice(0, spread);
      for (const hub of used.slice(1)) await hub.conferences.getOrCreate(fc);
      await waitFor('the other hubs to see the presenter', () => used.slice(1).every((h) => h.conferences.get(fc)?.remote?.producer(presenterStream.producerId) !== undefined));
      const t = startSending(sender, [presenterStream]);
      let received = 0;
      const receivers = [];
      for (let v = 0; v < viewers; v++) receivers.push(await receiver(used[v % spread]!, fc, presenterStream.producerId, () => received++));
      await sleep(1000);
      received = 0;
      const meters = all.map((h) => new CpuMeter([h.pool.workers[0]!.worker.pid]));
      await sleep(windowMs);
      const cpus = meters.map((m) => m.percent());
      const rate = received / (windowMs / 1000);
      clearInterval(t);
      for (const r of receivers) r.close();
      fanRows.push({
        hubs: spread,
        viewers,
        'per hub': used.map((_, i) => Math.ceil((viewers - i) / spread)).join('/'),
        'packets/s sent': PACKETS_PER_SECOND,
        'received/s (all viewers)': Math.round(rate),
        'hub A worker CPU %': cpus[0]!,
        'hub B worker CPU %': spread >= 2 ? cpus[1]! : '–',
        'hub C worker CPU %': spread >= 3 ? cpus[2]! : '–',
      });
    }
    printTable(`One presenter on hub A (${PACKETS_PER_SECOND} packets/s), ${viewers} viewers spread over 1, 2 and 3 hubs`, fanRows);
    results.fanout = fanRows;
    writeResults('cluster-hop', results);
  } finally {
    sender.close();
    await a.close();
    await b.close();
    await c3.close();
    redis.child.kill('SIGTERM');
  }
}

await main();
process.exit(0);
