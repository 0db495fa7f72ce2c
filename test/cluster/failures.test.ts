import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { SiteAgent } from '../../src/agent/SiteAgent.js';
import { loadDriverFactories } from '../../src/devices/registry.js';
import type { Hub } from '../../src/hub/Hub.js';
import { SyntheticDriver, Viewer, freePort, sleep, testAgentConfig, waitFor } from '../agent/uplink-helpers.js';
import { PROJECT_ROOT, TEST_SECRET, TestClient, fakeDtlsParameters, joinWithTransports, rtpParametersFor, startTestHub, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { clusterView, hubIds, packetsReceived, rtpPacket, startClusterHub } from './helpers.js';

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

/** Whether a fresh client gets no answer to PING (Redis really is down). */
async function pingFails(url: string): Promise<boolean> {
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, connectTimeout: 1000 });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    await probe.ping();
    return false;
  } catch {
    return true;
  } finally {
    probe.disconnect();
  }
}

/** Whether the hub refuses a socket with this token at the handshake. */
async function refused(url: string, authToken: string): Promise<boolean> {
  try {
    (await TestClient.connect(url, authToken)).close();
    return false;
  } catch {
    return true;
  }
}

/** Longest pause between successive arrivals (ms) in [from, to], counting from `from` and up to `to`, and when it ended (ms after `from`). */
function longestPause(arrivals: readonly number[], from: number, to: number): { ms: number; endedAfterMs: number } {
  let last = from;
  let longest = { ms: 0, endedAfterMs: 0 };
  for (const at of [...arrivals.filter((t) => t >= from && t <= to), to]) {
    if (at - last > longest.ms) longest = { ms: at - last, endedAfterMs: at - from };
    last = at;
  }
  return longest;
}

describe('cluster failures: Redis stopped for 60 s mid-conference (issue 14)', function () {
  // The suite's one long test: the outage, end to end.
  this.timeout(180_000);
  const conferenceId = 'outage-case';
  const deviceId = 'ecg-o';
  const outageMs = 60_000;
  let redis: TestRedis;
  let a: Hub;
  let b: Hub;
  const dir = mkdtempSync(join(tmpdir(), 'hoichan-cluster-outage-'));
  const clients: TestClient[] = [];
  const viewers: Viewer[] = [];
  let agent: SiteAgent | undefined;
  let sender: Socket | undefined;
  let sending: NodeJS.Timeout | undefined;
  let sampler: NodeJS.Timeout | undefined;

  before(async () => {
    redis = await TestRedis.start();
    // Plain RTP into the ingest so the test can write the packets; the pipe between the hubs uses SRTP (the default).
    a = await startClusterHub(redis.url, 'hub-a', 'north', {}, { media: { ingestRequireSrtp: false } });
    b = await startClusterHub(redis.url, 'hub-b', 'north');
  });
  after(async () => {
    clearInterval(sending);
    clearInterval(sampler);
    sender?.close();
    await agent?.stop();
    for (const v of viewers) v.close();
    for (const c of clients) c.close();
    await a?.close();
    await b?.close();
    await redis?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps media and device streams flowing, admits fresh logins within the staleness bound, fails new pipes clearly, and is whole again within 10 s of Redis returning', async () => {
    // ---- before: a piped video stream hub-a -> hub-b, a second producer not yet piped, a device on hub-a with viewers on both hubs
    await waitUntil(() => a.cluster!.directory.hub('hub-b') !== undefined, 10_000, 'hub-b in hub-a\'s directory');
    const viewerB = await TestClient.connect(b.url, token('specialist', conferenceId, 'Dr B'));
    clients.push(viewerB);
    const joinedB = await joinWithTransports(viewerB, conferenceId, 'b');
    await viewerB.ok('connectTransport', { transportId: joinedB.recv, dtlsParameters: fakeDtlsParameters });
    const res = await fetch(`${a.url}/api/conferences/${conferenceId}/ingests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token('site', conferenceId)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: 'us-o', codec: 'VP8', srtp: false }),
    });
    expect(res.status).to.equal(201);
    const ingest = (await res.json()) as { producerId: string; port: number; ssrc: number; payloadType: number };
    await viewerB.waitFor('newProducer', (p) => p.producerId === ingest.producerId);
    sender = createSocket('udp4');
    await new Promise<void>((resolve) => sender!.bind(0, '127.0.0.1', resolve));
    let sent = 0;
    sending = setInterval(() => sender!.send(rtpPacket(++sent, ingest.ssrc, ingest.payloadType), ingest.port, '127.0.0.1'), 20);
    const rtpCapabilities = b.conferences.get(conferenceId)!.router.rtpCapabilities;
    await viewerB.ok('consume', { transportId: joinedB.recv, producerId: ingest.producerId, rtpCapabilities });
    const pipeProducer = b.cluster!.pipes.piped()[0]!.producer!;
    await waitUntil(async () => (await packetsReceived(pipeProducer)) > 20, 5000, 'packets crossing the pipe');

    const presenter = await TestClient.connect(a.url, token('specialist', conferenceId, 'Dr A'));
    clients.push(presenter);
    const p = await joinWithTransports(presenter, conferenceId, 'a');
    const audioProducerId = (await presenter.ok('produce', { transportId: p.send, kind: 'audio', rtpParameters: rtpParametersFor('audio') })).producerId;
    await viewerB.waitFor('newProducer', (e) => e.producerId === audioProducerId);

    const local = await Viewer.join(a.url, conferenceId);
    const remote = await Viewer.join(b.url, conferenceId);
    viewers.push(local, remote);
    const arrivals = { local: [] as number[], remote: [] as number[] };
    for (const [name, v] of [['local', local], ['remote', remote]] as const) {
      v.socket.on('deviceReadings', (d: { deviceId: string; replay?: true }) => {
        if (d.deviceId === deviceId && !d.replay) arrivals[name].push(Date.now());
      });
    }
    const config = testAgentConfig({
      siteId: 'site-o',
      conferenceId,
      hubUrl: a.url,
      journalDir: join(dir, 'journal'),
      devices: [{ id: deviceId, type: 'ecg', model: 'synthetic', protocol: 'cms50', settings: { path: '/dev/null' } }],
    });
    agent = await SiteAgent.start(config, {
      factories: {
        ...(await loadDriverFactories(['cms50'])),
        // 20 waveform chunks a second and a numeric every 5th: about 24 readings a second.
        cms50: (id: string, _settings: unknown, sink: ConstructorParameters<typeof SyntheticDriver>[1]) => new SyntheticDriver(id, sink, 50),
      },
    });
    const acked = () => agent!.uplink.outboxes().find((o) => o.deviceId === deviceId)?.acked ?? 0;
    await waitFor(() => remote.lastSeq(deviceId) > 50 && acked() > 50, 15_000, 'readings from hub-a on hub-b, acked');

    // A token revoked before the outage: every hub's copy of the list has it.
    const refusals: Array<{ reason: string; jti?: string }> = [];
    const stale: Array<{ sub: string; ageMs: number }> = [];
    for (const hub of [a, b]) {
      hub.auth.events.on('refused', (e) => refusals.push(e));
      hub.auth.events.on('staleRevocationCheck', (e) => stale.push(e));
    }
    const revokedBefore = token('specialist', conferenceId, 'Dr Revoked Before');
    await a.auth.revoke(a.auth.revocationOfToken(a.auth.verifyOffline(revokedBefore, 'signaling')));
    expect(await refused(b.url, revokedBefore), 'hub-b refusing a token revoked on hub-a').to.equal(true);

    // ---- Redis stops
    let lastCount = await packetsReceived(pipeProducer);
    const mediaArrivals: number[] = [];
    sampler = setInterval(() => {
      void packetsReceived(pipeProducer).then((n) => {
        if (n > lastCount) {
          mediaArrivals.push(Date.now());
          lastCount = n;
        }
      });
    }, 50);
    const port = redis.port;
    const sentBefore = sent;
    const receivedBefore = lastCount;
    const ackedBefore = acked();
    // The hubs, the agent, the viewers and the sampler share this process: its own stalls show as pauses too.
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    await redis.stop();
    loopDelay.enable();
    const stoppedAt = Date.now();
    expect(await pingFails(redis.url), 'PING answered: Redis is not down').to.equal(true);

    // New cross-hub set-ups fail clearly.
    const pipeRefused = await viewerB.request('consume', { transportId: joinedB.recv, producerId: audioProducerId, rtpCapabilities });
    expect(pipeRefused.ok).to.equal(false);
    if (!pipeRefused.ok) {
      expect(pipeRefused.error.code).to.equal('unavailable');
      expect(pipeRefused.error.message).to.match(/Redis\) is unreachable; try again/);
    }
    // Batches in flight when Redis stopped may have been stored; after that, nothing is acked that is not stored.
    await sleep(2000);
    const ackedAtStart = acked();
    const localAtStart = local.lastSeq(deviceId);
    const remoteAtStart = remote.lastSeq(deviceId);

    // Halfway: a fresh login on each hub, against its copy of the revocation list.
    await sleep(stoppedAt + outageMs / 2 - Date.now());
    for (const hub of [a, b]) {
      const fresh = await TestClient.connect(hub.url, token('specialist', conferenceId, `Dr Fresh ${hub.cluster!.hubId}`));
      clients.push(fresh);
      await fresh.ok('join', { conferenceId });
    }
    expect(await refused(b.url, revokedBefore), 'hub-b admitting a token revoked before the outage').to.equal(true);
    // Revoked now on hub-a: refused there at once; hub-b hears of it when Redis is back.
    const revokedDuring = token('specialist', conferenceId, 'Dr Revoked During');
    const duringClaims = a.auth.verifyOffline(revokedDuring, 'signaling');
    await a.auth.revoke(a.auth.revocationOfToken(duringClaims));
    expect(await refused(a.url, revokedDuring), 'hub-a admitting a token it revoked during the outage').to.equal(true);
    expect(refusals.some((r) => r.reason === 'token revoked' && r.jti === duringClaims.jti)).to.equal(true);

    await sleep(stoppedAt + outageMs - Date.now());
    const outageEnd = Date.now();
    const ackedAtEnd = acked();
    const localAtEnd = local.lastSeq(deviceId);
    const remoteAtEnd = remote.lastSeq(deviceId);
    const journaledAtEnd = agent!.journal.lastSeq(deviceId);
    const sentDuring = sent - sentBefore;
    const receivedDuring = (await packetsReceived(pipeProducer)) - receivedBefore;
    clearInterval(sampler);
    loopDelay.disable();
    const mediaGap = longestPause(mediaArrivals, stoppedAt, outageEnd);
    const devicePause = longestPause(arrivals.local, stoppedAt, outageEnd);

    // ---- Redis returns (empty: the test's Redis keeps nothing on disk)
    redis = await TestRedis.start(port);
    const backAt = Date.now();
    await waitUntil(async () => {
      const view = await clusterView(a).catch(() => undefined);
      return view !== undefined && view.redis === 'reachable' && hubIds(view).join() === 'hub-a,hub-b' && view.conferences.some((c) => c.conferenceId === conferenceId && c.hubs.join() === 'hub-a,hub-b');
    }, 10_000, 'directory whole again within 10 s of Redis returning');
    const directoryMs = Date.now() - backAt;
    await waitUntil(async () => (await viewerB.request('consume', { transportId: joinedB.recv, producerId: audioProducerId, rtpCapabilities })).ok, 10_000, 'the retried pipe set-up succeeding');
    await waitFor(() => remote.lastSeq(deviceId) >= localAtEnd, 20_000, () => `hub-b's viewer catching up to ${localAtEnd} (has ${remote.lastSeq(deviceId)})`);
    const catchUpMs = Date.now() - backAt;
    await waitFor(() => acked() >= localAtEnd, 20_000, () => `the agent's ack reaching ${localAtEnd} (has ${acked()})`);
    const ackedMs = Date.now() - backAt;
    await waitUntil(() => refused(b.url, revokedDuring), 15_000, 'hub-b refusing the token hub-a revoked during the outage');

    const lost = (remote.gaps.get(deviceId) ?? []).filter((g) => g.reason === 'lost').reduce((n, g) => n + g.to - g.from + 1, 0);
    console.log(
      `      (Redis down ${Math.round((outageEnd - stoppedAt) / 1000)} s. Media: ${receivedDuring}/${sentDuring} packets crossed the pipe, longest pause between sampled increases ${mediaGap.ms} ms (ending ${mediaGap.endedAfterMs} ms in).` +
        ` Device on hub-a: ${localAtEnd - localAtStart} seqs reached the viewer on hub-a live (journal at ${journaledAtEnd}, viewer at ${localAtEnd}), longest pause ${devicePause.ms} ms (ending ${devicePause.endedAfterMs} ms in); this process's event loop stalled up to ${Math.round(loopDelay.max / 1e6)} ms;` +
        ` ack held at ${ackedAtStart} (was ${ackedBefore} when Redis stopped); viewer on hub-b at ${remoteAtStart} -> ${remoteAtEnd} during the outage.` +
        ` After: directory whole in ${directoryMs} ms, hub-b's viewer caught up in ${catchUpMs} ms (${lost} seqs announced lost), acks caught up in ${ackedMs} ms;` +
        ` ${stale.length} stale revocation checks admitted, oldest copy ${Math.max(...stale.map((s) => s.ageMs))} ms)`,
    );
    expect(receivedDuring, 'packets across the pipe during the outage').to.be.at.least(Math.floor(sentDuring * 0.95));
    // Live on hub-a all along, beyond what was acked: delivered before stored, acked only once stored.
    expect(arrivals.local.filter((t) => t > outageEnd - 10_000 && t <= outageEnd), 'readings reaching hub-a\'s viewer in the outage\'s last 10 s').to.not.be.empty;
    expect(localAtEnd).to.be.above(ackedAtEnd);
    expect(ackedAtEnd, 'acks while Redis was down').to.equal(ackedAtStart);
    // Each seq once and in order, on both hubs; hub-b's viewer got every one or was told which it will not get.
    expect(local.problems).to.deep.equal([]);
    expect(remote.problems).to.deep.equal([]);
    expect(remote.lastSeq(deviceId)).to.be.at.least(localAtEnd);
    expect(stale.length, 'fresh logins admitted on a stale copy of the revocation list').to.be.at.least(2);
    for (const s of stale) expect(s.ageMs).to.be.at.most(90_000);
  });
});
