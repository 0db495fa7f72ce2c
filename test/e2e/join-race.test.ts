import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium } from '../support/browser.js';
import { fakeDtlsParameters, rtpParametersFor, startTestHub, TestClient, token, waitUntil } from '../support/hub.js';

// A producer announced while a joining page is still loading its mediasoup
// Device (between the join reply and its first transport) must still be
// consumed. CI once lost it: the page wiped events received during that await.

const CONF = 'join-race';

describe('web client joining while another peer publishes', function () {
  this.timeout(60_000);
  let hub: Hub;
  let browser: Browser;

  before(async () => {
    hub = await startTestHub();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('consumes producers and keeps peers announced right after its join reply', async () => {
    const presenter = await TestClient.connect(hub.url, token('site', CONF, 'Tram Y te'));
    try {
      const joined = await presenter.ok('join', { conferenceId: CONF, displayName: 'Tram Y te' });
      const presenterId = joined.peerId as string;
      const send = (await presenter.ok('createTransport', { direction: 'send' })).transport.id as string;
      await presenter.ok('connectTransport', { transportId: send, dtlsParameters: fakeDtlsParameters });

      // Publish the moment the page's join reaches the hub: the hub's reply to the
      // page and our newProducer leave within a millisecond or two of each other.
      const produced = new Promise<string[]>((resolve, reject) => {
        presenter.socket.once('peerJoined', () => {
          Promise.all(
            (['video', 'audio'] as const).map((kind) =>
              presenter
                .ok('produce', { transportId: send, kind, rtpParameters: rtpParametersFor(kind), source: kind === 'video' ? 'camera' : 'microphone' })
                .then((r) => r.producerId as string),
            ),
          ).then(resolve, reject);
        });
      });

      // A slow clinic PC (CI's cold Chromium was one): the page's Device load takes
      // hundreds of ms, so our newProducer lands inside it.
      const context = await browser.newContext({ viewport: { width: 1280, height: 720 } });
      const page = await context.newPage();
      const consoleErrors: string[] = [];
      page.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(msg.text()));
      const cdp = await context.newCDPSession(page);
      await cdp.send('Emulation.setCPUThrottlingRate', { rate: 20 });
      await page.goto(`${hub.url}/conference/${CONF}#token=${token('specialist', CONF, 'Dr Lan')}`);
      const producerIds = await produced;
      expect(producerIds).to.have.length(2);

      // No media flows from a Node client, but the page must hold a consumer of each producer.
      await waitUntil(
        async () => {
          const rows = await page.evaluate(() => (globalThis as any).hoichan.stats() as Promise<{ peerId: string; kind: string }[]>);
          return ['video', 'audio'].every((kind) => rows.some((r) => r.peerId === presenterId && r.kind === kind));
        },
        15_000,
        'the page to consume both producers announced during its join',
      );
      const consumed = hub.conferences.get(CONF)!.peers.find((p) => p.id !== presenterId)!.consumers;
      expect([...consumed.values()].map((c) => c.producerId).sort()).to.deep.equal([...producerIds].sort());
      expect(consoleErrors).to.deep.equal([]);
      await page.context().close();
    } finally {
      presenter.close();
    }
  });
});
