import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage, screenshot, pageStats as statsOf, pagePeerId as peerIdOf } from '../support/browser.js';
import { startTestHub, token, waitUntil } from '../support/hub.js';

interface Sent {
  videoPreferences?: { onStage: string[]; thumbnails: number };
  videoChoice?: { stage: string[]; thumbnails: string[] };
}

const sentOf = (page: Page) =>
  page.evaluate(() => {
    const t = (globalThis as any).hoichan;
    return { videoPreferences: t.videoPreferences, videoChoice: t.videoChoice } as Sent;
  });

/** Remote, unpinned tiles with at least one pixel on screen (inside the viewport and the scrolled media column). */
const tilesInView = (page: Page) =>
  page.evaluate(() => {
    const w = globalThis as any;
    const column = w.document.querySelector('.media-column').getBoundingClientRect();
    return [...w.document.querySelectorAll('.tile:not(.self):not(.pinned)')].filter((el: any) => {
      const r = el.getBoundingClientRect();
      const top = Math.max(r.top, column.top, 0);
      const bottom = Math.min(r.bottom, column.bottom, w.innerHeight);
      const left = Math.max(r.left, column.left, 0);
      const right = Math.min(r.right, column.right, w.innerWidth);
      return bottom > top && right > left;
    }).length;
  });

/**
 * Polls until the viewer's video bytes grow for exactly the producers the hub
 * says it forwards (its latest setVideoPreferences reply) and for no other:
 * each forwarded one by 20 KB or more since a baseline, every other by
 * nothing. A stream still flowing (a pause taking effect) or a new reply
 * restarts the baseline; a hub forwarding the wrong set never passes.
 */
async function onlyForwardedFlow(page: Page, what: string): Promise<string[]> {
  const bytes = async () => new Map((await statsOf(page)).filter((s) => s.kind === 'video').map((s) => [s.producerId, s.bytesReceived]));
  let base = await bytes();
  let baseChoice = JSON.stringify((await sentOf(page)).videoChoice);
  let forwarded: string[] = [];
  await waitUntil(
    async () => {
      const { videoChoice } = await sentOf(page);
      const now = await bytes();
      if (!videoChoice || JSON.stringify(videoChoice) !== baseChoice) {
        [base, baseChoice] = [now, JSON.stringify(videoChoice)];
        return false;
      }
      forwarded = [...videoChoice.stage, ...videoChoice.thumbnails];
      const grown = (id: string) => (now.get(id) ?? 0) - (base.get(id) ?? 0);
      const others = [...now.keys()].filter((id) => !forwarded.includes(id));
      if (others.some((id) => grown(id) > 0)) {
        base = now;
        return false;
      }
      return forwarded.every((id) => grown(id) >= 20_000);
    },
    60_000,
    what,
  );
  return forwarded;
}

// Last-N as a viewer's browser sees it (docs/WEB.md): three site cameras, a
// specialist whose window shows only some of their tiles; the hub forwards
// only the cameras in view, and a pinned camera on the stage.
describe('end to end: last-N in the web client (tiles in view, pinning)', function () {
  this.timeout(120_000);
  let hub: Hub;
  let browser: Browser;
  const conferenceId = 'e2e-lastn';

  before(async () => {
    hub = await startTestHub();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('receives video only for the camera tiles in view, and a pinned camera on the stage', async () => {
    const sites: string[] = [];
    for (let i = 0; i < 3; i++) {
      const name = `Site ${i}`;
      const { page } = await openPage(browser, `${hub.url}/site/${conferenceId}?name=${encodeURIComponent(name)}#token=${token('site', conferenceId, name)}`);
      await waitUntil(async () => (await peerIdOf(page)) !== '', 30_000, `site ${i} to join`);
      sites.push(await peerIdOf(page));
      // Silent sites: no dominant speaker changes the set while bytes are counted.
      await page.locator('#toggle-mic').click();
    }

    // 2 columns of tiles and a media column about one tile high: a part of the grid is out of view.
    const { page: viewer, consoleErrors } = await openPage(browser, `${hub.url}/conference/${conferenceId}?name=Viewer#token=${token('specialist', conferenceId, 'Viewer')}`);
    await viewer.setViewportSize({ width: 1100, height: 330 });
    await waitUntil(async () => (await statsOf(viewer)).filter((s) => s.kind === 'video').length === 3, 40_000, 'the viewer to consume the three cameras');

    await waitUntil(async () => (await sentOf(viewer)).videoPreferences?.thumbnails === (await tilesInView(viewer)), 30_000, 'thumbnails = the tiles in view');
    const inView = await tilesInView(viewer);
    expect(inView, 'some tiles in view, not all').to.be.within(1, 2);
    const forwarded = await onlyForwardedFlow(viewer, 'video bytes for the tiles in view only');
    expect(forwarded).to.have.length(inView);
    expect((await sentOf(viewer)).videoPreferences?.onStage).to.deep.equal([]);
    // The paused cameras show their initials, not a frozen frame.
    expect(await viewer.locator('.tile.lastn-paused').count()).to.equal(3 - inView);

    // Pin a camera the hub does not forward: it goes on the stage and its video flows.
    const stats = await statsOf(viewer);
    const paused = stats.find((s) => s.kind === 'video' && !forwarded.includes(s.producerId))!;
    const name = `Site ${sites.indexOf(paused.peerId)}`;
    await viewer.getByRole('button', { name: `Pin the camera of ${name} to the stage` }).click();
    const pinnedTile = viewer.locator(`#peer-${paused.peerId}`);
    expect(await pinnedTile.getAttribute('class')).to.contain('pinned');
    await waitUntil(async () => (await sentOf(viewer)).videoChoice?.stage.includes(paused.producerId) ?? false, 30_000, 'the pinned camera on the stage');
    const withPin = await onlyForwardedFlow(viewer, 'video bytes for the pinned camera (and the tiles in view)');
    expect(withPin).to.include(paused.producerId);
    expect((await sentOf(viewer)).videoPreferences).to.deep.include({ onStage: [paused.producerId], thumbnails: await tilesInView(viewer) });
    await waitUntil(
      () => pinnedTile.evaluate((el: any) => !el.classList.contains('lastn-paused') && el.querySelector('video').videoWidth > 0),
      30_000,
      'the pinned camera to show',
    );
    await screenshot(viewer, 'e2e-lastn-pinned');

    // Unpin: back into the grid, nothing on the stage.
    await viewer.getByRole('button', { name: `Unpin the camera of ${name} from the stage` }).click();
    await waitUntil(async () => (await sentOf(viewer)).videoChoice?.stage.length === 0, 30_000, 'an empty stage after unpinning');
    expect(await pinnedTile.getAttribute('class')).to.not.contain('pinned');
    expect(consoleErrors).to.deep.equal([]);
  });
});
