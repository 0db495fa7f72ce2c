import { expect } from 'chai';
import type { ReadingBody } from '../../src/devices/reading.js';
import type { Hub } from '../../src/hub/Hub.js';
import { TestClient, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { UplinkSite } from '../support/uplinkSite.js';
import { startClusterHub } from './helpers.js';

const conferenceId = 'case-devices';

function numerics(n: number, start: number): ReadingBody[] {
  return Array.from({ length: n }, (_, i) => ({ kind: 'numeric' as const, t: 1_700_000_000_000 + (start + i) * 1000, rt: Date.now(), code: 'MDC_ECG_HEART_RATE', unit: '/min', value: 60 + ((start + i) % 40) }));
}

/** Every live (not replayed) seq a viewer got for the device, in arrival order. */
function liveSeqs(client: TestClient, deviceId: string): number[] {
  return client.events.filter((e) => e.name === 'deviceReadings' && e.data.deviceId === deviceId && !e.data.replay).flatMap((e) => e.data.readings.map((r: { seq: number }) => r.seq));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

describe('device readings across hubs (issue 14)', function () {
  this.timeout(60_000);
  let redis: TestRedis;
  const hubs: Hub[] = [];
  const clients: TestClient[] = [];
  let site: UplinkSite;

  before(async () => {
    redis = await TestRedis.start();
    for (const id of ['hub-1', 'hub-2', 'hub-3']) hubs.push(await startClusterHub(redis.url, id));
  });
  after(async () => {
    site?.disconnect();
    for (const c of clients) c.close();
    for (const h of hubs) await h.close();
    await redis?.stop();
  });

  async function viewer(hub: Hub, name: string): Promise<TestClient> {
    const c = await TestClient.connect(hub.url, token('specialist', conferenceId, name));
    clients.push(c);
    return c;
  }

  let far: TestClient;

  it('a device stream from an agent on hub 1 reaches a viewer on hub 3 exactly once, in seq order', async () => {
    far = await viewer(hubs[2]!, 'Dr Far');
    await far.ok('join', { conferenceId });
    site = new UplinkSite(hubs[0]!.url, 'site-1', conferenceId, [{ deviceId: 'mon-1', type: 'vitals', model: 'test monitor', channels: [{ code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' }] }]);
    await site.connect();
    const online = await far.waitFor('deviceStatus', (d) => d.deviceId === 'mon-1' && d.status === 'online');
    expect(online.conferenceId).to.equal(conferenceId);
    await site.send('mon-1', numerics(200, 1));
    await waitUntil(() => liveSeqs(far, 'mon-1').length >= 200, 10_000, '200 readings on hub 3');
    expect(liveSeqs(far, 'mon-1')).to.deep.equal(range(1, 200));
  });

  it('a late joiner on another hub lists the device and gets its replay from the shared history, then the live stream without overlap', async () => {
    const late = await viewer(hubs[1]!, 'Dr Late');
    const joined = await late.ok('join', { conferenceId });
    expect(joined.devices.map((d: { deviceId: string; status: string }) => [d.deviceId, d.status])).to.deep.equal([['mon-1', 'online']]);
    const replay = await late.waitFor('deviceReadings', (e) => e.deviceId === 'mon-1' && e.replay === true);
    // The latest numeric of each code (section 4 of PROTOCOL.md): seq 200.
    expect(replay.readings.map((r: { seq: number }) => r.seq)).to.deep.equal([200]);
    await site.send('mon-1', numerics(20, 201));
    await waitUntil(() => liveSeqs(late, 'mon-1').length >= 20, 10_000, 'the live readings on hub 2');
    expect(liveSeqs(late, 'mon-1')).to.deep.equal(range(201, 220));
  });

  it('readings the bus did not bring (its channel lost) are sent from the history before the next ones: each once, in order', async () => {
    const hub3 = hubs[2]!;
    hub3.cluster!.bus.unsubscribeConference(conferenceId);
    await new Promise((r) => setTimeout(r, 200));
    await site.send('mon-1', numerics(10, 221));
    await hub3.cluster!.bus.subscribeConference(conferenceId);
    await site.send('mon-1', numerics(5, 231));
    await waitUntil(() => liveSeqs(far, 'mon-1').length >= 235, 10_000, 'hub 3 catching up');
    expect(liveSeqs(far, 'mon-1')).to.deep.equal(range(1, 235));
  });

  it("shows the device offline on every hub when its agent's connection drops", async () => {
    site.disconnect();
    await far.waitFor('deviceStatus', (d) => d.deviceId === 'mon-1' && d.status === 'offline');
  });
});
