import { expect } from 'chai';
import type { ReadingBody } from '../../src/devices/reading.js';
import { createRedis } from '../../src/common/redis.js';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, fakeDtlsParameters, joinWithTransports, rtpParametersFor, token, waitUntil } from '../support/hub.js';
import { TestRedisCluster } from '../support/redisCluster.js';
import { UplinkSite, type UplinkDevice } from '../support/uplinkSite.js';
import { startClusterHub } from './helpers.js';

const conferenceId = 'case-on-cluster';

function numerics(n: number, start: number): ReadingBody[] {
  return Array.from({ length: n }, (_, i) => ({ kind: 'numeric' as const, t: 1_700_000_000_000 + (start + i) * 1000, rt: Date.now(), code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value: 90 + ((start + i) % 10) }));
}

function liveSeqs(client: TestClient, deviceId: string): number[] {
  return client.events.filter((e) => e.name === 'deviceReadings' && e.data.deviceId === deviceId && !e.data.replay).flatMap((e) => e.data.readings.map((r: { seq: number }) => r.seq));
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

const monitor = (deviceId: string): UplinkDevice => ({ deviceId, type: 'vitals', model: 'test monitor', channels: [{ code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', kind: 'numeric' }] });

describe('two hubs on a real 3-master Redis Cluster (redis-cluster:// URL, issue 14)', function () {
  this.timeout(90_000);
  let redis: TestRedisCluster;
  const hubs: Hub[] = [];
  const clients: TestClient[] = [];
  let site: UplinkSite | undefined;
  /** The master that serves the {hoichan} slot (the directory and the bus channels' tag). */
  let directoryNode: number;
  /** Two device ids whose {deviceId} slots are on the two other masters (picked by asking the cluster, not assumed). */
  let devices: [string, string];

  async function client(hub: Hub, name: string, role: 'specialist' | 'site' = 'specialist'): Promise<TestClient> {
    const c = await TestClient.connect(hub.url, token(role, conferenceId, name));
    clients.push(c);
    return c;
  }

  before(async () => {
    redis = await TestRedisCluster.start(3);
    directoryNode = await redis.ownerOf(await redis.slotOf('{hoichan}'));
    const byNode = new Map<number, string>();
    for (let i = 1; byNode.size < 2 && i < 200; i++) {
      const id = `spo2-${i}`;
      const node = await redis.ownerOf(await redis.slotOf(`{${id}}`));
      if (node !== directoryNode && !byNode.has(node)) byNode.set(node, id);
    }
    expect(byNode.size, 'device ids on the two masters that do not hold the directory').to.equal(2);
    devices = [...byNode.values()] as [string, string];
    hubs.push(await startClusterHub(redis.url, 'hub-c1'), await startClusterHub(redis.url, 'hub-c2'));
  });
  after(async () => {
    site?.disconnect();
    for (const c of clients) c.close();
    for (const h of hubs) await h.close();
    await redis?.stop();
  });

  it('shares the directory and one conference across both hubs; a producer of hub 1 is piped to a consumer on hub 2', async () => {
    const [a, b] = hubs as [Hub, Hub];
    await waitUntil(() => a.cluster!.directory.hub('hub-c2') !== undefined && b.cluster!.directory.hub('hub-c1') !== undefined, 5000, 'both hubs in the directory');
    expect(a.streams!.storeKind).to.equal('redis');

    const presenter = await client(a, 'Dr Presenter');
    const p = await joinWithTransports(presenter, conferenceId, 'Dr Presenter');
    const producerId = (await presenter.ok('produce', { transportId: p.send, kind: 'video', rtpParameters: rtpParametersFor('video') })).producerId as string;

    const viewer = await client(b, 'Dr Viewer');
    const v = await joinWithTransports(viewer, conferenceId, 'Dr Viewer');
    expect(v.joined.peers.map((x: { peerId: string; hubId?: string }) => [x.peerId, x.hubId])).to.deep.equal([[p.joined.peerId, 'hub-c1']]);
    expect(v.joined.producers.map((x: { producerId: string; hubId?: string }) => [x.producerId, x.hubId])).to.deep.equal([[producerId, 'hub-c1']]);
    // Signaling the other way, over the cluster's pub/sub.
    const seen = await presenter.waitFor('peerJoined', (e) => e.peerId === v.joined.peerId);
    expect(seen.hubId).to.equal('hub-c2');

    // The pipe set-up is a request and reply on the hubs' own channels.
    await viewer.ok('connectTransport', { transportId: v.recv, dtlsParameters: fakeDtlsParameters });
    await viewer.ok('consume', { transportId: v.recv, producerId, rtpCapabilities: b.conferences.get(conferenceId)!.router.rtpCapabilities });
    expect(b.cluster!.pipes.inCount).to.equal(1);
    expect(a.cluster!.pipes.outCount).to.equal(1);
  });

  it('streams two devices from an agent on hub 1 to the viewer on hub 2, each seq once and in order; a late joiner on hub 2 gets the replay', async () => {
    const [a, b] = hubs as [Hub, Hub];
    const viewer = clients[1]!;
    site = new UplinkSite(a.url, 'site-cluster', conferenceId, devices.map(monitor));
    await site.connect();
    for (const id of devices) await viewer.waitFor('deviceStatus', (d) => d.deviceId === id && d.status === 'online');
    await Promise.all(devices.map((id) => site!.send(id, numerics(60, 1))));
    for (const id of devices) {
      await waitUntil(() => liveSeqs(viewer, id).length >= 60, 10_000, `60 readings of ${id} on hub 2`);
      expect(liveSeqs(viewer, id), id).to.deep.equal(range(1, 60));
    }

    const late = await client(b, 'Dr Late');
    const joined = await late.ok('join', { conferenceId });
    expect(joined.devices.map((d: { deviceId: string }) => d.deviceId).sort()).to.deep.equal([...devices].sort());
    for (const id of devices) {
      const replay = await late.waitFor('deviceReadings', (e) => e.deviceId === id && e.replay === true);
      // The latest numeric of each code (PROTOCOL.md, section 4): seq 60, read from the history on the device's own master.
      expect(replay.readings.map((r: { seq: number }) => r.seq), id).to.deep.equal([60]);
    }
  });

  it('put the keys where their hash tags say: the directory on one master, each device history on the master of its own slot', async () => {
    const [first, second] = devices;
    const nodeOf = async (key: string) => redis.ownerOf(await redis.slotOf(key));
    const directory = await redis.keysByNode('{hoichan}:*');
    const history = await redis.keysByNode('hoichan:device:*');
    const report = [...directory.keys()].map((port) => `${port}: ${directory.get(port)!.length} directory keys, ${history.get(port)!.length} device keys`).join('; ');
    console.log(`      (keys per master ${report}; the directory on ${directoryNode}, ${first} on ${await nodeOf(`{${first}}`)}, ${second} on ${await nodeOf(`{${second}}`)})`);

    // Every directory key, and only there, on the {hoichan} master.
    for (const [port, found] of directory) {
      if (port !== directoryNode) expect(found, `directory keys on ${port}`).to.deep.equal([]);
    }
    expect(directory.get(directoryNode)).to.include.members(['{hoichan}:hubs', '{hoichan}:hub:hub-c1', '{hoichan}:hub:hub-c2', `{hoichan}:conf:${conferenceId}:hubs`, `{hoichan}:devices:${conferenceId}`]);

    // Each device's meta, stream and latest hash together, on its own master: three masters used.
    for (const id of devices) {
      const port = await nodeOf(`{${id}}`);
      const mine = history.get(port)!.filter((k) => k.startsWith(`hoichan:device:{${id}}:`));
      expect(mine.map((k) => k.replace(/session:[^:]+:/, 'session:*:')).sort(), id).to.deep.equal([
        `hoichan:device:{${id}}:meta`,
        `hoichan:device:{${id}}:session:*:latest`,
        `hoichan:device:{${id}}:session:*:readings`,
      ]);
      for (const [other, keys] of history) if (other !== port) expect(keys.filter((k) => k.includes(`{${id}}`)), `${id} on ${other}`).to.deep.equal([]);
    }
    expect(new Set([directoryNode, await nodeOf(`{${first}}`), await nodeOf(`{${second}}`)]).size).to.equal(3);
  });

  it('refuses a cluster URL it cannot use, naming redis.url', () => {
    expect(() => createRedis('redis-cluster://127.0.0.1:7001/2?nodes=127.0.0.1:7002')).to.throw(/redis\.url: a Redis Cluster has no database number/);
    expect(() => createRedis('redis-cluster://127.0.0.1:7001?nodes=127.0.0.1:70000')).to.throw(/redis\.url: 127\.0\.0\.1:70000 has no valid port/);
    expect(() => createRedis('redis-clusters://127.0.0.1:7001')).to.throw(/unsupported scheme redis-clusters: .*redis-cluster:/);
  });
});
