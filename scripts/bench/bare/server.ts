// A bare mediasoup + socket.io server for the join-latency bench: one worker,
// one router, WebRTC transports on 127.0.0.1, and the page in page.js. No auth,
// no schemas, no telemetry: the floor Hoichan is compared against.

import { build } from 'esbuild';
import express from 'express';
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { types } from 'mediasoup';
import { Server as SocketServer } from 'socket.io';
import { loadMediasoup } from '../../../src/media/workerBinary.js';

const PAGE_SOURCE = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..', '..', '..', 'scripts', 'bench', 'bare', 'page.js');

export interface BareServer {
  url: string;
  workerPid: number;
  close(): Promise<void>;
}

export async function startBareServer(webRtcPort: number): Promise<BareServer> {
  const dir = mkdtempSync(join(tmpdir(), 'hoichan-bare-page-'));
  await build({ entryPoints: [PAGE_SOURCE], bundle: true, format: 'esm', target: ['chrome100'], outfile: join(dir, 'page.js'), logLevel: 'warning' });
  writeFileSync(join(dir, 'index.html'), '<!doctype html><meta charset="utf-8"><title>bare</title><body><script type="module" src="page.js"></script></body>');

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
    ],
  });
  const producers = new Map<string, types.Producer>();

  const app = express();
  app.use(express.static(dir));
  const http: HttpServer = createServer(app);
  const io = new SocketServer(http, { serveClient: false });
  io.on('connection', (socket) => {
    const transports = new Map<string, types.WebRtcTransport>();
    const consumers = new Map<string, types.Consumer>();
    const mine: types.Producer[] = [];
    const fail = (ack: (r: unknown) => void) => (err: Error) => ack({ error: err.message });
    socket.on('join', (_p, ack) => ack({ routerRtpCapabilities: router.rtpCapabilities, producerIds: [...producers.keys()] }));
    socket.on('createTransport', (_p, ack) => {
      router
        .createWebRtcTransport({ webRtcServer, enableUdp: true, enableTcp: true, preferUdp: true })
        .then((t) => {
          transports.set(t.id, t);
          ack({ id: t.id, iceParameters: t.iceParameters, iceCandidates: t.iceCandidates, dtlsParameters: t.dtlsParameters });
        }, fail(ack));
    });
    socket.on('connectTransport', ({ transportId, dtlsParameters }, ack) => {
      transports.get(transportId)!.connect({ dtlsParameters }).then(() => ack({}), fail(ack));
    });
    socket.on('produce', ({ transportId, kind, rtpParameters }, ack) => {
      transports
        .get(transportId)!
        .produce({ kind, rtpParameters })
        .then((producer) => {
          producers.set(producer.id, producer);
          mine.push(producer);
          producer.observer.once('close', () => producers.delete(producer.id));
          socket.broadcast.emit('newProducer', { producerId: producer.id });
          ack({ id: producer.id });
        }, fail(ack));
    });
    socket.on('consume', ({ transportId, producerId, rtpCapabilities }, ack) => {
      transports
        .get(transportId)!
        .consume({ producerId, rtpCapabilities, paused: true })
        .then((consumer) => {
          consumers.set(consumer.id, consumer);
          ack({ id: consumer.id, producerId, kind: consumer.kind, rtpParameters: consumer.rtpParameters });
        }, fail(ack));
    });
    socket.on('resumeConsumer', ({ consumerId }, ack) => {
      consumers.get(consumerId)!.resume().then(() => ack({}), fail(ack));
    });
    socket.on('disconnect', () => {
      for (const t of transports.values()) t.close();
      for (const p of mine) p.close();
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
