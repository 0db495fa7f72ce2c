import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, fakeDtlsParameters, joinWithTransports, rtpParametersFor, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { startClusterHub } from './helpers.js';

describe('signaling and media across hubs (issue 14)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let a: Hub;
  let b: Hub;
  const clients: TestClient[] = [];
  const conferenceId = 'case-x';

  async function client(hub: Hub, role: 'specialist' | 'site', name: string): Promise<TestClient> {
    const c = await TestClient.connect(hub.url, token(role, conferenceId, name));
    clients.push(c);
    return c;
  }

  before(async () => {
    redis = await TestRedis.start();
    a = await startClusterHub(redis.url, 'hub-a');
    b = await startClusterHub(redis.url, 'hub-b');
  });
  after(async () => {
    for (const c of clients) c.close();
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  let presenter: TestClient;
  let viewer1: TestClient;
  let viewer2: TestClient;
  let producerId: string;
  let presenterPeerId: string;

  it('tells peers on every hub who joined, and join on any hub returns the whole conference, remote peers marked with their hub', async () => {
    presenter = await client(a, 'specialist', 'Dr A');
    const joined = await joinWithTransports(presenter, conferenceId, 'x');
    presenterPeerId = joined.joined.peerId;
    producerId = (await presenter.ok('produce', { transportId: joined.send, kind: 'video', rtpParameters: rtpParametersFor('video') })).producerId;

    viewer1 = await client(b, 'site', 'Site B');
    const reply = await viewer1.ok('join', { conferenceId });
    expect(reply.peers).to.deep.equal([{ peerId: presenterPeerId, displayName: 'Dr A', role: 'specialist', hubId: 'hub-a' }]);
    expect(reply.producers).to.deep.equal([{ producerId, peerId: presenterPeerId, kind: 'video', source: 'camera', hubId: 'hub-a' }]);
    const seen = await presenter.waitFor('peerJoined', (p) => p.peerId === reply.peerId);
    expect(seen).to.deep.equal({ peerId: reply.peerId, displayName: 'Site B', role: 'site', hubId: 'hub-b' });
  });

  it('announces a new producer on one hub to the peers of the others', async () => {
    const viewerTransports = await viewer1.ok('createTransport', { direction: 'send' });
    const audio = (await viewer1.ok('produce', { transportId: viewerTransports.transport.id, kind: 'audio', rtpParameters: rtpParametersFor('audio') })).producerId;
    const seen = await presenter.waitFor('newProducer', (p) => p.producerId === audio);
    expect(seen.hubId).to.equal('hub-b');
    expect(seen.kind).to.equal('audio');
  });

  it('pipes a remote producer once per hub: the first consumer there sets up the pipe, the next reuse it', async () => {
    const recv1 = (await viewer1.ok('createTransport', { direction: 'recv' })).transport.id;
    await viewer1.ok('connectTransport', { transportId: recv1, dtlsParameters: fakeDtlsParameters });
    const caps = b.conferences.get(conferenceId)!.router.rtpCapabilities;
    const consumed = await viewer1.ok('consume', { transportId: recv1, producerId, rtpCapabilities: caps });
    expect(consumed.consumer.producerId).to.equal(producerId);
    expect(consumed.consumer.kind).to.equal('video');
    expect(b.cluster!.pipes.inCount).to.equal(1);
    expect(a.cluster!.pipes.outCount).to.equal(1);

    viewer2 = await client(b, 'specialist', 'Dr B2');
    const joined = await joinWithTransports(viewer2, conferenceId, 'x');
    expect(joined.joined.producers.map((p: { producerId: string }) => p.producerId)).to.include(producerId);
    await viewer2.ok('consume', { transportId: joined.recv, producerId, rtpCapabilities: caps });
    expect(b.cluster!.pipes.inCount).to.equal(1);
    expect(a.cluster!.pipes.outCount).to.equal(1);
  });

  it('answers not_found for a producer no hub of the conference has', async () => {
    const recv = (await viewer2.ok('createTransport', { direction: 'recv' })).transport.id;
    const reply = await viewer2.request('consume', { transportId: recv, producerId: '00000000-0000-4000-8000-000000000000', rtpCapabilities: b.conferences.get(conferenceId)!.router.rtpCapabilities });
    expect(reply.ok).to.equal(false);
    if (!reply.ok) expect(reply.error.code).to.equal('not_found');
  });

  it('refuses bus messages that fail their schema, and a pipe request for an address the asking hub did not register', async () => {
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    const listener = new Redis(redis.url);
    const replies: unknown[] = [];
    await listener.subscribe('{hoichan}:bus:hub:hub-b');
    listener.on('message', (_c: string, m: string) => replies.push(JSON.parse(m)));
    const dropped = a.cluster!.bus.dropped;
    await raw.publish('{hoichan}:bus:hub:hub-a', JSON.stringify({ hub: 'hub-b', type: 'pipeRequest', requestId: 'r1' }));
    await raw.publish('{hoichan}:bus:hub:hub-a', 'not json');
    await waitUntil(() => a.cluster!.bus.dropped === dropped + 2, 3000, 'both refused');
    const forged = { hub: 'hub-b', type: 'pipeRequest', requestId: 'r2', conferenceId, producerId, pipeId: 'p-forged', ip: '10.9.9.9', port: 5004, srtp: null };
    await raw.publish('{hoichan}:bus:hub:hub-a', JSON.stringify(forged));
    await waitUntil(() => replies.length > 0, 3000, 'an answer to the forged request');
    expect(replies[0]).to.include({ type: 'pipeRefused', requestId: 'r2', code: 'unavailable' });
    expect(a.cluster!.pipes.outCount).to.equal(1);
    raw.disconnect();
    listener.disconnect();
  });

  it('closing the producer closes the pipe; consumers on the other hub get producerClosed and consumerClosed', async () => {
    await presenter.ok('closeProducer', { producerId });
    for (const viewer of [viewer1, viewer2]) {
      await viewer.waitFor('producerClosed', (p) => p.producerId === producerId);
      await viewer.waitFor('consumerClosed', (p) => p.producerId === producerId);
    }
    await waitUntil(() => b.cluster!.pipes.inCount === 0 && a.cluster!.pipes.outCount === 0, 3000, 'both ends of the pipe closed');
  });

  it('tells the other hubs when a peer leaves', async () => {
    await presenter.ok('leave', {});
    await viewer1.waitFor('peerLeft', (p) => p.peerId === presenterPeerId);
    await viewer2.waitFor('peerLeft', (p) => p.peerId === presenterPeerId);
  });
});
