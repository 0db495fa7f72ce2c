import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage, pagePeerId, pageStats } from '../support/browser.js';
import { TestClient, fakeDtlsParameters, joinWithTransports, token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { startClusterHub } from './helpers.js';

describe('a page sent away by an overloaded hub follows the redirect (Chromium, issue 14)', function () {
  this.timeout(90_000);
  let redis: TestRedis;
  const hubs: Hub[] = [];
  const clients: TestClient[] = [];
  let browser: Browser;
  const conferenceId = 'redirected-case';

  before(async () => {
    redis = await TestRedis.start();
    // hub-1 takes at most one consumer; hub-2, in the same region, has room.
    hubs.push(await startClusterHub(redis.url, 'hub-1', 'north', { maxLoad: 1 }), await startClusterHub(redis.url, 'hub-2', 'north'));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    for (const c of clients) c.close();
    for (const h of hubs) await h.close();
    await redis?.stop();
  });

  it("joins hub 1, is redirected to hub 2, and decodes there the video of the peer on hub 1", async () => {
    const [one, two] = hubs as [Hub, Hub];
    await waitUntil(() => one.cluster!.directory.hub('hub-2') !== undefined, 5000, 'hub-2 in the directory of hub-1');

    const name = 'Tram Y te Ca Mau';
    const presenter = await openPage(browser, `${one.url}/?conference=${conferenceId}&name=${encodeURIComponent(name)}#token=${token('site', conferenceId, name)}`);
    await waitUntil(async () => (await pagePeerId(presenter.page).catch(() => '')) !== '', 20_000, 'the presenter page joining hub-1');
    const presenterId = await pagePeerId(presenter.page);
    const ownProducers = () => one.conferences.get(conferenceId)?.producers.filter((p) => p.peerId === presenterId) ?? [];
    await waitUntil(() => ownProducers().some((p) => p.kind === 'video'), 20_000, "the presenter's video on hub-1");

    // hub-1 reaches its cluster.maxLoad: one consumer (a socket client) of the presenter's video.
    const loader = await TestClient.connect(one.url, token('specialist', conferenceId, 'Dr Load'));
    clients.push(loader);
    const l = await joinWithTransports(loader, conferenceId, 'Dr Load');
    await loader.ok('connectTransport', { transportId: l.recv, dtlsParameters: fakeDtlsParameters });
    const video = ownProducers().find((p) => p.kind === 'video')!;
    await loader.ok('consume', { transportId: l.recv, producerId: video.producerId, rtpCapabilities: one.conferences.get(conferenceId)!.router.rtpCapabilities });

    // The viewer's page is opened on hub-1; its join is answered with a redirect, and it goes to hub-2.
    const viewerName = 'Dr Hoa (Cho Ray)';
    const viewer = await openPage(browser, `${one.url}/?conference=${conferenceId}&name=${encodeURIComponent(viewerName)}#token=${token('specialist', conferenceId, viewerName)}`);
    await waitUntil(() => viewer.page.url().startsWith(`${two.url}/`), 20_000, 'the page following the redirect to hub-2');
    await waitUntil(async () => (await pagePeerId(viewer.page).catch(() => '')) !== '', 20_000, 'the page joining hub-2');
    const viewerId = await pagePeerId(viewer.page);
    expect(two.conferences.get(conferenceId)!.peers.map((p) => p.summary.peerId)).to.deep.equal([viewerId]);
    expect(one.conferences.get(conferenceId)!.peers.map((p) => p.summary.peerId)).to.not.include(viewerId);

    await waitUntil(
      async () => (await pageStats(viewer.page)).some((s) => s.peerId === presenterId && s.kind === 'video' && s.framesDecoded > 0),
      40_000,
      "the redirected page decoding the presenter's video, piped from hub-1",
    );
    // Each of the presenter's producers the page consumes crossed once.
    expect(two.cluster!.pipes.piped().map((p) => p.producerId).sort()).to.deep.equal(ownProducers().map((p) => p.producerId).sort());
    expect(presenter.consoleErrors).to.deep.equal([]);
  });
});
