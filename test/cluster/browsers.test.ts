import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage, pageStats as statsOf, pagePeerId as peerIdOf } from '../support/browser.js';
import { token, waitUntil } from '../support/hub.js';
import { TestRedis } from '../support/redis.js';
import { startClusterHub } from './helpers.js';



describe('three hubs, one conference: a Chromium peer on each hub (issue 14)', function () {
  this.timeout(90_000);
  let redis: TestRedis;
  const hubs: Hub[] = [];
  let browser: Browser;
  const pages: { page: Page; consoleErrors: string[] }[] = [];

  before(async () => {
    redis = await TestRedis.start();
    for (const id of ['hub-1', 'hub-2', 'hub-3']) hubs.push(await startClusterHub(redis.url, id));
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    for (const h of hubs) await h.close();
    await redis?.stop();
  });

  it("every peer decodes every other peer's video, each stream piped once to each other hub", async () => {
    const names = ['Dr Lan (Bach Mai)', 'Dr Minh (Hue Central)', 'Tram Y te Con Dao'];
    const roles = ['specialist', 'specialist', 'site'] as const;
    for (let i = 0; i < 3; i++) {
      const url = `${hubs[i]!.url}/?conference=regional&name=${encodeURIComponent(names[i]!)}#token=${token(roles[i]!, 'regional', names[i])}`;
      pages.push(await openPage(browser, url));
    }
    const peerIds = await Promise.all(pages.map(({ page }) => waitUntil(async () => (await peerIdOf(page)) !== '', 20_000, 'join').then(() => peerIdOf(page))));
    for (const [i, { page }] of pages.entries()) {
      const others = peerIds.filter((_, j) => j !== i);
      await waitUntil(
        async () => {
          const stats = await statsOf(page);
          return others.every((peerId) => stats.some((s) => s.peerId === peerId && s.kind === 'video' && s.framesDecoded > 0) && stats.some((s) => s.peerId === peerId && s.kind === 'audio' && s.packetsReceived > 0));
        },
        40_000,
        `peer ${i} (on hub-${i + 1}) to decode video and receive audio from the peers on the two other hubs`,
      );
    }
    // Each hub receives the two other hubs' two producers (audio, video): four pipes in, four out.
    for (const hub of hubs) {
      expect(hub.cluster!.pipes.inCount, `${hub.cluster!.hubId} pipes in`).to.equal(4);
      expect(hub.cluster!.pipes.outCount, `${hub.cluster!.hubId} pipes out`).to.equal(4);
    }
    for (const { consoleErrors } of pages) expect(consoleErrors).to.deep.equal([]);
  });

  it('the ops page shows the hubs, their load, and the conference spanning all three', async () => {
    const { page, consoleErrors } = await openPage(browser, `${hubs[0]!.url}/ops#token=${token('engineer', '*', 'ops')}`);
    await page.waitForSelector('#ops-cluster-hubs:not([hidden]) tbody tr', { timeout: 10_000 });
    await waitUntil(async () => (await page.locator('#ops-cluster-hubs tbody tr').count()) === 3, 10_000, 'three hub rows');
    const hubsText = await page.locator('#ops-cluster-hubs tbody').innerText();
    expect(hubsText).to.include('hub-1 *').and.to.include('hub-2').and.to.include('hub-3');
    await waitUntil(async () => (await page.locator('#ops-cluster-conferences tbody').innerText()).includes('hub-1, hub-2, hub-3'), 10_000, 'the conference across the three hubs');
    expect(consoleErrors).to.deep.equal([]);
  });

  it('a page whose hub is lost rejoins through another hub of the list its join reply gave, and is seen and decoded again', async () => {
    const lostPage = pages[2]!.page;
    const oldPeerId = await peerIdOf(lostPage);
    const lost = hubs.pop()!;
    const lostUrl = lost.url;
    await lost.close();
    // Past the hub's grace period (10 s) the page gives it up for hub-1 or hub-2.
    await waitUntil(() => !lostPage.url().startsWith(lostUrl), 30_000, 'the page moving to another hub');
    expect([hubs[0]!.url, hubs[1]!.url].some((u) => lostPage.url().startsWith(u))).to.equal(true);
    await waitUntil(async () => {
      const id = await peerIdOf(lostPage).catch(() => '');
      return id !== '' && id !== oldPeerId;
    }, 20_000, 'the page joined again');
    const newPeerId = await peerIdOf(lostPage);
    await waitUntil(async () => (await statsOf(pages[0]!.page)).some((s) => s.peerId === newPeerId && s.kind === 'video' && s.framesDecoded > 0), 30_000, "peer 0 decoding the rejoined peer's video");
  });
});
