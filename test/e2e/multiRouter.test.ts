import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage, pageStats as statsOf, pagePeerId as peerIdOf } from '../support/browser.js';
import { startTestHub, token, waitUntil } from '../support/hub.js';



// Media across routers as browsers see it (docs/SCALING.md): with a cap of 2
// consumers per router, two peers fill the first router and the third opens
// one on the other worker; everyone decodes everyone through the pipes.
describe('end to end: Chromium peers on two routers of one conference decode each other', function () {
  this.timeout(150_000);
  let hub: Hub;
  let browser: Browser;
  const pages: Page[] = [];
  const roles = ['specialist', 'site', 'site'] as const;

  before(async () => {
    hub = await startTestHub({ media: { numWorkers: 2, maxConsumersPerRouter: 2 } });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  async function decodesAll(page: Page, others: string[], what: string): Promise<void> {
    await waitUntil(
      async () => {
        const stats = await statsOf(page);
        return others.every((peerId) => stats.some((s) => s.peerId === peerId && s.kind === 'video' && s.framesDecoded > 0) && stats.some((s) => s.peerId === peerId && s.kind === 'audio' && s.packetsReceived > 0));
      },
      40_000,
      what,
    );
  }

  it('video decodes and audio arrives in both directions between the routers', async () => {
    const peerIds: string[] = [];
    for (let i = 0; i < 3; i++) {
      const name = `Peer ${i}`;
      const page = (await openPage(browser, `${hub.url}/?conference=e2e-span&name=${encodeURIComponent(name)}#token=${token(roles[i]!, 'e2e-span', name)}`)).page;
      pages.push(page);
      await waitUntil(async () => (await peerIdOf(page)) !== '', 20_000, 'join');
      peerIds.push(await peerIdOf(page));
      // The next peer is placed once this one consumes what there is: the first router fills up as in a real conference.
      if (i === 1) await decodesAll(pages[1]!, [peerIds[0]!], 'peer 1 to decode peer 0');
    }
    const conference = hub.conferences.get('e2e-span')!;
    const slots = peerIds.map((id) => conference.homeOf(id)!.workerSlot);
    expect(slots[1], 'peers 0 and 1 share the first router').to.equal(slots[0]);
    expect(slots[2], 'peer 2 on the other worker').to.not.equal(slots[0]);
    expect(conference.routers).to.have.length(2);

    for (const [i, page] of pages.entries()) await decodesAll(page, peerIds.filter((_, j) => j !== i), `peer ${i} to decode both others`);
    // Each of the four producers crossing the workers is piped once.
    expect(conference.pipes).to.equal(6);
  });
});
