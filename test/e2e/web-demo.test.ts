import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import { DemoSite } from '../../src/demo/demoSite.js';
import type { SentValues } from '../../src/sim/simulator.js';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage, screenshot } from '../support/browser.js';
import { agentToken, startTestHub, token, waitUntil } from '../support/hub.js';

// The real demo devices (simulators -> drivers -> site agent -> uplink -> hub)
// on a specialist's page: the numbers shown are the ones the HL7 monitor
// simulator put on the wire, and the Cyton ECG sweeps.

const CONF = 'demo-e2e';

/** The tile's text as drawn (no waiting for the element, unlike a locator). */
const tileText = (page: Page, deviceId: string, slot: string) =>
  page.evaluate(
    ([d, s]) => ((globalThis as any).hoichan.devices() as { deviceId: string; tiles: Record<string, { value: string }> }[]).find((x) => x.deviceId === d)?.tiles[s!]?.value,
    [deviceId, slot],
  );

describe('web client with the demo site agent', function () {
  this.timeout(120_000);
  let hub: Hub;
  let browser: Browser;
  let site: DemoSite | undefined;

  before(async () => {
    hub = await startTestHub();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await site?.stop();
    await hub?.close();
  });

  it('shows the HR and SpO2 the HL7 simulator sent, and the Cyton ECG sweeping', async function () {
    this.timeout(60_000);
    const specialist = await openPage(browser, `${hub.url}/conference/${CONF}#token=${token('specialist', CONF, 'BS Lan')}`);
    await waitUntil(async () => (await specialist.page.locator('#state').getAttribute('data-state')) === 'live', 20_000, 'specialist live');

    const sentHl7: SentValues[] = [];
    site = await DemoSite.start(
      { hubUrl: hub.url, token: agentToken('demo-site', CONF), siteId: 'demo-site', conferenceId: CONF, hl7IntervalMs: 1000, seed: 7 },
      (kind, sim) => {
        if (kind === 'mindray-hl7') sim.on('sent', (v) => sentHl7.push(v));
      },
    );

    // The page shows the latest values the simulator sent (polled until they meet: the page lags by the uplink).
    const latest = (code: string) => [...sentHl7].reverse().find((s) => s.numerics?.[code] !== undefined)?.numerics?.[code];
    for (const [slot, code] of [
      ['hr', 'MDC_ECG_HEART_RATE'],
      ['spo2', 'MDC_PULS_OXIM_SAT_O2'],
    ] as const) {
      await waitUntil(
        async () => {
          const sent = latest(code);
          return sent !== undefined && (await tileText(specialist.page, 'bed1-mindray', slot)) === String(sent);
        },
        20_000,
        `${code} on the page equal to the simulator's (sent ${latest(code)}, ${sentHl7.length} messages)`,
      );
    }
    const hr = Number(await tileText(specialist.page, 'bed1-mindray', 'hr'));
    expect(sentHl7.some((s) => s.numerics?.MDC_ECG_HEART_RATE === hr)).to.equal(true);

    // Every demo device has a panel; the Cyton's lead II sweeps.
    await waitUntil(async () => (await specialist.page.locator('.device-panel').count()) >= 4, 15_000, 'four device panels');
    await waitUntil(
      async () => {
        const devices = (await specialist.page.evaluate(() => (globalThis as any).hoichan.devices())) as { deviceId: string; waves: Record<string, number> }[];
        return (devices.find((d) => d.deviceId === 'bed1-cyton-ecg')?.waves.MDC_ECG_ELEC_POTL_II ?? 0) > 250;
      },
      15_000,
      'Cyton ECG swept',
    );
    await screenshot(specialist.page, 'web-demo-specialist');
    expect(specialist.consoleErrors).to.deep.equal([]);
  });
});
