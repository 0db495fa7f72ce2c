import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import type { Role } from '../../src/media/events.js';
import { TestClient, fakeDtlsParameters, rtpParametersFor, startTestHub, token, type Reply } from '../support/hub.js';

// Role × action × scope over every signaling request and HTTP route. Each
// denied case must fail with forbidden (403) and change nothing; each allowed
// one must work. Ids of objects in a conference the caller is not in answer
// not_found (404 for HTTP), not forbidden: the hub does not confirm that they
// exist (docs/PROTOCOL.md, "Requests and replies").

const X = 'matrix-x';
const Y = 'matrix-y';

interface Principal {
  name: string;
  role: Role;
  /** The conference the token grants ('*' for the engineer). */
  conf: string;
  /** Where it joins to act (its granted conference); none for the engineer. */
  home?: string;
}

const PRINCIPALS: Principal[] = [
  { name: 'specialist', role: 'specialist', conf: X, home: X },
  { name: 'site', role: 'site', conf: X, home: X },
  { name: 'engineer', role: 'engineer', conf: '*' },
  { name: 'wrong-conference specialist', role: 'specialist', conf: Y, home: Y },
  { name: 'wrong-conference site', role: 'site', conf: Y, home: Y },
];

let userSeq = 0;
/** A fresh user (token `sub` = `${role}-${user}`) of the principal's role and conference, unless `user` is given. */
function tokenOf(p: Principal, user = `${p.name.replace(/\W+/g, '-')}-${++userSeq}`): string {
  return token(p.role, p.conf, user);
}

/** Objects other peers hold in one conference: a producing peer and a consuming peer. */
interface ConferenceFixture {
  peerIds: string[];
  rtpCapabilities: unknown;
  sendTransport: string;
  videoProducer: string;
  consumer: string;
}

/** What an acting peer holds after its setup. */
interface Actor {
  client: TestClient;
  peerId?: string;
  joined: boolean;
  send?: string;
  recv?: string;
  producer?: string;
  consumer?: string;
}

type Scope = 'own' | 'other peer' | 'other conference' | 'granted conference' | 'none';
type Outcome = 'ok' | 'forbidden' | 'not_found';

interface SignalingCase {
  principal: Principal;
  action: string;
  scope: Scope;
  expect: Outcome;
}

describe('authorization matrix: role × action × scope (signaling and HTTP)', function () {
  this.timeout(180_000);
  let hub: Hub;
  const fixtures = new Map<string, ConferenceFixture>();
  const fixtureClients: TestClient[] = [];

  async function fixtureFor(conferenceId: string): Promise<ConferenceFixture> {
    const owner: Principal = { name: 'fixture', role: 'site', conf: conferenceId };
    const producer = await TestClient.connect(hub.url, tokenOf(owner));
    const consumer = await TestClient.connect(hub.url, tokenOf({ ...owner, role: 'specialist' }));
    fixtureClients.push(producer, consumer);
    const joined = await producer.ok('join', { conferenceId, displayName: 'Fixture producer' });
    const joinedConsumer = await consumer.ok('join', { conferenceId, displayName: 'Fixture consumer' });
    const sendTransport = (await producer.ok('createTransport', { direction: 'send' })).transport.id;
    await producer.ok('connectTransport', { transportId: sendTransport, dtlsParameters: fakeDtlsParameters });
    const videoProducer = (await producer.ok('produce', { transportId: sendTransport, kind: 'video', rtpParameters: rtpParametersFor('video') })).producerId;
    await producer.ok('produce', { transportId: sendTransport, kind: 'audio', rtpParameters: rtpParametersFor('audio') });
    const recv = (await consumer.ok('createTransport', { direction: 'recv' })).transport.id;
    const rtpCapabilities = joined.routerRtpCapabilities;
    const consumerId = (await consumer.ok('consume', { transportId: recv, producerId: videoProducer, rtpCapabilities })).consumer.id;
    return { peerIds: [joined.peerId, joinedConsumer.peerId], rtpCapabilities, sendTransport, videoProducer, consumer: consumerId };
  }

  /** State of every fixture object: a denied request must leave it exactly as it was. */
  async function fixtureState(): Promise<string> {
    const parts: unknown[] = [];
    for (const conferenceId of [X, Y]) {
      const conference = hub.conferences.get(conferenceId)!;
      for (const peerId of fixtures.get(conferenceId)!.peerIds) {
        const peer = conference.getPeer(peerId);
        if (!peer) throw new Error(`fixture peer ${peerId} is gone`);
        parts.push({
          peer: peer.id,
          transports: [...peer.transports.values()].map((t) => [t.id, t.closed, t.appData.connected, t.iceParameters.usernameFragment]),
          producers: [...peer.producers.values()].map((p) => [p.id, p.closed, p.paused]),
          consumers: [...peer.consumers.values()].map((c) => [c.id, c.closed, c.paused, JSON.stringify(c.preferredLayers ?? null)]),
        });
      }
    }
    return JSON.stringify(parts);
  }

  async function actorFor(p: Principal): Promise<Actor> {
    const client = await TestClient.connect(hub.url, tokenOf(p));
    if (!p.home) return { client, joined: false };
    const home = fixtures.get(p.home)!;
    const { peerId } = await client.ok('join', { conferenceId: p.home, displayName: `Actor ${p.name}` });
    const send = (await client.ok('createTransport', { direction: 'send' })).transport.id;
    const recv = (await client.ok('createTransport', { direction: 'recv' })).transport.id;
    const producer = (await client.ok('produce', { transportId: send, kind: 'video', source: 'screen', rtpParameters: rtpParametersFor('video') })).producerId;
    const consumer = (await client.ok('consume', { transportId: recv, producerId: home.videoProducer, rtpCapabilities: home.rtpCapabilities })).consumer.id;
    return { client, joined: true, peerId, send, recv, producer, consumer };
  }

  /** The request for one case: the payload names the object of the scope. */
  function payloadFor(c: SignalingCase, actor: Actor): { name: string; payload: unknown } {
    const homeId = c.principal.home ?? X;
    const otherId = homeId === X ? Y : X;
    const home = fixtures.get(homeId)!;
    const other = fixtures.get(otherId)!;
    const target = c.scope === 'other conference' ? other : home;
    const own = c.scope === 'own' || c.scope === 'none';
    // The engineer has no objects of its own: it names the first conference's.
    const transport = own && actor.send ? actor.send : target.sendTransport;
    const producer = own && actor.producer ? actor.producer : target.videoProducer;
    const consumer = own && actor.consumer ? actor.consumer : target.consumer;
    switch (c.action) {
      case 'join':
        return { name: 'join', payload: { conferenceId: c.scope === 'other conference' ? otherId : homeId, displayName: 'Actor again' } };
      case 'createTransport':
        return { name: 'createTransport', payload: { direction: 'recv' } };
      case 'connectTransport':
        return { name: 'connectTransport', payload: { transportId: transport, dtlsParameters: fakeDtlsParameters } };
      case 'produce':
        return { name: 'produce', payload: { transportId: transport, kind: 'audio', rtpParameters: rtpParametersFor('audio') } };
      case 'consume':
        // 'own': the actor's recv transport towards another peer's producer (what consuming is for);
        // 'other peer': another peer's transport; 'other conference': a producer of the other conference.
        return {
          name: 'consume',
          payload: {
            transportId: c.scope === 'other peer' ? home.sendTransport : (actor.recv ?? home.sendTransport),
            producerId: c.scope === 'other conference' ? other.videoProducer : home.videoProducer,
            rtpCapabilities: home.rtpCapabilities,
          },
        };
      case 'resumeConsumer':
        return { name: 'resumeConsumer', payload: { consumerId: consumer } };
      case 'setConsumerLayers':
        return { name: 'setConsumerLayers', payload: { consumerId: consumer, spatialLayer: 0 } };
      case 'pauseProducer':
      case 'resumeProducer':
      case 'closeProducer':
        return { name: c.action, payload: { producerId: producer } };
      case 'restartIce':
        return { name: 'restartIce', payload: { transportId: transport } };
      case 'leave':
        return { name: 'leave', payload: {} };
    }
    throw new Error(`no payload for ${c.action}`);
  }

  function signalingCases(): SignalingCase[] {
    const cases: SignalingCase[] = [];
    const objectActions = ['connectTransport', 'produce', 'consume', 'resumeConsumer', 'setConsumerLayers', 'pauseProducer', 'resumeProducer', 'closeProducer', 'restartIce'];
    for (const principal of PRINCIPALS) {
      const engineer = principal.role === 'engineer';
      const add = (action: string, scope: Scope, outcome: Outcome) => cases.push({ principal, action, scope, expect: engineer ? 'forbidden' : outcome });
      // join: the granted conference only (a second join on the same socket is another rule, tested in signaling.test).
      cases.push({ principal, action: 'join', scope: 'granted conference', expect: engineer ? 'forbidden' : 'ok' });
      cases.push({ principal, action: 'join', scope: 'other conference', expect: 'forbidden' });
      add('createTransport', 'none', 'ok');
      for (const action of objectActions) {
        // Consuming another peer's producer is what consume is for: 'own' is the actor's own transport.
        add(action, 'own', 'ok');
        add(action, 'other peer', 'forbidden');
        add(action, 'other conference', 'not_found');
      }
      cases.push({ principal, action: 'leave', scope: 'none', expect: 'ok' });
    }
    return cases;
  }

  before(async () => {
    // Authorization, not limits, is tested here: caps wide enough for one actor per case.
    hub = await startTestHub({
      signaling: { maxConnectionsPerUser: 1000, maxConnectionsPerIp: 1000, userRequestBurst: 100_000, ipRequestBurst: 100_000, maxTransportsPerPeer: 8 },
      http: { requestBurst: 100_000 },
      media: { maxIngestsPerUser: 100, maxIngestsPerConference: 100, maxPeersPerConference: 1000 },
    });
    fixtures.set(X, await fixtureFor(X));
    fixtures.set(Y, await fixtureFor(Y));
  });
  after(async () => {
    for (const c of fixtureClients) c.close();
    await hub.close();
  });

  it('every signaling request: allowed ones work, forbidden ones fail with forbidden and change nothing', async () => {
    const cases = signalingCases();
    const failures: string[] = [];
    for (const c of cases) {
      const actor = await actorFor(c.principal);
      try {
        if (c.action === 'join') {
          // The actor is already in its home conference (when it may be): a join from a fresh socket.
          actor.client.close();
          actor.client = await TestClient.connect(hub.url, tokenOf(c.principal));
        }
        const before = await fixtureState();
        const { name, payload } = payloadFor(c, actor);
        const reply: Reply = await actor.client.request(name, payload);
        const outcome = reply.ok ? 'ok' : reply.error.code;
        const label = `${c.principal.name} × ${c.action} × ${c.scope}`;
        if (outcome !== c.expect) failures.push(`${label}: expected ${c.expect}, got ${outcome}${reply.ok ? '' : ` (${reply.error.message})`}`);
        if (!reply.ok && (await fixtureState()) !== before) failures.push(`${label}: denied, yet another peer's objects changed`);
        if (reply.ok && c.action === 'consume') {
          const peer = hub.conferences.get(c.principal.home!)!.getPeer(actor.peerId!);
          if (!peer?.consumers.has(reply.consumer.id)) failures.push(`${label}: ok, but the hub holds no such consumer for the actor`);
        }
      } finally {
        actor.client.close();
      }
    }
    console.log(`      signaling matrix: ${cases.length} cases (${cases.filter((c) => c.expect === 'ok').length} allowed, ${cases.filter((c) => c.expect !== 'ok').length} denied)`);
    expect(failures, failures.join('\n')).to.deep.equal([]);
  });

  it('every HTTP route: allowed ones work, forbidden ones answer 403 JSON and change nothing', async () => {
    interface HttpCase {
      principal: Principal | 'no token';
      route: string;
      scope: string;
      status: number;
      run: (auth: string | undefined) => Promise<Response>;
      /** For an allowed DELETE: the ingest must be gone; for a denied one: still there. */
      after?: (allowed: boolean) => Promise<string | undefined>;
    }
    const cases: HttpCase[] = [];
    const headers = (auth: string | undefined): Record<string, string> => (auth ? { authorization: `Bearer ${auth}`, 'content-type': 'application/json' } : { 'content-type': 'application/json' });
    const ingestOwner: Principal = { name: 'ingest owner', role: 'site', conf: X };
    const ownerToken = tokenOf(ingestOwner, 'ingest-owner');
    let ingestSeq = 0;
    const openIngest = async (conferenceId: string, auth: string): Promise<string> => {
      const res = await fetch(`${hub.url}/api/conferences/${conferenceId}/ingests`, { method: 'POST', headers: headers(auth), body: JSON.stringify({ deviceId: `dev-${++ingestSeq}` }) });
      if (res.status !== 201) throw new Error(`fixture ingest: ${res.status} ${await res.text()}`);
      return ((await res.json()) as { ingestId: string }).ingestId;
    };
    const exists = (conferenceId: string, ingestId: string) => hub.conferences.get(conferenceId)?.ingests.get(ingestId) !== undefined;
    const everyone: (Principal | 'no token')[] = [...PRINCIPALS, 'no token'];

    for (const principal of everyone) {
      const role = principal === 'no token' ? undefined : principal.role;
      const unauth = principal === 'no token';
      for (const route of ['/api/conferences', '/api/ops', '/metrics']) {
        cases.push({ principal, route: `GET ${route}`, scope: 'hub', status: unauth ? 401 : role === 'engineer' ? 200 : 403, run: (auth) => fetch(hub.url + route, { headers: headers(auth) }) });
      }
      for (const [scope, conferenceId] of [
        ['granted conference', X],
        ['other conference', Y],
      ] as const) {
        const granted = principal !== 'no token' && (principal.conf === '*' || principal.conf === conferenceId);
        const mayOpen = granted && role !== 'engineer';
        cases.push({
          principal,
          route: 'POST ingest',
          scope,
          status: unauth ? 401 : mayOpen ? 201 : 403,
          run: (auth) => fetch(`${hub.url}/api/conferences/${conferenceId}/ingests`, { method: 'POST', headers: headers(auth), body: JSON.stringify({ deviceId: `post-${++ingestSeq}` }) }),
        });
      }
      // Read and delete: the caller's own ingest, another user's in the granted conference, one in another conference.
      for (const method of ['GET', 'DELETE'] as const) {
        for (const scope of ['own ingest', "other user's ingest", 'other conference ingest'] as const) {
          if (scope === 'own ingest' && (unauth || role === 'engineer')) continue; // neither can open one
          const conferenceId = scope === 'other conference ingest' ? (principal !== 'no token' && principal.conf === Y ? X : Y) : principal !== 'no token' && principal.conf === Y ? Y : X;
          const granted = principal !== 'no token' && (principal.conf === '*' || principal.conf === conferenceId);
          const allowed = granted && (scope === 'own ingest' || role === 'engineer');
          let ingestId = '';
          cases.push({
            principal,
            route: `${method} ingest`,
            scope,
            status: unauth ? 401 : allowed ? (method === 'GET' ? 200 : 204) : 403,
            run: async (auth) => {
              const owner = scope === 'own ingest' ? auth! : conferenceId === X ? ownerToken : tokenOf({ ...ingestOwner, conf: Y }, 'ingest-owner-y');
              ingestId = await openIngest(conferenceId, owner);
              return fetch(`${hub.url}/api/conferences/${conferenceId}/ingests/${ingestId}`, { method, headers: headers(auth) });
            },
            after: async (ok) => {
              const still = exists(conferenceId, ingestId);
              if (method === 'DELETE' && ok === still) return ok ? 'allowed DELETE left the ingest open' : 'denied DELETE closed the ingest';
              if (method === 'GET' && !still) return 'GET closed the ingest';
              if (still) hub.conferences.get(conferenceId)!.ingests.close(ingestId);
              return undefined;
            },
          });
        }
      }
    }

    const failures: string[] = [];
    for (const c of cases) {
      const auth = c.principal === 'no token' ? undefined : tokenOf(c.principal);
      const label = `${c.principal === 'no token' ? 'no token' : c.principal.name} × ${c.route} × ${c.scope}`;
      const res = await c.run(auth);
      const text = await res.text();
      if (res.status !== c.status) failures.push(`${label}: expected ${c.status}, got ${res.status} ${text.slice(0, 160)}`);
      if (res.status === 403 && JSON.parse(text)?.error?.code !== 'forbidden') failures.push(`${label}: 403 without a forbidden JSON error: ${text.slice(0, 160)}`);
      if (res.status === 201) hub.conferences.get(new URL(res.url).pathname.split('/')[3]!)?.ingests.close((JSON.parse(text) as { ingestId: string }).ingestId);
      const problem = await c.after?.(res.status < 300);
      if (problem) failures.push(`${label}: ${problem}`);
    }
    console.log(`      HTTP matrix: ${cases.length} cases (${cases.filter((c) => c.status < 300).length} allowed, ${cases.filter((c) => c.status >= 400).length} denied)`);
    expect(failures, failures.join('\n')).to.deep.equal([]);
  });
});
