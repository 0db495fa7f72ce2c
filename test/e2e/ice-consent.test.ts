import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { peerRoom } from '../../src/signaling/SignalingServer.js';
import { linkProfile } from '../../src/links/profiles.js';
import { launchChromium } from '../support/browser.js';
import { linkSite, linkedContext, peerLinkStats, type LinkedSite } from '../support/linkedSite.js';
import { TestClient, startTestHub, token, waitUntil } from '../support/hub.js';

/**
 * A browser whose media path vanishes sends no DTLS close alert and closes no
 * socket: only ICE consent freshness (RFC 7675, checked by the mediasoup
 * worker since 3.13.20) notices. The site's media (UDP and ICE-TCP) goes
 * through the link emulator (docs/LINKS.md) while its signaling goes straight
 * to the hub; an outage on the link then silences the media alone, so the
 * signaling path cannot be what closes it.
 */
describe('end to end: a silent Chromium peer is closed by ICE consent expiry', function () {
  this.timeout(150_000);
  let hub: Hub;
  let browser: Browser;
  let site: LinkedSite;

  before(async () => {
    hub = await startTestHub();
    browser = await launchChromium();
    // A good link (4 Mb/s, 40 ms RTT, no loss) with no scheduled outage: the test makes the one it needs.
    site = await linkSite(hub, { profile: linkProfile('flaky'), outages: null });
  });
  after(async () => {
    await browser?.close();
    site?.link.close();
    await hub?.close();
  });

  // 30 s for a silent peer (15 s consent + 15 s disconnected grace: src/media/iceConsent.ts). This page is
  // not silent: its signaling is up and it restarts ICE when its connection drops (web/src/media/session.ts),
  // which re-arms the worker's ICE; measured 37.5 s here, so the wait allows 60 s.
  it('closes its transports and tells the other peers its producers are gone, while its signaling socket is still up', async () => {
    const conferenceId = 'consent';
    // Media through the link (the page's remote candidates are the relay's ports); signaling to the hub itself.
    const page = await (await linkedContext(browser, hub, site)).newPage();
    await page.goto(`${hub.url}/?conference=${conferenceId}&name=Site#token=${token('site', conferenceId, 'Tram Y te')}`);
    const peerIdOf = (p: Page) => p.evaluate(() => (globalThis as any).hoichan.peerId as string);
    await waitUntil(async () => (await peerIdOf(page)) !== '', 20_000, 'join');
    const sitePeerId = await peerIdOf(page);

    const observer = await TestClient.connect(hub.url, token('specialist', conferenceId, 'Dr Observer'));
    const joined = await observer.ok('join', { conferenceId, displayName: 'Dr Observer' });
    // The site publishes camera and microphone over a connected transport (consent checks flowing).
    await waitUntil(() => siteProducerIds().length >= 2, 20_000, 'site producers');
    function siteProducerIds(): string[] {
      const fromJoin = (joined.producers as { producerId: string; peerId: string }[]).filter((p) => p.peerId === sitePeerId).map((p) => p.producerId);
      const announced = observer.events.filter((e) => e.name === 'newProducer' && e.data.peerId === sitePeerId).map((e) => e.data.producerId as string);
      return [...new Set([...fromJoin, ...announced])];
    }
    const producers = siteProducerIds();

    // The media really crosses the link: the peer measures the link's delay, and the relay carried its packets.
    await waitUntil(async () => (await peerLinkStats(page)).rttMs >= 30, 20_000, 'the site to measure the link\'s 40 ms RTT');
    await waitUntil(() => site.link.stats().up.deliveredWireBytes > 50_000, 20_000, 'the site\'s media to cross the relay');
    const silentAt = Date.now();
    site.link.setOutage(true);

    for (const producerId of producers) {
      await observer.waitFor('producerClosed', (d) => d.producerId === producerId, 60_000);
    }
    const elapsedS = (Date.now() - silentAt) / 1000;
    console.log(`      the site's producers closed ${elapsedS.toFixed(1)} s after its media path went (consent 15 s + grace 15 s, plus its own ICE restarts)`);
    // Not the signaling path: the site's socket is still connected and its peer still in the conference.
    const siteSockets = await hub.io.in(peerRoom(sitePeerId)).fetchSockets();
    expect(siteSockets, 'the silent site is still connected on signaling').to.have.length(1);
    expect(observer.events.some((e) => e.name === 'peerLeft' && e.data.peerId === sitePeerId), 'no peerLeft: only its media went').to.equal(false);
  });
});
