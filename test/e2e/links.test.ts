import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { linkProfile, profileRttMs } from '../../src/links/profiles.js';
import { launchChromium, openPage, screenshot, pagePeerId as peerIdOf } from '../support/browser.js';
import { startTestHub, token, waitUntil } from '../support/hub.js';
import { linkSite, openLinkedPage, peerLinkStats, type LinkedSite, type PeerLinkStats } from '../support/linkedSite.js';
import { RecoveryTrace } from '../support/recoveryTrace.js';
import { SiteMonitor } from '../support/siteMonitor.js';

// Issue 15: a site's browser and agent behind an emulated thin link
// (src/links/, docs/LINKS.md), two ends in Chromium. Each test shows that the
// impairment took effect (the site's own RTT and received bitrate) before it
// checks what the policy keeps flowing. Bounds are stated where they are used.


const stateOf = (page: Page) => page.locator('#state').getAttribute('data-state');
const eventsOf = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.events as { name: string; data: any }[]);
const tilesOf = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.tiles() as Record<string, string>);
const deviceOf = (page: Page, device: string) =>
  page.evaluate(
    (id) => ((globalThis as any).hoichan.devices() as { deviceId: string; tiles: Record<string, { value: string }>; lateReadings: number }[]).find((d) => d.deviceId === id),
    device,
  );
/** Readings of the device the page received live (one event per batch; the page records each batch's size in its events). */
const readingsSeen = (page: Page, device: string) =>
  page.evaluate((id) => ((globalThis as any).hoichan.devices() as { deviceId: string; readingsReceived?: number }[]).find((d) => d.deviceId === id)?.readingsReceived ?? 0, device);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Window {
  at: number;
  stats: PeerLinkStats;
  downBytes: number;
}

async function snapshot(page: Page, site: LinkedSite): Promise<Window> {
  return { at: performance.now(), stats: await peerLinkStats(page), downBytes: site.link.stats().down.deliveredWireBytes };
}

/** What one measuring window shows at the site's page: the link's effect and the audio that got through. */
function measured(a: Window, b: Window) {
  const seconds = (b.at - a.at) / 1000;
  const audio = {
    packets: b.stats.audioIn.packetsReceived - a.stats.audioIn.packetsReceived,
    concealedPct:
      (100 * (b.stats.audioIn.concealedSamples - a.stats.audioIn.concealedSamples)) /
      Math.max(1, b.stats.audioIn.totalSamplesReceived - a.stats.audioIn.totalSamplesReceived),
  };
  return { seconds, rttMs: b.stats.rttMs, downKbps: ((b.downBytes - a.downBytes) * 8) / seconds / 1000, audio };
}

describe('thin links (issue 15): a site behind an emulated link', function () {
  this.timeout(150_000);
  let hub: Hub;
  let browser: Browser;
  const cleanups: (() => Promise<void> | void)[] = [];

  before(async () => {
    hub = await startTestHub();
    browser = await launchChromium();
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  /** A specialist on a good link and a site (page and agent) behind the profile's link; both live. */
  async function conference(conf: string, profileName: string, linkOptions: { outages?: null; blockUdp?: boolean; lang?: 'vi' } = {}) {
    const site = await linkSite(hub, { profile: linkProfile(profileName), seed: 15, ...('outages' in linkOptions ? { outages: linkOptions.outages } : {}) });
    site.link.blockUdp = linkOptions.blockUdp ?? false;
    cleanups.push(() => site.link.close());
    const specialist = await openPage(browser, `${hub.url}/conference/${conf}#token=${token('specialist', conf, 'BS Lan')}`);
    cleanups.push(() => specialist.page.context().close());
    const sitePage = await openLinkedPage(browser, hub, site, `/site/${conf}${linkOptions.lang ? `?lang=${linkOptions.lang}` : ''}#token=${token('site', conf, 'Tram Y te')}`);
    cleanups.push(() => sitePage.page.context().close());
    await waitUntil(async () => (await stateOf(specialist.page)) === 'live' && (await stateOf(sitePage.page)) === 'live', 30_000, 'both pages live');
    const monitor = new SiteMonitor(site.url, conf);
    await monitor.start();
    cleanups.push(() => monitor.stop());
    return { site, specialist: specialist.page, sitePage: sitePage.page, monitor, errors: [...specialist.consoleErrors, ...sitePage.consoleErrors] };
  }

  /** Every reading the agent took has reached the page, the last one shown. */
  async function allReadingsArrive(page: Page, monitor: SiteMonitor, boundMs: number) {
    const want = monitor.taken.length;
    await waitUntil(async () => monitor.sent >= want && (await readingsSeen(page, monitor.deviceId)) >= want, boundMs, `${want} readings at the page`);
    const last = String(monitor.taken[monitor.sent - 1]);
    await waitUntil(async () => (await deviceOf(page, monitor.deviceId))?.tiles.hr?.value === last, boundMs, `the latest HR (${last}) shown`);
  }

  it('island-satellite: the site keeps audio (concealment under 25 %), every reading arrives, the specialist sees the site at the lowest layer', async () => {
    const { site, specialist, sitePage, monitor } = await conference('links-island', 'island-satellite');
    // The specialist decodes the site's camera at the lowest layer (the site's 256 kb/s uplink carries no more).
    const sitePeer = await peerIdOf(sitePage);
    const conf = hub.conferences.get('links-island')!;
    const siteProducers = conf.getPeer(sitePeer)!.producers;
    const specialistPeer = conf.getPeer(await peerIdOf(specialist))!;
    const siteVideo = () => [...specialistPeer.consumers.values()].find((c) => c.kind === 'video' && siteProducers.has(c.producerId));
    await waitUntil(() => siteVideo()?.currentLayers?.spatialLayer === 0, 15_000, 'the site video at spatial layer 0 at the specialist');
    const frames = async () => (await specialist.evaluate(() => (globalThis as any).hoichan.stats() as Promise<{ peerId: string; kind: string; framesDecoded: number }[]>)).find((s) => s.peerId === sitePeer && s.kind === 'video')?.framesDecoded ?? 0;
    const f0 = await frames();
    await waitUntil(async () => (await frames()) > f0 + 5, 10_000, 'the site video decoding at the specialist');
    // Then a measuring window at the site.
    const a = await snapshot(sitePage, site);
    await sleep(6000);
    const b = await snapshot(sitePage, site);
    const m = measured(a, b);
    console.log(`      (island-satellite at the site: RTT ${m.rttMs.toFixed(0)} ms, downlink ${m.downKbps.toFixed(0)} kb/s, audio ${m.audio.packets} packets, ${m.audio.concealedPct.toFixed(1)} % concealed, level ${conf.bandwidthLevel(sitePeer)}; specialist gets the site at layer ${siteVideo()?.currentLayers?.spatialLayer})`);
    // The impairment took effect: the site's own RTT includes the 650 ms, and the hub→site bitrate is capped.
    expect(m.rttMs).to.be.at.least(profileRttMs(linkProfile('island-satellite')) * 0.9);
    expect(m.downKbps).to.be.at.most(256 * 1.05);
    // Audio: opus at 50 packets/s; the link loses 3 % and FEC/PLC cover the rest. Measured 1-10 % concealed
    // over 6 s on the shared 2-core box (once 20 % with three Chromium suites running back to back): bound 25 %.
    expect(m.audio.packets).to.be.at.least(0.8 * 50 * m.seconds);
    expect(m.audio.concealedPct).to.be.below(25);
    monitor.stopTaking();
    await allReadingsArrive(specialist, monitor, 10_000);
    await allReadingsArrive(sitePage, monitor, 10_000);
    await screenshot(sitePage, 'links-island-site');
  });

  it('edge: the site\'s video is suspended for bandwidth (videoSuspended), audio and readings continue', async () => {
    // The site's page in Vietnamese: the tile says why the video stopped.
    const { site, sitePage, specialist, monitor } = await conference('links-edge', 'edge', { lang: 'vi' });
    await waitUntil(async () => (await eventsOf(sitePage)).some((e) => e.name === 'videoSuspended' && e.data.reason === 'bandwidth'), 20_000, 'videoSuspended at the site');
    const specialistPeer = await peerIdOf(specialist);
    await waitUntil(async () => (await tilesOf(sitePage))[specialistPeer] === 'bandwidth', 5000, "the specialist's tile marked paused for bandwidth");
    expect(await sitePage.locator(`#peer-${specialistPeer} .tile-state`).textContent()).to.equal('Tạm dừng video: đường truyền quá chậm');
    await screenshot(sitePage, 'links-edge-site-vi');
    const sitePeer = await peerIdOf(sitePage);
    const a = await snapshot(sitePage, site);
    await sleep(8000);
    const b = await snapshot(sitePage, site);
    const m = measured(a, b);
    console.log(`      (edge at the site: RTT ${m.rttMs.toFixed(0)} ms, downlink ${m.downKbps.toFixed(0)} kb/s, audio ${m.audio.packets} packets, ${m.audio.concealedPct.toFixed(1)} % concealed; level ${hub.conferences.get('links-edge')!.bandwidthLevel(sitePeer)})`);
    expect(m.rttMs).to.be.at.least(profileRttMs(linkProfile('edge')) * 0.9);
    expect(m.downKbps).to.be.at.most(120 * 1.05);
    // Video held back on the hub: the site receives (almost) no video bytes while audio flows.
    expect(m.audio.packets).to.be.at.least(0.7 * 50 * m.seconds);
    expect(m.audio.concealedPct).to.be.below(25);
    expect(hub.conferences.get('links-edge')!.bandwidthLevel(sitePeer)).to.be.oneOf(['audio-only', 'stage-only']);
    monitor.stopTaking();
    await allReadingsArrive(sitePage, monitor, 15_000);
    await allReadingsArrive(specialist, monitor, 10_000);
  });

  it('flaky: after a 12 s outage audio and video recover within 20 s and the readings within 30 s, without a reload, the backlog marked late', async () => {
    // The profile drops for 30 s every 3 minutes (bench:links runs that); here one 12 s outage by hand keeps the test short.
    const { site, sitePage, specialist, monitor } = await conference('links-flaky', 'flaky', { outages: null });
    await sitePage.evaluate(() => ((globalThis as any).__notReloaded = true));
    const sitePeer = await peerIdOf(sitePage);
    // Frames of the site's camera the specialist decoded, per consumer: a consumer made again (the site's
    // send transport rebuilt) starts from 0, so recovery counts frames since a baseline per consumer.
    const siteFrames = async () =>
      new Map(
        (await specialist.evaluate(() => (globalThis as any).hoichan.stats() as Promise<{ consumerId: string; peerId: string; kind: string; framesDecoded: number }[]>))
          .filter((s) => s.peerId === sitePeer && s.kind === 'video')
          .map((s) => [s.consumerId, s.framesDecoded]),
      );
    const framesSince = (now: Map<string, number>, base: Map<string, number>) => [...now].reduce((n, [id, frames]) => n + frames - (base.get(id) ?? 0), 0);
    await waitUntil(async () => framesSince(await siteFrames(), new Map()) > 10, 15_000, 'the site video at the specialist');
    await waitUntil(async () => (await peerLinkStats(sitePage)).audioIn.packetsReceived > 100, 10_000, 'audio at the site');
    // Each recovery step once a second, for the failure message: which one was slow (seen once in CI: no video in 20 s).
    const trace = new RecoveryTrace({ hub, conferenceId: 'links-flaky', sitePage, specialist, sitePeerId: sitePeer, specialistPeerId: await peerIdOf(specialist) });
    cleanups.push(() => trace.stop());
    site.link.setOutage(true);
    await sleep(4_000);
    const mid = await snapshot(sitePage, site);
    await sleep(8_000);
    const during = await snapshot(sitePage, site);
    // The site's page says the specialist is reconnecting rather than showing a frozen frame.
    const specialistPeer = await peerIdOf(specialist);
    expect((await tilesOf(sitePage))[specialistPeer]).to.equal('reconnecting');
    expect(await sitePage.locator(`#peer-${specialistPeer} .tile-state`).textContent()).to.equal('Reconnecting…');
    expect(during.stats.audioIn.packetsReceived - mid.stats.audioIn.packetsReceived, 'nothing crosses a dead link').to.be.below(5);
    site.link.setOutage(false);
    trace.markZero();
    const upAt = performance.now();
    const audio0 = during.stats.audioIn.packetsReceived;
    const frames0 = await siteFrames();
    const taken = monitor.taken.length;
    const recovered: Record<string, number> = {};
    const mark = (what: string, ok: boolean) => {
      if (ok) recovered[what] ??= (performance.now() - upAt) / 1000;
      return ok;
    };
    // Media within 20 s; the outage's readings within 30 s (the test agent, like the real one, first waits out
    // the ack of the batch it sent into the outage, then reconnects: ~11 s here).
    await waitUntil(
      async () =>
        [
          mark('audio', (await peerLinkStats(sitePage)).audioIn.packetsReceived > audio0 + 50),
          mark('video', framesSince(await siteFrames(), frames0) > 10),
          mark('readings', (await readingsSeen(specialist, monitor.deviceId)) >= taken),
        ].slice(0, 2).every(Boolean),
      20_000,
      'audio at the site and the site video at the specialist within 20 s',
    ).catch(async (err: Error) => {
      await trace.stop();
      throw new Error(`${err.message} (recovered: ${JSON.stringify(recovered)})\n${trace.summary()}`);
    });
    await trace.stop();
    if (process.env.HOICHAN_TRACE_RECOVERY) console.log(trace.summary());
    await waitUntil(
      async () => mark('readings', (await readingsSeen(specialist, monitor.deviceId)) >= taken),
      Math.max(1000, 30_000 - (performance.now() - upAt)),
      "the outage's readings within 30 s",
    );
    console.log(`      (flaky: recovered after the link came back: ${Object.entries(recovered).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')})`);
    expect(await sitePage.evaluate(() => (globalThis as any).__notReloaded)).to.equal(true);
    await waitUntil(async () => (await stateOf(sitePage)) === 'live', 10_000, 'the site page live again');
    await waitUntil(async () => (await tilesOf(sitePage))[specialistPeer] === '', 5000, "the specialist's tile back to live video");
    expect((await deviceOf(specialist, monitor.deviceId))?.lateReadings ?? 0, 'the outage\'s backlog is marked late').to.be.greaterThan(0);
    monitor.stopTaking();
    await allReadingsArrive(specialist, monitor, 10_000);
  });

  it('flaky, the hub noticing late: a page that times out its socket first resumes its peer, not joining again', async () => {
    // The race behind a CI flake (docs/LINKS.md, "Recovery after a drop"): the page's own ping time-out fires,
    // its reconnect reaches the hub before the hub's ping time-out (the hub's ping went out late), socket.io has
    // no session to recover, and the page joins again as a new peer. Here the phase is set by hand: the drop
    // starts 4.5 s after the hub got a pong (the page times out at ~10.5 s into the 12 s drop), and the hub's
    // next ping (due 3.5 s into the drop) goes out 2 s late, so the hub times out 0.5 s after the link is back.
    const { site, sitePage, specialist } = await conference('links-flaky-late', 'flaky', { outages: null });
    const sitePeer = await peerIdOf(sitePage);
    const conf = hub.conferences.get('links-flaky-late')!;
    await waitUntil(async () => (await peerLinkStats(sitePage)).audioIn.packetsReceived > 100, 10_000, 'audio at the site');
    const siteSocket = [...hub.io.of('/').sockets.values()].find((s) => (s.data as { peerId?: string }).peerId === sitePeer);
    expect(siteSocket, "the site page's socket on the hub").to.not.equal(undefined);
    const engine = siteSocket!.conn;
    const pongAt = await new Promise<number>((resolve) => engine.once('heartbeat', () => resolve(performance.now())));
    let pingAt = 0;
    engine.on('packetCreate', (packet: { type: string }) => {
      if (packet.type === 'ping') pingAt ||= performance.now();
    });
    const at = (ms: number) => sleep(Math.max(0, pongAt + ms - performance.now()));
    await at(4_500);
    site.link.setOutage(true);
    const downAt = performance.now();
    await at(6_000);
    // The hub's event loop stalls (this process is the hub): its ping, due 8 s after the pong, goes out at 10 s.
    while (performance.now() < pongAt + 10_000);
    await sleep(Math.max(0, downAt + 12_000 - performance.now()));
    site.link.setOutage(false);
    expect((pingAt - pongAt) / 1000, 'the hub sent its ping late (the race this test sets up)').to.be.within(9.9, 11);
    const trace = new RecoveryTrace({ hub, conferenceId: 'links-flaky-late', sitePage, specialist, sitePeerId: sitePeer, specialistPeerId: await peerIdOf(specialist) });
    cleanups.push(() => trace.stop());
    await waitUntil(async () => (await stateOf(sitePage)) === 'live', 15_000, 'the site page live again');
    await trace.stop();
    expect(await peerIdOf(sitePage), `the site page resumed its peer rather than joining again\n${trace.summary()}`).to.equal(sitePeer);
    expect(conf.peers.map((p) => p.id).sort(), 'no second peer for the site').to.deep.equal([sitePeer, await peerIdOf(specialist)].sort());
  });

  it('UDP blocked: ICE falls back to the WebRtcServer\'s TCP port and audio flows', async () => {
    const { site, sitePage } = await conference('links-tcp', 'commune-3g', { blockUdp: true });
    await waitUntil(async () => (await peerLinkStats(sitePage)).audioIn.packetsReceived > 100, 20_000, 'audio over TCP');
    const stats = await peerLinkStats(sitePage);
    expect(stats.protocols.length).to.be.greaterThan(0);
    expect(stats.protocols.every((p) => p === 'tcp'), `candidate protocols ${stats.protocols.join(',')}`).to.equal(true);
    expect(site.link.stats().udpBlocked).to.be.greaterThan(0);
    expect(stats.rttMs).to.be.at.least(profileRttMs(linkProfile('commune-3g')) * 0.9);
  });
});
