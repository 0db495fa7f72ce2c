import { expect } from 'chai';
import { createSocket, type Socket } from 'node:dgram';
import type { types } from 'mediasoup';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, fakeDtlsParameters, joinWithTransports, rtpParametersFor, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { startClusterHub } from './helpers.js';

/** A small VP8 RTP packet; every 50th starts a keyframe. */
function rtpPacket(seq: number, ssrc: number, payloadType: number): Buffer {
  const packet = Buffer.alloc(200, 0x5a);
  packet[0] = 0x80;
  packet[1] = 0x80 | payloadType;
  packet.writeUInt16BE(seq & 0xffff, 2);
  packet.writeUInt32BE((seq * 3000) >>> 0, 4);
  packet.writeUInt32BE(ssrc, 8);
  packet[12] = 0x10;
  packet[13] = seq % 50 === 0 ? 0x00 : 0x01;
  return packet;
}

async function packetsReceived(producer: types.Producer): Promise<number> {
  const stats = await producer.getStats();
  return stats.reduce((n, s) => n + ((s as { packetCount?: number }).packetCount ?? 0), 0);
}

describe('media across hubs: a piped stream, SRTP between hubs, and a Redis outage (issue 14)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let a: Hub;
  let b: Hub;
  const clients: TestClient[] = [];
  let sender: Socket | undefined;
  let sending: NodeJS.Timeout | undefined;
  let sent = 0;
  const conferenceId = 'ultrasound-case';

  before(async () => {
    redis = await TestRedis.start();
    // Plain RTP into the ingest so the test can write the packets; the pipe between the hubs uses SRTP (the default).
    a = await startClusterHub(redis.url, 'hub-a', 'north', {}, { media: { ingestRequireSrtp: false } });
    b = await startClusterHub(redis.url, 'hub-b', 'north');
  });
  after(async () => {
    clearInterval(sending);
    sender?.close();
    for (const c of clients) c.close();
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  let viewer: TestClient;
  let recv: string;
  let pipeProducer: types.Producer;
  let audioProducerId: string;

  it('carries a producer of hub A to a consumer on hub B through an SRTP pipe', async () => {
    viewer = await TestClient.connect(b.url, token('specialist', conferenceId, 'Dr B'));
    clients.push(viewer);
    const joined = await joinWithTransports(viewer, conferenceId, 'x');
    recv = joined.recv;
    await viewer.ok('connectTransport', { transportId: recv, dtlsParameters: fakeDtlsParameters });

    const res = await fetch(`${a.url}/api/conferences/${conferenceId}/ingests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('site', conferenceId)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: 'us-1', codec: 'VP8', srtp: false }),
    });
    expect(res.status).to.equal(201);
    const ingest = (await res.json()) as { producerId: string; port: number; ssrc: number; payloadType: number };
    const announced = await viewer.waitFor('newProducer', (p) => p.producerId === ingest.producerId);
    expect(announced.hubId).to.equal('hub-a');

    sender = createSocket('udp4');
    await new Promise<void>((resolve) => sender!.bind(0, '127.0.0.1', resolve));
    // 50 packets a second, as a low-rate video stream.
    sending = setInterval(() => {
      sender!.send(rtpPacket(++sent, ingest.ssrc, ingest.payloadType), ingest.port, '127.0.0.1');
    }, 20);

    await viewer.ok('consume', { transportId: recv, producerId: ingest.producerId, rtpCapabilities: b.conferences.get(conferenceId)!.router.rtpCapabilities });
    const piped = b.cluster!.pipes.piped();
    expect(piped).to.have.length(1);
    pipeProducer = piped[0]!.producer!;
    expect(pipeProducer.id).to.equal(ingest.producerId);
    const transport = a.cluster!.pipes.outTransports()[0]!;
    expect(transport.srtpParameters?.cryptoSuite).to.be.a('string');
    await waitUntil(async () => (await packetsReceived(pipeProducer)) > 20, 5000, 'packets arriving on hub B');
  });

  it('keeps piped media flowing while Redis is stopped; new cross-hub set-ups fail clearly and succeed once it is back', async () => {
    // A second producer on hub A, not yet piped: its set-up will have to wait for Redis.
    const presenter = await TestClient.connect(a.url, token('specialist', conferenceId, 'Dr A'));
    clients.push(presenter);
    const p = await joinWithTransports(presenter, conferenceId, 'x');
    audioProducerId = (await presenter.ok('produce', { transportId: p.send, kind: 'audio', rtpParameters: rtpParametersFor('audio') })).producerId;
    await viewer.waitFor('newProducer', (e) => e.producerId === audioProducerId);

    const port = redis.port;
    const sentBefore = sent;
    const receivedBefore = await packetsReceived(pipeProducer);
    let lastCount = receivedBefore;
    let lastChange = Date.now();
    let longestGapMs = 0;
    const sampler = setInterval(() => {
      void packetsReceived(pipeProducer).then((n) => {
        const now = Date.now();
        if (n > lastCount) {
          longestGapMs = Math.max(longestGapMs, now - lastChange);
          lastCount = n;
          lastChange = now;
        }
      });
    }, 50);
    await redis.stop();
    const refused = await viewer.request('consume', { transportId: recv, producerId: audioProducerId, rtpCapabilities: b.conferences.get(conferenceId)!.router.rtpCapabilities });
    expect(refused.ok).to.equal(false);
    if (!refused.ok) {
      expect(refused.error.code).to.equal('unavailable');
      expect(refused.error.message).to.match(/Redis\) is unreachable; try again/);
    }
    // A 5 s outage in the test (the case is 60 s; the pipe does not touch Redis at all once set up).
    await new Promise((r) => setTimeout(r, 5000));
    const sentDuring = sent - sentBefore;
    const receivedDuring = (await packetsReceived(pipeProducer)) - receivedBefore;
    clearInterval(sampler);
    console.log(`      (Redis down 5 s: ${receivedDuring}/${sentDuring} packets crossed the pipe; longest gap between arrivals ${longestGapMs} ms)`);
    expect(receivedDuring).to.be.at.least(Math.floor(sentDuring * 0.95));

    redis = await TestRedis.start(port);
    await waitUntil(async () => {
      const retry = await viewer.request('consume', { transportId: recv, producerId: audioProducerId, rtpCapabilities: b.conferences.get(conferenceId)!.router.rtpCapabilities });
      return retry.ok;
    }, 10_000, 'the retried set-up succeeding once Redis is back');
    expect(b.cluster!.pipes.inCount).to.equal(2);
  });
});
