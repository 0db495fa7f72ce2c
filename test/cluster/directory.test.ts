import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, startTestHub, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { clusterView, hubIds, startClusterHub } from './helpers.js';

describe('cluster directory in Redis (issue 14)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  const hubs: Hub[] = [];
  const clients: TestClient[] = [];

  before(async () => {
    redis = await TestRedis.start();
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const h of hubs) await h.close().catch(() => undefined);
    await redis?.stop();
  });

  it('registers each hub with its region, URL, media address and load; shows which conferences span which hubs', async () => {
    const a = await startClusterHub(redis.url, 'hub-a', 'north');
    const b = await startClusterHub(redis.url, 'hub-b', 'north');
    const c = await startClusterHub(redis.url, 'hub-c', 'south');
    hubs.push(a, b, c);
    await waitUntil(async () => hubIds(await clusterView(a)).length === 3, 5000, 'three hubs in the directory');
    const view = await clusterView(a);
    expect(view.enabled).to.equal(true);
    expect(view.hubId).to.equal('hub-a');
    expect(view.redis).to.equal('reachable');
    const hubC = view.hubs.find((h) => h.hubId === 'hub-c')!;
    expect(hubC.region).to.equal('south');
    expect(hubC.url).to.equal(c.url);
    expect(hubC.mediaAddress).to.equal('127.0.0.1');
    expect(hubC.load.workers).to.equal(1);

    const onA = await TestClient.connect(a.url, token('specialist', 'case-1', 'Dr A'));
    const onB = await TestClient.connect(b.url, token('site', 'case-1', 'Site B'));
    clients.push(onA, onB);
    await onA.ok('join', { conferenceId: 'case-1' });
    await onB.ok('join', { conferenceId: 'case-1' });
    await waitUntil(async () => {
      const fromC = await clusterView(c);
      return JSON.stringify(fromC.conferences) === JSON.stringify([{ conferenceId: 'case-1', hubs: ['hub-a', 'hub-b'] }]) && fromC.hubs.find((h) => h.hubId === 'hub-b')!.load.peers === 1;
    }, 5000, 'the conference spanning hub-a and hub-b, and hub-b holding its peer, as hub-c sees it');
  });

  it('is for engineers only', async () => {
    const res = await fetch(`${hubs[0]!.url}/api/cluster`, { headers: { authorization: `Bearer ${token('specialist', 'case-1')}` } });
    expect(res.status).to.equal(403);
    const anonymous = await fetch(`${hubs[0]!.url}/api/cluster`);
    expect(anonymous.status).to.equal(401);
  });

  it('drops a hub that closes at once, and a hub that stops heartbeating within its TTL', async () => {
    const [a, , c] = hubs as [Hub, Hub, Hub];
    await c.close();
    await waitUntil(async () => !hubIds(await clusterView(a)).includes('hub-c'), 3000, 'hub-c gone after a clean close');
    // A hub that stops heartbeating without a word (as after SIGKILL): stop its heartbeat timer and bus.
    const b = hubs[1]!;
    await b.cluster!.directory.close([]); // deregisters; now re-add a stale entry that will only expire
    const stale = JSON.stringify({ ...b.cluster!.record() });
    const { Redis } = await import('ioredis');
    const raw = new Redis(redis.url);
    await raw.set('{hoichan}:hub:hub-b', stale, 'PX', 1000);
    await raw.sadd('{hoichan}:hubs', 'hub-b');
    raw.disconnect();
    await waitUntil(async () => hubIds(await clusterView(a)).includes('hub-b'), 3000, 'hub-b listed while its entry lives');
    await waitUntil(async () => !hubIds(await clusterView(a)).includes('hub-b'), 10_000, 'hub-b gone within 10 s of its last heartbeat');
  });

  it('keeps hubs running while Redis is away and re-registers them when it returns, with no manual step', async () => {
    const a = hubs[0]!;
    const d = await startClusterHub(redis.url, 'hub-d', 'north');
    hubs.push(d);
    await waitUntil(async () => hubIds(await clusterView(a)).includes('hub-d'), 3000, 'hub-d registered');
    const peer = await TestClient.connect(d.url, token('specialist', 'outage', 'Dr D'));
    clients.push(peer);
    await peer.ok('join', { conferenceId: 'outage' });
    const port = redis.port;
    await redis.stop();
    // What is connected stays (new handshakes meanwhile: the 60 s outage in failures.test.ts).
    expect((await fetch(`${d.url}/healthz`)).status).to.equal(200);
    expect((await peer.request('createTransport', { direction: 'recv' })).ok).to.equal(true);
    // In process: GET /api/cluster would check its token against the revocation list's copy, which is not what this test is about.
    await waitUntil(() => a.cluster!.report().redis === 'unreachable', 3000, 'hub-a noticing Redis is away');
    await new Promise((r) => setTimeout(r, 1500)); // longer than the TTL: still not declared gone
    expect(a.cluster!.report().hubs.map((h) => h.hubId)).to.include('hub-d');
    // A 3 s outage in the test (the case is 60 s; nothing here depends on its length).
    await new Promise((r) => setTimeout(r, 3000));
    redis = await TestRedis.start(port);
    await waitUntil(async () => {
      const view = await clusterView(a);
      return view.redis === 'reachable' && hubIds(view).join() === 'hub-a,hub-d' && view.conferences.some((c) => c.conferenceId === 'outage' && c.hubs.includes('hub-d'));
    }, 10_000, 'directory whole again within 10 s of Redis returning');
  });

  it('without a Redis URL, a hub runs alone and says so', async () => {
    const alone = await startTestHub();
    hubs.push(alone);
    expect(alone.cluster).to.equal(undefined);
    const view = await clusterView(alone);
    expect(view).to.deep.equal({ enabled: false, hubs: [], conferences: [] });
  });
});
