import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Hub } from '../../src/hub/Hub.js';
import { freePort } from '../agent/uplink-helpers.js';
import { TestClient, fakeDtlsParameters, joinWithTransports, rtpParametersFor, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { TestSentinelSet } from '../support/redisSentinel.js';
import { startClusterHub } from './helpers.js';

describe('cluster behind Redis Sentinel (redis-sentinel:// URL)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  let sentinel: ChildProcess | undefined;
  const hubs: Hub[] = [];
  const clients: TestClient[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'hoichan-sentinel-'));

  before(async () => {
    redis = await TestRedis.start();
    const port = await freePort();
    // redis-server in sentinel mode (the same binary), watching the test Redis as master "hoichan".
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(conf, `port ${port}\nbind 127.0.0.1\nsentinel monitor hoichan 127.0.0.1 ${redis.port} 1\n`);
    sentinel = spawn('/usr/bin/redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    const url = `redis-sentinel://127.0.0.1:${port}/hoichan`;
    await new Promise((r) => setTimeout(r, 500));
    hubs.push(await startClusterHub(url, 'hub-s1'), await startClusterHub(url, 'hub-s2'));
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const h of hubs) await h.close();
    sentinel?.kill('SIGTERM');
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('finds the master through the sentinel: directory, revocations, history and the bus all work', async () => {
    const [a, b] = hubs as [Hub, Hub];
    await waitUntil(() => a.cluster!.directory.hub('hub-s2') !== undefined, 5000, 'both hubs in the directory');
    const onA = await TestClient.connect(a.url, token('specialist', 'sentinel-case', 'Dr A'));
    const onB = await TestClient.connect(b.url, token('site', 'sentinel-case', 'Site B'));
    clients.push(onA, onB);
    const joined = await onA.ok('join', { conferenceId: 'sentinel-case' });
    const there = await onB.ok('join', { conferenceId: 'sentinel-case' });
    expect(there.peers.map((p: { peerId: string; hubId?: string }) => [p.peerId, p.hubId])).to.deep.equal([[joined.peerId, 'hub-s1']]);
    expect(a.streams!.storeKind).to.equal('redis');
  });
});

describe('cluster through a Redis Sentinel failover: the master killed, the replica promoted (issue 14)', function () {
  this.timeout(120_000);
  let set: TestSentinelSet;
  const hubs: Hub[] = [];
  const clients: TestClient[] = [];
  const conferenceId = 'failover-case';

  async function connect(hub: Hub, name: string): Promise<TestClient> {
    const c = await TestClient.connect(hub.url, token('specialist', conferenceId, name));
    clients.push(c);
    return c;
  }

  before(async () => {
    set = await TestSentinelSet.start('hoichan');
    // The default heartbeat and TTL (2 s, 6 s), as a deployment runs them: a failover must not make a hub "gone".
    for (const id of ['hub-f1', 'hub-f2']) hubs.push(await startClusterHub(set.url, id, 'north', { heartbeatMs: 2000, ttlMs: 6000, requestTimeoutMs: 5000 }));
  });
  after(async () => {
    for (const c of clients) c.close();
    for (const h of hubs) await h.close();
    await set?.stop();
  });

  it('after a SIGKILL of the master the hubs reconnect to the promoted replica by themselves: directory whole, signaling and new pipes work', async () => {
    const [a, b] = hubs as [Hub, Hub];
    await waitUntil(() => a.cluster!.directory.hub('hub-f2') !== undefined && b.cluster!.directory.hub('hub-f1') !== undefined, 10_000, 'both hubs in the directory');
    const presenter = await connect(a, 'Dr A');
    const p = await joinWithTransports(presenter, conferenceId, 'Dr A');
    const video = (await presenter.ok('produce', { transportId: p.send, kind: 'video', rtpParameters: rtpParametersFor('video') })).producerId as string;
    const viewer = await connect(b, 'Dr B');
    const v = await joinWithTransports(viewer, conferenceId, 'Dr B');
    await viewer.ok('connectTransport', { transportId: v.recv, dtlsParameters: fakeDtlsParameters });
    await viewer.ok('consume', { transportId: v.recv, producerId: video, rtpCapabilities: b.conferences.get(conferenceId)!.router.rtpCapabilities });
    expect(b.cluster!.pipes.inCount).to.equal(1);
    expect(await set.masterPort()).to.equal(set.master.port);

    const gone: string[] = [];
    for (const hub of hubs) hub.cluster!.directory.on('hubGone', (id) => gone.push(`${hub.cluster!.hubId} lost ${id}`));
    const killedAt = Date.now();
    set.master.child.kill('SIGKILL');

    await waitUntil(async () => (await set.masterPort().catch(() => 0)) === set.replica.port, 60_000, 'the sentinels to promote the replica');
    const promotedAt = Date.now();
    // Whole again: each hub's entry written anew on the promoted replica (a heartbeat after the promotion), and each hub sees the other.
    const heartbeatOnNewMaster = async (hubId: string) => {
      const text = await set.withNode(set.replica.port, (r) => r.get(`{hoichan}:hub:${hubId}`));
      return text !== null && (JSON.parse(text) as { heartbeatAt: number }).heartbeatAt >= promotedAt;
    };
    await waitUntil(
      async () =>
        (await heartbeatOnNewMaster('hub-f1').catch(() => false)) &&
        (await heartbeatOnNewMaster('hub-f2').catch(() => false)) &&
        a.cluster!.directory.reachable &&
        b.cluster!.directory.reachable &&
        a.cluster!.directory.hub('hub-f2') !== undefined &&
        b.cluster!.directory.hub('hub-f1') !== undefined,
      30_000,
      'both hubs registered on the new master',
    );
    const wholeAt = Date.now();

    // Signaling across hubs: a new peer on hub 2 is announced to the presenter on hub 1.
    const late = await connect(b, 'Dr Late');
    const lateJoin = await late.ok('join', { conferenceId });
    expect(lateJoin.peers.map((x: { peerId: string }) => x.peerId)).to.include(p.joined.peerId);
    expect((await presenter.waitFor('peerJoined', (e) => e.peerId === lateJoin.peerId)).hubId).to.equal('hub-f2');
    // A new pipe: a new producer of hub 1, consumed on hub 2 (retried, as a client does, while the bus resubscribes).
    const audio = (await presenter.ok('produce', { transportId: p.send, kind: 'audio', rtpParameters: rtpParametersFor('audio') })).producerId as string;
    await viewer.waitFor('newProducer', (e) => e.producerId === audio);
    await waitUntil(
      async () => (await viewer.request('consume', { transportId: v.recv, producerId: audio, rtpCapabilities: b.conferences.get(conferenceId)!.router.rtpCapabilities })).ok,
      20_000,
      'a new cross-hub pipe set-up',
    );
    const recoveredAt = Date.now();
    console.log(
      `      (Sentinel failover: replica promoted ${promotedAt - killedAt} ms after the SIGKILL; both hubs re-registered on it at ${wholeAt - killedAt} ms; ` +
        `cross-hub join and a new pipe working at ${recoveredAt - killedAt} ms)`,
    );
    expect(b.cluster!.pipes.inCount).to.equal(2);
    expect(gone, 'hubs declared gone during the failover').to.deep.equal([]);
  });
});
