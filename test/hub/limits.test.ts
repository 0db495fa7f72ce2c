import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import type { Role } from '../../src/media/events.js';
import { TestClient, fakeDtlsParameters, rtpParametersFor, startTestHub, token, waitUntil, type Reply } from '../support/hub.js';

/** A token of its own subject (`${role}-${user}`): the per-user limits count by `sub`. One conference per token. */
function tokenFor(user: string, role: Role = 'specialist', conf = 'limits'): string {
  return token(role, conf, user);
}

function connectError(url: string, authToken: string): Promise<string | null> {
  return TestClient.connect(url, authToken).then(
    (client) => {
      client.close();
      return null;
    },
    (err: Error) => err.message,
  );
}

function codes(replies: Reply[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of replies) {
    const code = r.ok ? 'ok' : r.error.code;
    out[code] = (out[code] ?? 0) + 1;
  }
  return out;
}

/** Emits an event with an ack and resolves with the reply (unknown events included). */
function emitWithAck(client: TestClient, event: string, payload: unknown): Promise<Reply> {
  return client.socket.timeout(10_000).emitWithAck(event, payload) as Promise<Reply>;
}

describe('resource bounds per principal (signaling, media, HTTP)', function () {
  this.timeout(60_000);
  const clients: TestClient[] = [];
  let hub: Hub;

  async function connect(authToken: string): Promise<TestClient> {
    const client = await TestClient.connect(hub.url, authToken);
    clients.push(client);
    return client;
  }

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await hub?.close();
  });

  describe('connections', () => {
    it('refuses the handshake past maxConnectionsPerUser with too_many_connections, and admits again once one closes', async () => {
      hub = await startTestHub({ signaling: { maxConnectionsPerUser: 3, maxConnectionsPerIp: 50 } });
      const same = tokenFor('alice');
      for (let i = 0; i < 3; i++) await connect(same);
      expect(await connectError(hub.url, same)).to.equal('too_many_connections');
      // Another user from the same address is not affected.
      await connect(tokenFor('bob'));
      clients.shift()!.close();
      await waitUntil(async () => (await connectError(hub.url, same)) === null, 10_000, 'a free slot for alice');
    });

    it('refuses the handshake past maxConnectionsPerIp (loopback counts) whatever the token', async () => {
      hub = await startTestHub({ signaling: { maxConnectionsPerUser: 10, maxConnectionsPerIp: 4 } });
      for (let i = 0; i < 4; i++) await connect(tokenFor(`user-${i}`));
      expect(await connectError(hub.url, tokenFor('user-new'))).to.equal('too_many_connections');
    });

    it('still answers unauthorized (not too_many_connections) to a bad token', async () => {
      hub = await startTestHub({ signaling: { maxConnectionsPerUser: 1 } });
      await connect(tokenFor('carol'));
      expect(await connectError(hub.url, 'not-a-jwt')).to.equal('unauthorized');
    });
  });

  describe('request rates', () => {
    it('shares one bucket among all sockets of one user: more sockets buy no more requests', async () => {
      hub = await startTestHub({
        signaling: { requestsPerSecond: 100, requestBurst: 100, userRequestsPerSecond: 0.5, userRequestBurst: 20, ipRequestBurst: 10_000 },
      });
      const sockets = await Promise.all([0, 1, 2].map(() => connect(tokenFor('dave'))));
      const replies = (await Promise.all(sockets.map((s) => Promise.all(Array.from({ length: 15 }, () => s.request('leave')))))).flat();
      const count = codes(replies);
      // 45 requests against a burst of 20 (refill 0.5/s): at most a couple more pass while they are answered.
      expect(count.ok ?? 0).to.be.within(20, 24);
      expect(count.rate_limited).to.equal(45 - (count.ok ?? 0));
      // Another user still gets service.
      expect((await (await connect(tokenFor('erin'))).request('leave')).ok).to.equal(true);
    });

    it('counts unknown events, with or without an ack, against the limit', async () => {
      hub = await startTestHub({ signaling: { requestsPerSecond: 0.5, requestBurst: 10 } });
      const a = await connect(tokenFor('frank'));
      const replies = await Promise.all(Array.from({ length: 14 }, (_, i) => emitWithAck(a, `noSuchRequest${i}`, {})));
      const count = codes(replies);
      expect(count.bad_request).to.be.within(10, 12);
      expect(count.rate_limited).to.equal(14 - count.bad_request!);
      expect(replies[0]).to.deep.equal({ ok: false, error: { code: 'bad_request', message: "unknown request 'noSuchRequest0'" } });

      // Events without an ack drain the bucket too: a fresh socket (own bucket) of another user.
      const b = await connect(tokenFor('grace'));
      for (let i = 0; i < 12; i++) b.socket.emit('noSuchRequest', { i });
      b.socket.emit('leave', {});
      const after = await b.request('leave');
      expect(after).to.deep.include({ ok: false });
      expect((after as { error: { code: string } }).error.code).to.equal('rate_limited');
    });

    it('shares one bucket among all users of one address', async () => {
      hub = await startTestHub({ signaling: { ipRequestsPerSecond: 0.5, ipRequestBurst: 16, userRequestBurst: 1000 } });
      const users = await Promise.all(['h1', 'h2', 'h3', 'h4'].map((sub) => connect(tokenFor(sub))));
      const replies = (await Promise.all(users.map((u) => Promise.all(Array.from({ length: 8 }, () => u.request('leave')))))).flat();
      const count = codes(replies);
      expect(count.ok ?? 0).to.be.within(16, 19);
      expect(count.rate_limited).to.equal(32 - (count.ok ?? 0));
    });

    it('limits HTTP API requests per IP with 429 rate_limited JSON', async () => {
      hub = await startTestHub({ http: { requestsPerSecond: 0.5, requestBurst: 5 } });
      const statuses: number[] = [];
      let limited: unknown;
      for (let i = 0; i < 9; i++) {
        const res = await fetch(`${hub.url}/api/conferences`, { headers: { authorization: `Bearer ${token('engineer', '*')}` } });
        statuses.push(res.status);
        if (res.status === 429) limited = await res.json();
        else await res.arrayBuffer();
      }
      expect(statuses.filter((s) => s === 200).length).to.be.within(5, 6);
      expect(statuses.filter((s) => s === 429).length).to.equal(9 - statuses.filter((s) => s === 200).length);
      expect(limited).to.have.nested.property('error.code', 'rate_limited');
      // Health checks are not API routes: never limited.
      expect((await fetch(`${hub.url}/healthz`)).status).to.equal(200);
    });
  });

  describe('media caps', () => {
    it('caps conferences per hub and peers per conference with limit_exceeded', async () => {
      hub = await startTestHub({ media: { maxConferences: 2, maxPeersPerConference: 2 } });
      const users = await Promise.all(
        [
          ['i1', 'cap-a'],
          ['i2', 'cap-b'],
          ['i3', 'cap-c'],
          ['i3', 'cap-a'],
          ['i4', 'cap-a'],
        ].map(([user, conf]) => connect(tokenFor(user!, 'specialist', conf))),
      );
      expect((await users[0]!.request('join', { conferenceId: 'cap-a', displayName: 'A' })).ok).to.equal(true);
      expect((await users[1]!.request('join', { conferenceId: 'cap-b', displayName: 'B' })).ok).to.equal(true);
      const third = await users[2]!.request('join', { conferenceId: 'cap-c', displayName: 'C' });
      expect(third).to.deep.include({ ok: false });
      expect((third as { error: { code: string; message: string } }).error).to.deep.include({ code: 'limit_exceeded' });
      expect((third as { error: { message: string } }).error.message).to.include('media.maxConferences');
      expect((await users[3]!.request('join', { conferenceId: 'cap-a', displayName: 'C' })).ok).to.equal(true);
      const full = await users[4]!.request('join', { conferenceId: 'cap-a', displayName: 'D' });
      expect((full as { error: { code: string; message: string } }).error.code).to.equal('limit_exceeded');
      expect((full as { error: { message: string } }).error.message).to.include('media.maxPeersPerConference');
    });

    it('gives a peer one consumer per producer (a repeat answers the same consumer) and caps consumers per peer', async () => {
      hub = await startTestHub({ signaling: { maxConsumersPerPeer: 2 } });
      const conferenceId = 'consumers';
      const sender = await connect(tokenFor('sender', 'specialist', conferenceId));
      const viewer = await connect(tokenFor('viewer', 'specialist', conferenceId));
      await sender.ok('join', { conferenceId, displayName: 'S' });
      const joined = await viewer.ok('join', { conferenceId, displayName: 'V' });
      const send = (await sender.ok('createTransport', { direction: 'send' })).transport.id;
      await sender.ok('connectTransport', { transportId: send, dtlsParameters: fakeDtlsParameters });
      const producers: string[] = [];
      for (const [kind, source] of [
        ['audio', 'microphone'],
        ['video', 'camera'],
        ['video', 'screen'],
      ] as const) {
        producers.push((await sender.ok('produce', { transportId: send, kind, source, rtpParameters: rtpParametersFor(kind) })).producerId);
      }
      const recv = (await viewer.ok('createTransport', { direction: 'recv' })).transport.id;
      const recv2 = (await viewer.ok('createTransport', { direction: 'recv' })).transport.id;
      const rtpCapabilities = joined.routerRtpCapabilities;

      // 40 requests for one producer, at once: one consumer on the hub, the same id in every reply.
      const replies = await Promise.all(
        Array.from({ length: 40 }, () => viewer.request('consume', { transportId: recv, producerId: producers[1], rtpCapabilities })),
      );
      const ids = new Set(replies.map((r) => (r.ok ? r.consumer.id : r.error.code)));
      expect([...ids], JSON.stringify(replies.slice(0, 3))).to.have.length(1);
      expect(replies.every((r) => r.ok)).to.equal(true);
      const peer = hub.conferences.get(conferenceId)!.getPeer(joined.peerId)!;
      expect(peer.consumers.size).to.equal(1);

      const elsewhere = await viewer.request('consume', { transportId: recv2, producerId: producers[1], rtpCapabilities });
      expect((elsewhere as { error: { code: string } }).error.code).to.equal('conflict');

      expect((await viewer.request('consume', { transportId: recv, producerId: producers[0], rtpCapabilities })).ok).to.equal(true);
      const over = await viewer.request('consume', { transportId: recv, producerId: producers[2], rtpCapabilities });
      expect((over as { error: { code: string; message: string } }).error.code).to.equal('limit_exceeded');
      expect((over as { error: { message: string } }).error.message).to.include('signaling.maxConsumersPerPeer');
      expect(peer.consumers.size).to.equal(2);
    });
  });

  describe('ingests', () => {
    const post = (conferenceId: string, body: unknown, auth: string) =>
      fetch(`${hub.url}/api/conferences/${conferenceId}/ingests`, {
        method: 'POST',
        headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const call = (method: 'GET' | 'DELETE', conferenceId: string, ingestId: string, auth: string) =>
      fetch(`${hub.url}/api/conferences/${conferenceId}/ingests/${ingestId}`, { method, headers: { authorization: `Bearer ${auth}` } });

    it('refuses plain RTP by hub policy with a clear 400, and leaves no conference behind', async () => {
      hub = await startTestHub({});
      const res = await post('policy', { deviceId: 'us-1', srtp: false }, tokenFor('site-a', 'site', 'policy'));
      expect(res.status).to.equal(400);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).to.equal('bad_request');
      expect(body.error.message).to.match(/^srtp: .*media\.ingestRequireSrtp/);
      expect(hub.conferences.list()).to.have.length(0);
      const srtp = await post('policy', { deviceId: 'us-1' }, tokenFor('site-a', 'site', 'policy'));
      expect(srtp.status).to.equal(201);
      expect(((await srtp.json()) as { srtp?: unknown }).srtp).to.not.equal(undefined);
    });

    it('lets only the ingest\'s creator (same sub) or an engineer read and delete it', async () => {
      hub = await startTestHub({});
      const owner = tokenFor('site-owner', 'site', 'own');
      const res = await post('own', { deviceId: 'us-1' }, owner);
      const { ingestId } = (await res.json()) as { ingestId: string };
      for (const other of [tokenFor('site-other', 'site', 'own'), tokenFor('spec-other', 'specialist', 'own')]) {
        for (const method of ['GET', 'DELETE'] as const) {
          const denied = await call(method, 'own', ingestId, other);
          expect(denied.status, method).to.equal(403);
          expect(((await denied.json()) as { error: { code: string } }).error.code).to.equal('forbidden');
        }
      }
      expect((await call('GET', 'own', ingestId, owner)).status).to.equal(200);
      expect((await call('GET', 'own', ingestId, tokenFor('eng', 'engineer', '*'))).status).to.equal(200);
      expect((await call('DELETE', 'own', ingestId, tokenFor('eng', 'engineer', '*'))).status).to.equal(204);
      expect((await call('GET', 'own', ingestId, owner)).status).to.equal(404);
    });

    it('caps ingests per conference and per user with 409 limit_exceeded', async () => {
      hub = await startTestHub({ media: { maxIngestsPerConference: 2, maxIngestsPerUser: 3 } });
      // One user (sub site-site-cap) with a token per conference.
      const site = (conf: string) => tokenFor('site-cap', 'site', conf);
      expect((await post('ing-a', { deviceId: 'd1' }, site('ing-a'))).status).to.equal(201);
      expect((await post('ing-a', { deviceId: 'd2' }, tokenFor('site-cap-2', 'site', 'ing-a'))).status).to.equal(201);
      const perConference = await post('ing-a', { deviceId: 'd3' }, site('ing-a'));
      expect(perConference.status).to.equal(409);
      expect(((await perConference.json()) as { error: { code: string; message: string } }).error).to.deep.include({ code: 'limit_exceeded' });
      expect((await post('ing-b', { deviceId: 'd4' }, site('ing-b'))).status).to.equal(201);
      expect((await post('ing-c', { deviceId: 'd5' }, site('ing-c'))).status).to.equal(201);
      const perUser = await post('ing-d', { deviceId: 'd6' }, site('ing-d'));
      expect(perUser.status).to.equal(409);
      expect(((await perUser.json()) as { error: { message: string } }).error.message).to.include('media.maxIngestsPerUser');
      // The refused request left no empty conference behind.
      expect(hub.conferences.get('ing-d')).to.equal(undefined);
    });

    it('answers 503 unavailable (not 500) when the RTC port range is used up, and serves again once ports free', async () => {
      // Six ports: three ingests (RTP + RTCP each).
      hub = await startTestHub({ media: { rtcMinPort: 51000, rtcMaxPort: 51005, maxIngestsPerConference: 10, maxIngestsPerUser: 10 } });
      const junk = tokenFor('junk', 'site', 'ports');
      const opened: string[] = [];
      let res: Response;
      for (let i = 0; ; i++) {
        res = await post('ports', { deviceId: `junk-${i}` }, junk);
        if (res.status !== 201) break;
        opened.push(((await res.json()) as { ingestId: string }).ingestId);
        expect(i).to.be.below(10);
      }
      expect(opened.length).to.equal(3);
      expect(res.status).to.equal(503);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).to.equal('unavailable');
      expect(body.error.message).to.include('media.rtcMinPort');
      expect((await call('DELETE', 'ports', opened[0]!, junk)).status).to.equal(204);
      expect((await post('ports', { deviceId: 'real' }, tokenFor('real-site', 'site', 'ports'))).status).to.equal(201);
    });
  });
});
