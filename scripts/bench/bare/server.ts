// A bare mediasoup + socket.io server, the floor Hoichan is compared against:
// one worker, one router (opus; VP8 and H.264 as `hoichan loadtest` sends them),
// WebRTC transports through one WebRtcServer port on 127.0.0.1. No auth, no
// schemas, no telemetry, no limits. It speaks just the
// part of Hoichan's signaling (docs/PROTOCOL.md section 1: request names,
// payloads and `{ ok, ... }` acks) that a client needs to publish and consume
// in a conference, so that the same clients drive both: the page in page.js
// (join-latency bench, Chromium) and `hoichan loadtest` (webrtc bench).
// Conferences are socket.io rooms over the one router.
// In-process: startBareServer(); as a child process of its own (so a bench
// reads its Node CPU apart): startBareProcess().

import { build } from 'esbuild';
import express from 'express';
import { fork, type ChildProcess } from 'node:child_process';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { types } from 'mediasoup';
import { Server as SocketServer, type Socket } from 'socket.io';
import { loadMediasoup } from '../../../src/media/workerBinary.js';

const PAGE_SOURCE = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', '..', 'scripts', 'bench', 'bare', 'page.js');

export interface BareServer {
  url: string;
  workerPid: number;
  close(): Promise<void>;
}

type Ack = (reply: Record<string, unknown>) => void;

export async function startBareServer(webRtcPort: number, options: { page?: boolean } = {}): Promise<BareServer> {
  const mediasoup = await loadMediasoup(); // finds the worker binary; nothing else of Hoichan
  // Its WebRTC transports all go through the WebRtcServer's one port: no RTC port range.
  const worker = await mediasoup.createWorker({ logLevel: 'error' });
  const webRtcServer = await worker.createWebRtcServer({
    listenInfos: [
      { protocol: 'udp', ip: '127.0.0.1', port: webRtcPort },
      { protocol: 'tcp', ip: '127.0.0.1', port: webRtcPort },
    ],
  });
  const router = await worker.createRouter({
    mediaCodecs: [
      { kind: 'audio', mimeType: 'audio/opus', clockRate: 48000, channels: 2 },
      { kind: 'video', mimeType: 'video/VP8', clockRate: 90000 },
      // The H.264 the loadtest publisher sends (and Hoichan's routers take, src/media/codecs.ts): constrained baseline, level 3.1.
      { kind: 'video', mimeType: 'video/H264', clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f', 'level-asymmetry-allowed': 1 } },
    ],
  });
  /** conference -> its producers, with who sent them */
  const conferences = new Map<string, Map<string, { producer: types.Producer; peerId: string }>>();
  const infoOf = (producer: types.Producer, peerId: string) => ({
    producerId: producer.id,
    peerId,
    kind: producer.kind,
    source: producer.kind === 'audio' ? 'microphone' : 'camera',
  });

  const app = express();
  if (options.page !== false) {
    const dir = mkdtempSync(join(tmpdir(), 'hoichan-bare-page-'));
    await build({ entryPoints: [PAGE_SOURCE], bundle: true, format: 'esm', target: ['chrome100'], outfile: join(dir, 'page.js'), logLevel: 'warning' });
    writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>bare</title><body><script type="module" src="page.js"></script></body>');
    app.use(express.static(dir));
  }
  const http: HttpServer = createServer(app);
  const io = new SocketServer(http, { serveClient: false });
  io.on('connection', (socket: Socket) => {
    const transports = new Map<string, types.WebRtcTransport>();
    const consumers = new Map<string, types.Consumer>();
    const mine: types.Producer[] = [];
    let conference: Map<string, { producer: types.Producer; peerId: string }> | undefined;
    let conferenceId = '';
    // Hoichan's ack shapes: { ok: true, ... } or { ok: false, error: { code, message } }.
    const handle = (name: string, work: (payload: Record<string, unknown>) => Promise<Record<string, unknown>>) =>
      socket.on(name, (payload: unknown, ack: unknown) => {
        if (typeof ack !== 'function') return;
        work((payload ?? {}) as Record<string, unknown>).then(
          (reply) => (ack as Ack)({ ok: true, ...reply }),
          (err: Error) => (ack as Ack)({ ok: false, error: { code: 'failed', message: err.message } }),
        );
      });
    const transportOf = (id: unknown) => {
      const t = transports.get(String(id));
      if (!t) throw new Error(`no transport ${String(id)}`);
      return t;
    };
    handle('join', async (p) => {
      if (conference) throw new Error('already joined');
      conferenceId = String(p.conferenceId ?? 'bare');
      conference = conferences.get(conferenceId) ?? new Map();
      conferences.set(conferenceId, conference);
      await socket.join(conferenceId);
      return { peerId: socket.id, routerRtpCapabilities: router.rtpCapabilities, producers: [...conference.values()].map((e) => infoOf(e.producer, e.peerId)) };
    });
    handle('createTransport', async () => {
      const t = await router.createWebRtcTransport({ webRtcServer, enableUdp: true, enableTcp: true, preferUdp: true });
      transports.set(t.id, t);
      return { transport: { id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters } };
    });
    handle('connectTransport', async (p) => {
      await transportOf(p.transportId).connect({ dtlsParameters: p.dtlsParameters as types.DtlsParameters });
      return {};
    });
    handle('produce', async (p) => {
      if (!conference) throw new Error('join first');
      const producer = await transportOf(p.transportId).produce({ kind: p.kind as types.MediaKind, rtpParameters: p.rtpParameters as types.RtpParameters });
      const entry = { producer, peerId: socket.id };
      const room = conference;
      room.set(producer.id, entry);
      mine.push(producer);
      producer.observer.once('close', () => {
        room.delete(producer.id);
        io.to(conferenceId).emit('producerClosed', { producerId: producer.id });
      });
      socket.to(conferenceId).emit('newProducer', infoOf(producer, socket.id));
      return { producerId: producer.id };
    });
    handle('consume', async (p) => {
      const consumer = await transportOf(p.transportId).consume({
        producerId: String(p.producerId),
        rtpCapabilities: p.rtpCapabilities as types.RtpCapabilities,
        paused: true,
      });
      consumers.set(consumer.id, consumer);
      consumer.observer.once('close', () => consumers.delete(consumer.id));
      return { consumer: { id: consumer.id, producerId: consumer.producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters } };
    });
    handle('resumeConsumer', async (p) => {
      const consumer = consumers.get(String(p.consumerId));
      if (!consumer) throw new Error(`no consumer ${String(p.consumerId)}`);
      await consumer.resume();
      return {};
    });
    socket.on('disconnect', () => {
      for (const t of transports.values()) t.close();
      for (const p of mine) p.close();
      if (conference?.size === 0) conferences.delete(conferenceId);
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`,
    workerPid: worker.pid,
    async close() {
      io.disconnectSockets(true);
      worker.close();
      await new Promise<void>((resolve) => io.close(() => resolve()));
    },
  };
}

export interface BareProcess {
  url: string;
  /** the server's Node process (signaling) */
  pid: number;
  workerPid: number;
  close(): Promise<void>;
}

/** The same server in a child process of its own, without the page. */
export async function startBareProcess(webRtcPort: number): Promise<BareProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [String(webRtcPort)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const info = await new Promise<{ url: string; workerPid: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { url: string; workerPid: number }));
    child.once('exit', (code) => reject(new Error(`bare server process exited (${code})`)));
  });
  return {
    ...info,
    pid: child.pid!,
    async close() {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send('close');
      await exited;
    },
  };
}

// As a child: start, report, close on 'close' or when the parent goes.
if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = await startBareServer(Number(process.argv[2]), { page: false });
  process.send({ url: server.url, workerPid: server.workerPid });
  const close = () => void server.close().then(() => process.exit(0));
  process.on('message', (m) => m === 'close' && close());
  process.on('disconnect', close);
}
