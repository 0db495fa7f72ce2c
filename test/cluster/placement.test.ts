import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, fakeDtlsParameters, joinWithTransports, rtpParametersFor, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { startClusterHub } from './helpers.js';

describe('cluster placement and draining (issue 14)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  const hubs: Hub[] = [];
  const clients: TestClient[] = [];

  async function connect(hub: Hub, conferenceId: string, name: string, role: 'specialist' | 'site' = 'specialist'): Promise<TestClient> {
    const c = await TestClient.connect(hub.url, token(role, conferenceId, name));
    clients.push(c);
    return c;
  }

  before(async () => {
    redis = await TestRedis.start();
    // hub-a takes at most one consumer; hub-b has room; hub-s is in another region.
    hubs.push(await startClusterHub(redis.url, 'hub-a', 'north', { maxLoad: 1 }));
    hubs.push(await startClusterHub(redis.url, 'hub-b', 'north'));
    hubs.push(await startClusterHub(redis.url, 'hub-s', 'south'));
    await waitUntil(() => hubs[0]!.cluster!.directory.hubs.length === 3, 5000, 'three hubs');
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const h of hubs) await h.close();
    await redis?.stop();
  });

  it('a hub past cluster.maxLoad answers join with a redirect to a hub of its region with room', async () => {
    const [a] = hubs as [Hub];
    const presenter = await connect(a, 'busy', 'Dr P');
    const p = await joinWithTransports(presenter, 'busy', 'x');
    const producerId = (await presenter.ok('produce', { transportId: p.send, kind: 'video', rtpParameters: rtpParametersFor('video') })).producerId;
    const first = await connect(a, 'busy', 'Dr V1');
    const v = await joinWithTransports(first, 'busy', 'x');
    await first.ok('connectTransport', { transportId: v.recv, dtlsParameters: fakeDtlsParameters });
    await first.ok('consume', { transportId: v.recv, producerId, rtpCapabilities: a.conferences.get('busy')!.router.rtpCapabilities });

    const next = await connect(a, 'busy', 'Dr V2');
    const reply = await next.request('join', { conferenceId: 'busy' });
    expect(reply.ok).to.equal(false);
    if (reply.ok) return;
    expect(reply.error.code).to.equal('unavailable');
    expect(reply.error.message).to.match(/cluster\.maxLoad/);
    expect((reply.error as unknown as { redirect: unknown }).redirect).to.deep.equal({ hubId: 'hub-b', url: hubs[1]!.url });
    // Following it: the same conference, through hub-b, with hub-a's peers and producer in the reply.
    const followed = await connect(hubs[1]!, 'busy', 'Dr V2');
    const there = await followed.ok('join', { conferenceId: 'busy' });
    expect(there.producers.map((x: { producerId: string; hubId: string }) => [x.producerId, x.hubId])).to.deep.equal([[producerId, 'hub-a']]);
  });

  it('POST /api/ops/drain (engineer) sends new joins elsewhere while current conferences go on; the directory shows it draining', async () => {
    const b = hubs[1]!;
    const forbidden = await fetch(`${b.url}/api/ops/drain`, { method: 'POST', headers: { authorization: `Bearer ${token('specialist', 'x')}` } });
    expect(forbidden.status).to.equal(403);
    const res = await fetch(`${b.url}/api/ops/drain`, { method: 'POST', headers: { authorization: `Bearer ${token('engineer', '*', 'ops')}` } });
    expect(res.status).to.equal(200);
    expect(await res.json()).to.deep.equal({ draining: true, hubId: 'hub-b' });
    await waitUntil(() => hubs[0]!.cluster!.directory.hub('hub-b')?.draining === true, 3000, 'hub-b shown draining');
    await waitUntil(() => b.cluster!.directory.hub('hub-a')?.load.consumers === 1, 3000, "hub-b seeing hub-a's load");
    const late = await connect(b, 'fresh', 'Dr L');
    const reply = await late.request('join', { conferenceId: 'fresh' });
    expect(reply.ok).to.equal(false);
    // hub-a is over its load and hub-s in another region: nowhere to go, and a draining hub takes no join.
    if (!reply.ok) expect(reply.error.message).to.match(/draining and no other hub of region north/);
    // The conference already on hub-b goes on.
    expect(b.conferences.get('busy')?.peers.length).to.equal(1);
  });
});
