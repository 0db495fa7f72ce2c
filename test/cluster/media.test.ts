import { expect } from 'chai';
import { createSocket, type Socket } from 'node:dgram';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, fakeDtlsParameters, joinWithTransports, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { packetsReceived, rtpPacket, startClusterHub } from './helpers.js';

describe('media across hubs: a piped stream, SRTP between hubs (issue 14; the Redis outage is in failures.test.ts)', function () {
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
    const pipeProducer = piped[0]!.producer!;
    expect(pipeProducer.id).to.equal(ingest.producerId);
    const transport = a.cluster!.pipes.outTransports()[0]!;
    expect(transport.srtpParameters?.cryptoSuite).to.be.a('string');
    await waitUntil(async () => (await packetsReceived(pipeProducer)) > 20, 5000, 'packets arriving on hub B');
  });
});
