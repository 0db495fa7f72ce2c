import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SiteAgent } from '../../src/agent/SiteAgent.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
import type { Hub } from '../../src/hub/Hub.js';
import { SyntheticDriver, Viewer, freePort, testAgentConfig, waitFor } from '../agent/uplink-helpers.js';
import { PROJECT_ROOT, TEST_SECRET, TestClient, joinWithTransports, rtpParametersFor, startTestHub, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';

const conferenceId = 'kill-case';

/** A hub as its own process (`hoichan hub`), with the default heartbeat (2 s) and TTL (6 s). */
let rtcBlock = 0;
async function spawnHub(redisUrl: string, hubId: string, auditDir: string): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  rtcBlock++;
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin', 'hoichan.js'), 'hub', '--region', 'north'], {
    stdio: 'ignore',
    env: {
      ...process.env,
      REDIS_URL: redisUrl,
      HOICHAN_HUB_ID: hubId,
      HOICHAN_PORT: String(port),
      HOICHAN_HTTP_LISTEN_IP: '127.0.0.1',
      HOICHAN_LISTEN_IP: '127.0.0.1',
      HOICHAN_RTC_PORT: String(21000 + (process.pid % 300) * 8 + rtcBlock * 2),
      HOICHAN_WORKERS: '1',
      HOICHAN_JWT_SECRET: TEST_SECRET,
      HOICHAN_AUDIT_DIR: auditDir,
      HOICHAN_LOG_LEVEL: 'silent',
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, 20_000, `hub ${hubId} ready`);
  return { child, url };
}

describe('cluster failures: a hub killed with SIGKILL, agent failover (issue 14)', function () {
  this.timeout(90_000);
  let redis: TestRedis;
  let y: Hub;
  let x: { child: ChildProcess; url: string } | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'hoichan-cluster-fail-'));
  const clients: TestClient[] = [];
  let viewer: Viewer | undefined;
  let agent: SiteAgent | undefined;
  const drivers: SyntheticDriver[] = [];

  before(async () => {
    redis = await TestRedis.start();
    y = await startTestHub({ redis: { url: redis.url }, cluster: { hubId: 'hub-y', region: 'north' } });
    x = await spawnHub(redis.url, 'hub-x', join(dir, 'audit-x'));
  });
  after(async () => {
    await agent?.stop();
    viewer?.close();
    for (const c of clients) c.close();
    x?.child.kill('SIGKILL');
    await y?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops a killed hub within 10 s: its pipes close, peers elsewhere get producerClosed and peerLeft; its agent resumes on another hub, every seq once', async () => {
    await waitUntil(() => y.cluster!.directory.hub('hub-x') !== undefined, 10_000, 'hub-x in the directory');
    const presenter = await TestClient.connect(x!.url, token('specialist', conferenceId, 'Dr X'));
    clients.push(presenter);
    const p = await joinWithTransports(presenter, conferenceId, 'x');
    const producerId = (await presenter.ok('produce', { transportId: p.send, kind: 'video', rtpParameters: rtpParametersFor('video') })).producerId;

    const onY = await TestClient.connect(y.url, token('site', conferenceId, 'Site Y'));
    clients.push(onY);
    const joined = await joinWithTransports(onY, conferenceId, 'y');
    expect(joined.joined.peers.map((peer: { hubId?: string }) => peer.hubId)).to.deep.equal(['hub-x']);
    await onY.ok('consume', { transportId: joined.recv, producerId, rtpCapabilities: y.conferences.get(conferenceId)!.router.rtpCapabilities });
    expect(y.cluster!.pipes.inCount).to.equal(1);

    // A site agent that knows both hubs, connected to hub-x first; a viewer on hub-y.
    viewer = await Viewer.join(y.url, conferenceId);
    const config = testAgentConfig({
      siteId: 'site-k',
      conferenceId,
      hubUrl: x!.url,
      journalDir: join(dir, 'journal'),
      devices: [{ id: 'ecg-k', type: 'ecg', model: 'synthetic', protocol: 'cms50', settings: { path: '/dev/null' } }],
      hub: { url: [x!.url, y.url] },
    });
    agent = await SiteAgent.start(config, {
      factories: {
        ...(await loadDriverFactories(['cms50'])),
        cms50: (deviceId: string, _settings: unknown, sink: ConstructorParameters<typeof SyntheticDriver>[1]) => {
          const d = new SyntheticDriver(deviceId, sink, 20);
          drivers.push(d);
          return d;
        },
      },
    });
    await waitFor(() => (viewer!.last.get('ecg-k') ?? 0) > 50, 15_000, 'readings from hub-x on hub-y');

    const killedAt = Date.now();
    x!.child.kill('SIGKILL');
    await onY.waitFor('producerClosed', (e) => e.producerId === producerId, 10_000);
    await onY.waitFor('consumerClosed', (e) => e.producerId === producerId, 1000);
    await onY.waitFor('peerLeft', (e) => e.peerId === p.joined.peerId, 1000);
    const noticedMs = Date.now() - killedAt;
    expect(y.cluster!.pipes.inCount).to.equal(0);
    expect(y.cluster!.directory.hub('hub-x')).to.equal(undefined);

    const atKill = viewer!.last.get('ecg-k')!;
    await waitFor(() => (viewer!.last.get('ecg-k') ?? 0) > atKill + 100, 20_000, 'readings through hub-y after the failover');
    console.log(`      (hub-x SIGKILLed: hub-y dropped it and told its peers after ${noticedMs} ms; the agent resumed on hub-y)`);
    expect(viewer!.problems, 'each seq once and in order across the failover').to.deep.equal([]);
    const seqs = (viewer!.readings.get('ecg-k') ?? []).map((r) => r.seq);
    const gaps = viewer!.gaps.get('ecg-k') ?? [];
    const covered = new Set(seqs);
    for (const g of gaps) for (let s = g.from; s <= g.to; s++) covered.add(s);
    expect(covered.size).to.equal(viewer!.last.get('ecg-k'));
  });

  it('SIGTERM drains first: the hub is shown draining, sends new joins elsewhere, and exits once its conference ended', async () => {
    const z = await spawnHub(redis.url, 'hub-z', join(dir, 'audit-z'));
    await waitUntil(() => y.cluster!.directory.hub('hub-z') !== undefined, 10_000, 'hub-z in the directory');
    const peer = await TestClient.connect(z.url, token('specialist', 'drain-case', 'Dr Z'));
    clients.push(peer);
    await peer.ok('join', { conferenceId: 'drain-case' });
    const exited = new Promise<number | null>((resolve) => z.child.once('exit', (code) => resolve(code)));
    z.child.kill('SIGTERM');
    await waitUntil(() => y.cluster!.directory.hub('hub-z')?.draining === true, 10_000, 'hub-z shown draining');
    const newcomer = await TestClient.connect(z.url, token('site', 'drain-case', 'Site Z'));
    clients.push(newcomer);
    const refused = await newcomer.request('join', { conferenceId: 'drain-case' });
    expect(refused.ok).to.equal(false);
    if (!refused.ok) expect((refused.error as unknown as { redirect?: { hubId: string } }).redirect?.hubId).to.equal('hub-y');
    // Still serving the conference it has; it ends when its last peer leaves.
    await peer.ok('leave', {});
    expect(await exited).to.equal(0);
    await waitUntil(() => y.cluster!.directory.hub('hub-z') === undefined, 3000, 'hub-z gone from the directory');
  });
});
