import { expect } from 'chai';
import jwt from 'jsonwebtoken';
import type { Hub } from '../../src/hub/Hub.js';
import {
  TEST_SECRET,
  TestClient,
  fakeDtlsParameters,
  joinWithTransports,
  rtpParametersFor,
  startTestHub,
  token,
  waitUntil,
} from '../support/hub.js';

describe('signaling (real mediasoup worker, real socket.io clients)', function () {
  let hub: Hub;
  const clients: TestClient[] = [];
  let conferenceSeq = 0;
  let conf: string;

  /** A client whose token grants the test's conference (engineers: '*'); `name` is the name others see. */
  async function connect(role: 'specialist' | 'site' | 'engineer' = 'specialist', confClaim?: string, name?: string): Promise<TestClient> {
    const client = await TestClient.connect(hub.url, token(role, confClaim ?? (role === 'engineer' ? '*' : conf), name));
    clients.push(client);
    return client;
  }

  const transportsOnRouter = async (conferenceId: string) => {
    const conference = hub.conferences.get(conferenceId);
    if (!conference) return 0;
    const dump = await conference.router.dump();
    return dump.transportIds.length;
  };

  before(async () => {
    hub = await startTestHub({ signaling: { requestsPerSecond: 50, requestBurst: 60 } });
  });
  beforeEach(() => {
    conf = `conf-${++conferenceSeq}`;
  });
  afterEach(() => {
    for (const c of clients.splice(0)) c.close();
  });
  after(async () => {
    await hub.close();
  });

  describe('handshake', () => {
    it('refuses a connection without a token as unauthorized', async () => {
      const err = await TestClient.connect(hub.url, undefined).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).to.equal('unauthorized');
    });

    it('refuses a token signed with another secret, and an expired one', async () => {
      const claims = { iss: 'hoichan', aud: ['hoichan-signaling'], jti: 'jti-0123456789', sub: 'x', name: 'x', role: 'specialist', conf: 'c1' };
      const forged = jwt.sign(claims, 'another-secret-0123456789-0123456789-0123456789', { expiresIn: 60 });
      const expired = jwt.sign({ ...claims, iat: Math.floor(Date.now() / 1000) - 100, exp: Math.floor(Date.now() / 1000) - 10 }, TEST_SECRET);
      for (const bad of [forged, expired, 'not-a-jwt']) {
        const err = await TestClient.connect(hub.url, bad).then(
          () => null,
          (e: Error) => e,
        );
        expect(err?.message, bad.slice(0, 12)).to.equal('unauthorized');
      }
    });

    it('refuses a token whose role is not a Hoichan role', async () => {
      const odd = jwt.sign({ iss: 'hoichan', aud: ['hoichan-signaling'], jti: 'jti-0123456789', sub: 'x', name: 'x', role: 'admin', conf: 'c1' }, TEST_SECRET, { expiresIn: 60 });
      const err = await TestClient.connect(hub.url, odd).then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).to.equal('unauthorized');
    });
  });

  describe('join', () => {
    it('returns peer id, role, router capabilities with opus, VP8, VP9 and H.264, and the conference state', async () => {
      const a = await connect('specialist', undefined, 'Dr A');
      const reply = await a.ok('join', { conferenceId: conf, displayName: 'Dr A' });
      expect(reply.peerId).to.be.a('string');
      expect(reply.role).to.equal('specialist');
      const mimeTypes = reply.routerRtpCapabilities.codecs.map((c: { mimeType: string }) => c.mimeType);
      expect(mimeTypes).to.include.members(['audio/opus', 'video/VP8', 'video/VP9', 'video/H264']);
      const h264 = reply.routerRtpCapabilities.codecs.find((c: { mimeType: string }) => c.mimeType === 'video/H264');
      expect(h264.parameters).to.include({ 'packetization-mode': 1, 'profile-level-id': '42e01f' });
      expect(reply.peers).to.deep.equal([]);
      expect(reply.producers).to.deep.equal([]);
      expect(reply.devices).to.deep.equal([]);

      const b = await connect('site', undefined, 'Site B');
      const joinedB = await b.ok('join', { conferenceId: conf, displayName: 'Site B' });
      expect(joinedB.peers).to.deep.equal([{ peerId: reply.peerId, displayName: 'Dr A', role: 'specialist' }]);
      const seen = await a.waitFor('peerJoined');
      expect(seen).to.deep.equal({ peerId: joinedB.peerId, displayName: 'Site B', role: 'site' });
    });

    it('answers a malformed join with bad_request naming the field, and the connection lives', async () => {
      const a = await connect();
      const bad = await a.request('join', { conferenceId: 42, displayName: 'x' });
      expect(bad).to.deep.include({ ok: false });
      if (bad.ok) throw new Error('unreachable');
      expect(bad.error.code).to.equal('bad_request');
      expect(bad.error.message).to.match(/^conferenceId:/);
      const badName = await a.request('join', { conferenceId: conf, displayName: 42 });
      expect(!badName.ok && badName.error.message).to.match(/^displayName:/);
      const notObject = await a.request('join', 'hello');
      expect(!notObject.ok && notObject.error.code).to.equal('bad_request');
      expect(a.socket.connected).to.equal(true);
      await a.ok('join', { conferenceId: conf, displayName: 'Dr A' });
    });

    it('forbids a conference the token does not grant, and forbids the engineer role from media', async () => {
      const a = await connect('specialist', 'some-other-conference');
      const reply = await a.request('join', { conferenceId: conf, displayName: 'x' });
      expect(!reply.ok && reply.error.code).to.equal('forbidden');
      const engineer = await connect('engineer');
      const e = await engineer.request('join', { conferenceId: conf, displayName: 'ops' });
      expect(!e.ok && e.error.code).to.equal('forbidden');
    });

    it('refuses a second join on the same socket with conflict', async () => {
      const a = await connect();
      await a.ok('join', { conferenceId: conf, displayName: 'Dr A' });
      const again = await a.request('join', { conferenceId: conf, displayName: 'Dr A' });
      expect(!again.ok && again.error.code).to.equal('conflict');
    });

    it('answers media requests before join, and unknown requests, with bad_request', async () => {
      const a = await connect();
      const early = await a.request('createTransport', { direction: 'send' });
      expect(!early.ok && early.error.code).to.equal('bad_request');
      const unknown = await a.request('launchRocket', {});
      expect(!unknown.ok && unknown.error).to.deep.equal({ code: 'bad_request', message: "unknown request 'launchRocket'" });
    });
  });

  describe('transports, producers and consumers', () => {
    it('creates and connects transports; bad payloads name the field', async () => {
      const a = await connect();
      await a.ok('join', { conferenceId: conf, displayName: 'A' });
      const created = await a.ok('createTransport', { direction: 'send' });
      expect(created.transport).to.have.keys('id', 'iceParameters', 'iceCandidates', 'dtlsParameters');
      expect(created.transport.iceCandidates.map((c: { protocol: string }) => c.protocol)).to.include.members(['udp', 'tcp']);
      const badDirection = await a.request('createTransport', { direction: 'sideways' });
      expect(!badDirection.ok && badDirection.error.message).to.match(/^direction:/);

      await a.ok('connectTransport', { transportId: created.transport.id, dtlsParameters: fakeDtlsParameters });
      const twice = await a.request('connectTransport', { transportId: created.transport.id, dtlsParameters: fakeDtlsParameters });
      expect(!twice.ok && twice.error.code).to.equal('conflict');
      const noFingerprint = await a.request('connectTransport', { transportId: created.transport.id, dtlsParameters: { fingerprints: [] } });
      expect(!noFingerprint.ok && noFingerprint.error.message).to.match(/^dtlsParameters\.fingerprints:/);
      const missing = await a.request('connectTransport', { transportId: 'nope', dtlsParameters: fakeDtlsParameters });
      expect(!missing.ok && missing.error.code).to.equal('not_found');
    });

    it('produces, announces newProducer with its source, consumes paused, resumes, and sets layers', async () => {
      const a = await connect('site');
      const b = await connect('specialist');
      const pa = await joinWithTransports(a, conf, 'Site');
      const pb = await joinWithTransports(b, conf, 'Dr B');

      const produced = await a.ok('produce', { transportId: pa.send, kind: 'video', rtpParameters: rtpParametersFor('video'), source: 'camera' });
      const announced = await b.waitFor('newProducer');
      expect(announced).to.deep.equal({ producerId: produced.producerId, peerId: pa.joined.peerId, kind: 'video', source: 'camera' });
      const mic = await a.ok('produce', { transportId: pa.send, kind: 'audio', rtpParameters: rtpParametersFor('audio') });
      expect((await b.waitFor('newProducer', (p) => p.producerId === mic.producerId)).source).to.equal('microphone');

      const consumed = await b.ok('consume', { transportId: pb.recv, producerId: produced.producerId, rtpCapabilities: pb.joined.routerRtpCapabilities });
      expect(consumed.consumer).to.include({ producerId: produced.producerId, kind: 'video' });
      expect(consumed.consumer.rtpParameters.codecs[0].mimeType).to.equal('video/VP8');
      const consumer = hub.conferences.get(conf)!.getPeer(pb.joined.peerId)!.consumers.get(consumed.consumer.id)!;
      expect(consumer.paused).to.equal(true);
      await b.ok('resumeConsumer', { consumerId: consumed.consumer.id });
      expect(consumer.paused).to.equal(false);
      await b.ok('setConsumerLayers', { consumerId: consumed.consumer.id, spatialLayer: 0, temporalLayer: 0 });
      const badLayer = await b.request('setConsumerLayers', { consumerId: consumed.consumer.id, spatialLayer: -1 });
      expect(!badLayer.ok && badLayer.error.message).to.match(/^spatialLayer:/);

      // A later joiner learns of existing producers in the join reply.
      const c = await connect('specialist', undefined, 'Dr C');
      const joinedC = await c.ok('join', { conferenceId: conf, displayName: 'Dr C' });
      expect(joinedC.producers.map((p: { producerId: string }) => p.producerId)).to.have.members([produced.producerId, mic.producerId]);
    });

    it('rejects bad produce and consume requests with clear errors', async () => {
      const a = await connect();
      const b = await connect();
      const pa = await joinWithTransports(a, conf, 'A');
      const pb = await joinWithTransports(b, conf, 'B');
      const badKind = await a.request('produce', { transportId: pa.send, kind: 'text', rtpParameters: rtpParametersFor('video') });
      expect(!badKind.ok && badKind.error.message).to.match(/^kind:/);
      const noCodecs = await a.request('produce', { transportId: pa.send, kind: 'video', rtpParameters: { codecs: [] } });
      expect(!noCodecs.ok && noCodecs.error.message).to.match(/^rtpParameters\.codecs:/);
      const onRecv = await a.request('produce', { transportId: pa.recv, kind: 'video', rtpParameters: rtpParametersFor('video') });
      expect(!onRecv.ok && onRecv.error.code).to.equal('bad_request');
      const wrongSource = await a.request('produce', { transportId: pa.send, kind: 'audio', rtpParameters: rtpParametersFor('audio'), source: 'ultrasound' });
      expect(!wrongSource.ok && wrongSource.error.message).to.match(/^source:/);

      const produced = await a.ok('produce', { transportId: pa.send, kind: 'video', rtpParameters: rtpParametersFor('video') });
      const duplicate = await a.request('produce', { transportId: pa.send, kind: 'video', rtpParameters: rtpParametersFor('video') });
      expect(!duplicate.ok && duplicate.error.code).to.equal('conflict');

      const h264Only = { codecs: [{ kind: 'video', mimeType: 'video/H264', clockRate: 90000, parameters: { 'packetization-mode': 1, 'profile-level-id': '42e01f' } }] };
      const incompatible = await b.request('consume', { transportId: pb.recv, producerId: produced.producerId, rtpCapabilities: h264Only });
      expect(!incompatible.ok && incompatible.error.message).to.match(/^rtpCapabilities:/);
      const unknown = await b.request('consume', { transportId: pb.recv, producerId: 'no-such-producer', rtpCapabilities: pb.joined.routerRtpCapabilities });
      expect(!unknown.ok && unknown.error.code).to.equal('not_found');
      const own = await a.request('consume', { transportId: pa.recv, producerId: produced.producerId, rtpCapabilities: pa.joined.routerRtpCapabilities });
      expect(!own.ok && own.error.code).to.equal('bad_request');
      expect(a.socket.connected && b.socket.connected).to.equal(true);
    });

    it('pauses, resumes and closes a producer; only its owner may; consumers hear consumerClosed', async () => {
      const a = await connect();
      const b = await connect();
      const pa = await joinWithTransports(a, conf, 'A');
      const pb = await joinWithTransports(b, conf, 'B');
      const { producerId } = await a.ok('produce', { transportId: pa.send, kind: 'video', rtpParameters: rtpParametersFor('video') });
      const { consumer } = await b.ok('consume', { transportId: pb.recv, producerId, rtpCapabilities: pb.joined.routerRtpCapabilities });
      const producer = hub.conferences.get(conf)!.getPeer(pa.joined.peerId)!.producers.get(producerId)!;

      await a.ok('pauseProducer', { producerId });
      expect(producer.paused).to.equal(true);
      await a.ok('resumeProducer', { producerId });
      expect(producer.paused).to.equal(false);
      const notOwner = await b.request('closeProducer', { producerId });
      expect(!notOwner.ok && notOwner.error.code).to.equal('forbidden');
      const missing = await a.request('pauseProducer', { producerId: 'missing' });
      expect(!missing.ok && missing.error.code).to.equal('not_found');

      await a.ok('closeProducer', { producerId });
      expect(await b.waitFor('producerClosed')).to.deep.equal({ producerId });
      expect(await b.waitFor('consumerClosed')).to.deep.equal({ consumerId: consumer.id, producerId });
      expect(a.events.some((e) => e.name === 'producerClosed')).to.equal(false, 'the owner asked; it needs no producerClosed');
    });

    it('restarts ICE with new ICE parameters', async () => {
      const a = await connect();
      const pa = await joinWithTransports(a, conf, 'A');
      const before = hub.conferences.get(conf)!.getPeer(pa.joined.peerId)!.transports.get(pa.send)!.iceParameters;
      const { iceParameters } = await a.ok('restartIce', { transportId: pa.send });
      expect(iceParameters.usernameFragment).to.be.a('string').and.not.equal(before.usernameFragment);
      const bad = await a.request('restartIce', { transportId: 'x'.repeat(65) });
      expect(!bad.ok && bad.error.message).to.match(/^transportId:/);
    });
  });

  describe('leaving and cleanup', () => {
    it('leave tells the others peerLeft and producerClosed and frees the transports', async () => {
      const a = await connect();
      const b = await connect();
      const pa = await joinWithTransports(a, conf, 'A');
      await joinWithTransports(b, conf, 'B');
      const { producerId } = await a.ok('produce', { transportId: pa.send, kind: 'audio', rtpParameters: rtpParametersFor('audio') });
      expect(await transportsOnRouter(conf)).to.equal(4);
      await a.ok('leave');
      expect(await b.waitFor('producerClosed')).to.deep.equal({ producerId });
      expect(await b.waitFor('peerLeft')).to.deep.equal({ peerId: pa.joined.peerId });
      expect(await transportsOnRouter(conf)).to.equal(2);
      // Left, not disconnected: the socket can join again.
      await a.ok('join', { conferenceId: conf, displayName: 'A again' });
    });

    it('a disconnect cleans up every transport, producer and consumer, and the last one out closes the conference', async () => {
      const a = await connect();
      const b = await connect();
      const pa = await joinWithTransports(a, conf, 'A');
      const pb = await joinWithTransports(b, conf, 'B');
      const { producerId } = await a.ok('produce', { transportId: pa.send, kind: 'video', rtpParameters: rtpParametersFor('video') });
      await b.ok('produce', { transportId: pb.send, kind: 'video', rtpParameters: rtpParametersFor('video') });
      await b.ok('consume', { transportId: pb.recv, producerId, rtpCapabilities: pb.joined.routerRtpCapabilities });
      const router = hub.conferences.get(conf)!.router;

      a.close();
      await b.waitFor('peerLeft', (d) => d.peerId === pa.joined.peerId);
      await b.waitFor('consumerClosed');
      expect((await router.dump()).transportIds).to.have.length(2);
      b.close();
      await waitUntil(() => hub.conferences.get(conf) === undefined, 5000, 'conference to close');
      expect(router.closed).to.equal(true);
    });

    it('rate-limits a flood with rate_limited, and the connection lives', async () => {
      const a = await connect();
      const replies = await Promise.all(Array.from({ length: 120 }, () => a.request('leave')));
      const limited = replies.filter((r) => !r.ok && r.error.code === 'rate_limited').length;
      expect(limited).to.be.greaterThan(0);
      expect(replies.filter((r) => r.ok).length).to.be.greaterThan(0);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await a.request('leave')).ok).to.equal(true);
    });
  });
});
