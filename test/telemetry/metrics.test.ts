import { expect } from 'chai';
import type { Hub } from '../../src/hub/Hub.js';
import type { OpsReport } from '../../src/contract/ops.js';
import { launchChromium, openPage } from '../support/browser.js';
import { TestClient, joinWithTransports, rtpParametersFor, startTestHub, token, waitUntil } from '../support/hub.js';
import { has, parseProm, sumOf, type Sample } from './promText.js';

const engineer = () => token('engineer', '*', 'ops');

async function get(hub: Hub, path: string, bearer?: string): Promise<Response> {
  return fetch(`${hub.url}${path}`, { headers: bearer === undefined ? {} : { authorization: `Bearer ${bearer}` } });
}

async function scrape(hub: Hub): Promise<Sample[]> {
  const res = await get(hub, '/metrics', engineer());
  expect(res.status).to.equal(200);
  expect(res.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/);
  return parseProm(await res.text());
}

async function ops(hub: Hub): Promise<OpsReport> {
  const res = await get(hub, '/api/ops', engineer());
  expect(res.status).to.equal(200);
  return (await res.json()) as OpsReport;
}

describe('telemetry: /metrics and /api/ops', function () {
  this.timeout(120_000);

  describe('against Node socket.io clients', () => {
    let hub: Hub;
    const clients: TestClient[] = [];

    before(async () => {
      hub = await startTestHub();
    });
    after(async () => {
      for (const c of clients) c.close();
      await hub?.close();
    });

    it('refuses a missing token (401) and a non-engineer token (403)', async () => {
      for (const path of ['/metrics', '/api/ops']) {
        expect((await get(hub, path)).status, `${path} without token`).to.equal(401);
        expect((await get(hub, path, 'not-a-jwt')).status, `${path} with a bad token`).to.equal(401);
        expect((await get(hub, path, token('specialist', 'any'))).status, `${path} as specialist`).to.equal(403);
        expect((await get(hub, path, token('site', 'any'))).status, `${path} as site`).to.equal(403);
        expect((await get(hub, path, engineer())).status, `${path} as engineer`).to.equal(200);
      }
    });

    it('serves process defaults and every Hoichan metric family', async () => {
      const text = await (await get(hub, '/metrics', engineer())).text();
      for (const family of [
        'process_cpu_user_seconds_total',
        'process_resident_memory_bytes',
        'nodejs_eventloop_lag_seconds',
        'hoichan_worker_up',
        'hoichan_worker_cpu_seconds_total',
        'hoichan_worker_max_rss_bytes',
        'hoichan_worker_objects',
        'hoichan_worker_restarts_total',
        'hoichan_conferences',
        'hoichan_media_bytes_total',
        'hoichan_media_packets_total',
        'hoichan_media_packets_lost_total',
        'hoichan_media_nacks_total',
        'hoichan_media_plis_total',
        'hoichan_transport_rtt_seconds',
        'hoichan_signaling_sockets',
        'hoichan_signaling_requests_total',
        'hoichan_signaling_request_duration_seconds',
      ]) {
        expect(text, family).to.include(`# TYPE ${family} `);
      }
      const samples = parseProm(text);
      expect(sumOf(samples, 'hoichan_worker_up', { worker: '0' })).to.equal(1);
      expect(sumOf(samples, 'hoichan_worker_cpu_seconds_total', { worker: '0' })).to.be.greaterThan(0);
      expect(sumOf(samples, 'hoichan_worker_max_rss_bytes', { worker: '0' })).to.be.greaterThan(1_000_000);
    });

    it('counts sockets, mediasoup objects and signaling requests as they are', async () => {
      const before = await scrape(hub);
      const requests = (name: string, code = 'ok', samples = before) => sumOf(samples, 'hoichan_signaling_requests_total', { request: name, code });

      for (let i = 0; i < 3; i++) clients.push(await TestClient.connect(hub.url, token('specialist', 'tele', ['A', 'B', 'C'][i])));
      const [a, b, c] = clients as [TestClient, TestClient, TestClient];
      const pa = await joinWithTransports(a, 'tele', 'A');
      const pb = await joinWithTransports(b, 'tele', 'B');
      const pc = await joinWithTransports(c, 'tele', 'C');
      const video = (await a.ok('produce', { transportId: pa.send, kind: 'video', rtpParameters: rtpParametersFor('video') })).producerId;
      const audio = (await a.ok('produce', { transportId: pa.send, kind: 'audio', rtpParameters: rtpParametersFor('audio') })).producerId;
      let consumersOpened = 0;
      for (const [client, joined] of [[b, pb], [c, pc]] as const) {
        for (const producerId of [video, audio]) {
          await client.ok('consume', { transportId: joined.recv, producerId, rtpCapabilities: joined.joined.routerRtpCapabilities });
          consumersOpened++;
        }
      }
      const missing = await b.request('consume', { transportId: pb.recv, producerId: 'no-such-producer', rtpCapabilities: pb.joined.routerRtpCapabilities });
      expect(missing.ok).to.equal(false);

      const after = await scrape(hub);
      const objects = (type: string) => sumOf(after, 'hoichan_worker_objects', { worker: '0', type });
      expect(objects('consumer')).to.equal(consumersOpened);
      expect(objects('producer')).to.equal(2);
      expect(objects('transport')).to.equal(6);
      expect(objects('router')).to.equal(1);
      expect(sumOf(after, 'hoichan_conferences')).to.equal(1);
      expect(sumOf(after, 'hoichan_conference_peers', { conference: 'tele' })).to.equal(3);
      expect(sumOf(after, 'hoichan_signaling_sockets')).to.equal(3);

      expect(requests('join', 'ok', after) - requests('join')).to.equal(3);
      expect(requests('createTransport', 'ok', after) - requests('createTransport')).to.equal(6);
      expect(requests('produce', 'ok', after) - requests('produce')).to.equal(2);
      expect(requests('consume', 'ok', after) - requests('consume')).to.equal(consumersOpened);
      expect(requests('consume', 'not_found', after) - requests('consume', 'not_found')).to.equal(1);
      const latencyCount = (samples: Sample[]) => sumOf(samples, 'hoichan_signaling_request_duration_seconds_count', { request: 'consume' });
      expect(latencyCount(after) - latencyCount(before)).to.equal(consumersOpened + 1);

      const report = await ops(hub);
      expect(report.signaling.sockets).to.equal(3);
      expect(report.workers).to.have.length(1);
      expect(report.workers[0]).to.include({ slot: 0, consumers: consumersOpened, producers: 2, transports: 6, routers: 1 });
      expect(report.workers[0]!.pid).to.equal(hub.pool.workers[0]!.worker.pid);
      expect(report.workers[0]!.rssBytes).to.be.greaterThan(1_000_000);
      expect(report.devices).to.deep.equal([]);
      const tele = report.conferences.find((conf) => conf.conferenceId === 'tele')!;
      expect(tele.workerSlot).to.equal(0);
      const byName = Object.fromEntries(tele.peers.map((p) => [p.displayName, p]));
      expect(byName.A).to.include({ role: 'specialist', producers: 2, consumers: 0 });
      expect(byName.B).to.include({ producers: 0, consumers: 2 });
      expect(byName.C).to.include({ producers: 0, consumers: 2 });

      // Closing a consumer's transport is reflected at the next scrape.
      b.close();
      await waitUntil(async () => sumOf(await scrape(hub), 'hoichan_worker_objects', { type: 'consumer' }) === consumersOpened - 2, 10_000, 'consumers to drop');
    });

    it('counts a worker restart after its process is killed', async () => {
      const before = sumOf(await scrape(hub), 'hoichan_worker_restarts_total', { worker: '0' });
      const pid = hub.pool.workers[0]!.worker.pid;
      process.kill(pid, 'SIGKILL');
      await waitUntil(() => hub.pool.ready && hub.pool.workers[0]!.worker.pid !== pid, 20_000, 'worker replaced');
      const after = await scrape(hub);
      expect(sumOf(after, 'hoichan_worker_restarts_total', { worker: '0' })).to.equal(before + 1);
      expect(sumOf(after, 'hoichan_worker_up', { worker: '0' })).to.equal(1);
      const report = await ops(hub);
      expect(report.workers[0]!.pid).to.equal(hub.pool.workers[0]!.worker.pid);
    });
  });

  describe('during a Chromium conference', () => {
    let hub: Hub;
    let browser: Awaited<ReturnType<typeof launchChromium>>;

    before(async () => {
      hub = await startTestHub();
      browser = await launchChromium();
    });
    after(async () => {
      await browser?.close();
      await hub?.close();
    });

    it('reports real media flow: bytes and packets in and out, bitrate per peer, consumers as opened', async () => {
      const names = ['Dr Lan', 'Tram Y te'];
      const pages = [];
      for (const name of names) {
        const url = `${hub.url}/?conference=flow&name=${encodeURIComponent(name)}#token=${token('specialist', 'flow', name)}`;
        pages.push(await openPage(browser, url));
      }
      // Both peers decode each other: the page records its first decoded remote frame.
      for (const { page } of pages) {
        await waitUntil(() => page.evaluate(() => (globalThis as any).hoichan.firstRemoteFrameAt > 0), 30_000, 'first remote frame');
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await hub.telemetry.sample();
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await hub.telemetry.sample();

      const conference = hub.conferences.get('flow')!;
      const consumersOpened = conference.peers.reduce((n, p) => n + p.consumers.size, 0);
      const producersOpened = conference.peers.reduce((n, p) => n + p.producers.size, 0);
      expect(consumersOpened).to.be.at.least(4, 'each peer consumes at least the other\'s audio and video');

      const samples = await scrape(hub);
      const flow = (name: string, direction: string) => sumOf(samples, name, { conference: 'flow', direction });
      expect(sumOf(samples, 'hoichan_worker_objects', { type: 'consumer' })).to.equal(consumersOpened);
      expect(sumOf(samples, 'hoichan_worker_objects', { type: 'producer' })).to.equal(producersOpened);
      expect(flow('hoichan_media_bytes_total', 'in')).to.be.greaterThan(50_000);
      expect(flow('hoichan_media_bytes_total', 'out')).to.be.greaterThan(50_000);
      expect(flow('hoichan_media_packets_total', 'in')).to.be.greaterThan(100);
      expect(flow('hoichan_media_packets_total', 'out')).to.be.greaterThan(100);
      expect(flow('hoichan_media_bitrate_bps', 'in')).to.be.greaterThan(10_000);
      expect(has(samples, 'hoichan_media_packets_lost_total', { conference: 'flow', direction: 'out' })).to.equal(true);
      expect(sumOf(samples, 'hoichan_transport_rtt_seconds_count', { conference: 'flow' })).to.be.greaterThan(0);
      expect(sumOf(samples, 'hoichan_stats_poll_seconds_count')).to.be.greaterThan(0);

      const report = await ops(hub);
      const peers = report.conferences.find((c) => c.conferenceId === 'flow')!.peers;
      expect(peers).to.have.length(2);
      for (const peer of peers) {
        expect(peer.bitrateIn, `${peer.displayName} bitrate in`).to.be.greaterThan(10_000);
        expect(peer.bitrateOut, `${peer.displayName} bitrate out`).to.be.greaterThan(10_000);
        expect(peer.packetLossOut).to.be.within(0, 1);
      }
      expect(report.workers[0]!.cpuPercent).to.be.a('number').and.greaterThan(0);

      // A closed conference leaves no media series behind.
      for (const { page } of pages) await page.context().close();
      await waitUntil(() => hub.conferences.get('flow') === undefined, 20_000, 'conference to close');
      const closed = await scrape(hub);
      expect(has(closed, 'hoichan_media_bytes_total', { conference: 'flow' })).to.equal(false);
    });
  });
});
