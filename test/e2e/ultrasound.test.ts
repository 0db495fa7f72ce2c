import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { IngestSender } from '../../src/devices/video/IngestSender.js';
import { launchChromium, openPage, screenshot } from '../support/browser.js';
import { startTestHub, token, waitUntil } from '../support/hub.js';

// Ultrasound video end to end: ffmpeg → RTP/SRTP ingest → PlainTransport
// producer → WebRTC consumer → decoded on the specialist's stage.

interface Row {
  peerId: string;
  kind: string;
  source: string;
  framesDecoded: number;
}
const statsOf = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.stats() as Promise<Row[]>);
const ultrasoundFrames = async (page: Page) =>
  (await statsOf(page)).filter((s) => s.source === 'ultrasound').reduce((sum, s) => sum + s.framesDecoded, 0);

describe('ultrasound in the specialist view (real ffmpeg ingest, Chromium)', function () {
  this.timeout(120_000);
  let hub: Hub;
  let browser: Browser;
  const senders: IngestSender[] = [];

  before(async () => {
    hub = await startTestHub();
    browser = await launchChromium();
  });
  afterEach(async () => {
    for (const s of senders.splice(0)) await s.stop();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  for (const codec of ['VP8', 'H264'] as const) {
    it(`decodes ${codec} ultrasound on the stage, large, and drops it when the ingest stops`, async () => {
      const conferenceId = `echo-${codec.toLowerCase()}`;
      const { page, consoleErrors } = await openPage(browser, `${hub.url}/conference/${conferenceId}#token=${token('specialist', conferenceId, 'Dr Tim')}`);
      await waitUntil(async () => (await page.evaluate(() => (globalThis as any).hoichan.peerId)) !== '', 20_000, 'join');

      const sender = new IngestSender({
        hubUrl: hub.url,
        token: token('site', conferenceId),
        conferenceId,
        deviceId: 'echo-1',
        displayName: 'Sieu am Con Dao',
        source: 'ultrasound',
        codec,
        srtp: true,
        bitrateKbps: 500,
      });
      senders.push(sender);
      const info = await sender.start();

      await waitUntil(async () => (await ultrasoundFrames(page)) > 10, 30_000, `${codec} ultrasound frames decoded`);
      const before = await ultrasoundFrames(page);
      // Polled: a loaded CI box can stall ffmpeg for a moment; what matters is that frames keep coming.
      await waitUntil(async () => (await ultrasoundFrames(page)) > before + 5, 10_000, `${codec} ultrasound frames to keep coming`);

      const stage = page.locator('.stage-video[data-source="ultrasound"] video');
      await stage.waitFor({ state: 'visible' });
      const size = await stage.evaluate((v: any) => ({ w: v.videoWidth, h: v.videoHeight, shownWidth: v.getBoundingClientRect().width }));
      expect(size).to.include({ w: 640, h: 480 });
      expect(size.shownWidth).to.be.greaterThan(500, 'shown large');
      // The ingest has no camera: no empty tile for it beside its own stage video.
      expect(await page.locator(`#peer-${info.ingestId}`).isVisible()).to.equal(false);
      await screenshot(page, `specialist-ultrasound-${codec.toLowerCase()}`);

      await sender.stop();
      senders.pop();
      await page.locator('.stage-video').waitFor({ state: 'detached', timeout: 15_000 });
      const events = await page.evaluate(() => (globalThis as any).hoichan.events as { name: string; data: any }[]);
      expect(events.some((e) => e.name === 'producerClosed' && e.data.producerId === info.producerId)).to.equal(true);
      expect(consoleErrors).to.deep.equal([]);
      await page.context().close();
    });
  }
});
