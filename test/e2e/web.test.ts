import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage, screenshot } from '../support/browser.js';
import { startTestHub, token, waitUntil } from '../support/hub.js';
import { MONITOR_VALUES, VitalsFeed } from '../support/vitalsFeed.js';

// The clinical web client (issue 5) in headless Chromium: a site and a
// specialist in one conference with a bedside monitor fed through the hub's
// event path, the engineer's /ops page, phone width and Vietnamese labels.

const CONF = 'ward-7';

interface TileSnapshot {
  value: string;
  stale: boolean;
}
interface DeviceSnapshot {
  deviceId: string;
  tiles: Record<string, TileSnapshot>;
  waves: Record<string, number>;
  lateReadings: number;
  lateSamples: number;
  alarms: { priority: string; text: string }[];
  silent: boolean;
}

const devicesOf = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.devices() as DeviceSnapshot[]);
const deviceOf = async (page: Page, deviceId: string) => (await devicesOf(page)).find((d) => d.deviceId === deviceId);
const peerIdOf = (page: Page) => page.evaluate(() => (globalThis as any).hoichan.peerId as string);
const stateOf = (page: Page) => page.locator('#state').getAttribute('data-state');
const statsOf = (page: Page) =>
  page.evaluate(() => (globalThis as any).hoichan.stats() as Promise<{ peerId: string; kind: string; framesDecoded: number; packetsReceived: number }[]>);

/** A cheap fingerprint of a canvas's pixels. */
const canvasHash = (page: Page, selector: string) =>
  page.evaluate((sel) => {
    const canvas = (globalThis as any).document.querySelector(sel);
    const data: Uint8ClampedArray = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let hash = 0;
    let inked = 0;
    for (let i = 3; i < data.length; i += 4) {
      hash = (hash * 31 + data[i]! + i) | 0;
      if (data[i]! > 0) inked++;
    }
    return { hash, inked };
  }, selector);

async function decodesVideoFrom(page: Page, peerId: string, timeoutMs = 20_000): Promise<void> {
  await waitUntil(
    async () => (await statsOf(page)).some((s) => s.peerId === peerId && s.kind === 'video' && s.framesDecoded > 0),
    timeoutMs,
    `video from ${peerId}`,
  );
}

describe('web client: specialist, site and engineer views in Chromium', function () {
  this.timeout(120_000);
  let hub: Hub;
  let browser: Browser;
  let feed: VitalsFeed;
  let site: { page: Page; consoleErrors: string[] };
  let specialist: { page: Page; consoleErrors: string[] };
  let sitePeerId = '';
  const extraPages: { page: Page; consoleErrors: string[] }[] = [];

  before(async () => {
    hub = await startTestHub();
    browser = await launchChromium();
  });
  after(async () => {
    feed?.stop();
    await browser?.close();
    await hub?.close();
  });

  it('the specialist sees the site\'s video and the monitor\'s values, ECG sweeping', async function () {
    this.timeout(60_000);
    site = await openPage(browser, `${hub.url}/site/${CONF}#token=${token('site', CONF, 'Tram Y te Con Dao')}`);
    await waitUntil(async () => (await peerIdOf(site.page)) !== '', 20_000, 'site join');
    sitePeerId = await peerIdOf(site.page);

    feed = new VitalsFeed(hub, CONF);
    feed.start();
    specialist = await openPage(browser, `${hub.url}/conference/${CONF}#token=${token('specialist', CONF, 'BS Lan (Bach Mai)')}`);
    await waitUntil(async () => (await stateOf(specialist.page)) === 'live', 20_000, 'specialist live');
    // The token left the address bar (kept in sessionStorage for reloads).
    expect(specialist.page.url()).to.equal(`${hub.url}/conference/${CONF}`);

    await decodesVideoFrom(specialist.page, sitePeerId);
    const videoWidth = await specialist.page.locator(`#peer-${sitePeerId} video`).evaluate((v: any) => v.videoWidth as number);
    expect(videoWidth).to.be.greaterThan(0);
    const label = await specialist.page.locator(`#peer-${sitePeerId} .label`).textContent();
    expect(label).to.equal('Tram Y te Con Dao · Site');

    await waitUntil(async () => (await deviceOf(specialist.page, 'monitor-1'))?.tiles.hr?.value === '72', 10_000, 'HR on the specialist page');
    const hr = await specialist.page.locator('[data-device-id="monitor-1"] [data-slot="hr"] .numeric-value').textContent();
    const spo2 = await specialist.page.locator('[data-device-id="monitor-1"] [data-slot="spo2"] .numeric-value').textContent();
    expect(hr).to.equal(String(MONITOR_VALUES.MDC_ECG_HEART_RATE));
    expect(spo2).to.equal(String(MONITOR_VALUES.MDC_PULS_OXIM_SAT_O2));
    const nibp = await specialist.page.locator('[data-slot="nibp"] .numeric-main').textContent();
    expect(nibp).to.equal('118/76(90)');
    expect(await specialist.page.locator('[data-slot="temp"] .numeric-value').textContent()).to.equal('36.8');
    expect(await specialist.page.locator('[data-slot="temp"] .numeric-unit').textContent()).to.equal('°C');

    // ECG lead II sweeps: the trace canvas changes between two frames.
    const ecg = '[data-device-id="monitor-1"] .wave[data-code="MDC_ECG_ELEC_POTL_II"] canvas.sweep-trace';
    await waitUntil(async () => (await canvasHash(specialist.page, ecg)).inked > 0, 5000, 'ECG ink');
    const first = await canvasHash(specialist.page, ecg);
    await specialist.page.waitForTimeout(250);
    const second = await canvasHash(specialist.page, ecg);
    expect(second.hash).to.not.equal(first.hash);
    const snapshot = (await deviceOf(specialist.page, 'monitor-1'))!;
    expect(snapshot.waves.MDC_ECG_ELEC_POTL_II).to.be.greaterThan(0);
    expect(snapshot.waves.MDC_PULS_OXIM_PLETH).to.be.greaterThan(0);

    // The site sees the specialist and its own devices as the specialists see them.
    await decodesVideoFrom(site.page, await peerIdOf(specialist.page));
    await waitUntil(async () => (await deviceOf(site.page, 'monitor-1'))?.tiles.spo2?.value === '97', 10_000, 'SpO2 on the site page');
    expect(await site.page.locator('.site-devices tbody tr').count()).to.equal(1);
    expect(await site.page.locator('#camera-select option').count()).to.be.greaterThan(0);

    // Network badges fill in after two stats samples (2 s apart).
    await waitUntil(async () => ((await specialist.page.locator(`#peer-${sitePeerId} .quality`).textContent()) ?? '').includes('kb/s'), 8000, 'quality badge');
    await screenshot(specialist.page, 'web-specialist');
    await screenshot(site.page, 'web-site');
  });

  it('shows --- for invalid values, keeps late chunks out of the sweep, marks stale data and orders alarms', async function () {
    this.timeout(40_000);
    const page = specialist.page;
    feed.values.MDC_PULS_OXIM_SAT_O2 = null;
    await waitUntil(async () => (await deviceOf(page, 'monitor-1'))?.tiles.spo2?.value === '---', 5000, 'SpO2 ---');
    feed.values.MDC_PULS_OXIM_SAT_O2 = 97;

    // A second device that only ever sends backfill, then one live value.
    const backfill = new VitalsFeed(hub, CONF, 'oximeter-2');
    const past = Date.now() - 120_000;
    backfill.send([
      { kind: 'waveform', code: 'MDC_PULS_OXIM_PLETH', unit: '', t: past, rt: past, sampleRate: 100, samples: Array.from({ length: 500 }, (_, i) => Math.sin(i / 8)), late: true },
      { kind: 'numeric', code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', t: past, rt: past, value: 91, late: true },
    ]);
    await waitUntil(async () => (await deviceOf(page, 'oximeter-2'))?.lateSamples === 500, 5000, 'late chunk counted');
    let oximeter = (await deviceOf(page, 'oximeter-2'))!;
    expect(oximeter.waves.MDC_PULS_OXIM_PLETH ?? 0).to.equal(0, 'late samples are not swept');
    expect(oximeter.lateReadings).to.equal(2);
    expect(oximeter.tiles.spo2).to.deep.equal({ value: '91', stale: true });

    const liveAt = Date.now();
    backfill.send([{ kind: 'numeric', code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', t: liveAt, rt: liveAt, value: 95 }]);
    backfill.send([
      { kind: 'alarm', code: 'MDC_EVT_LEAD_OFF', unit: '', t: liveAt, rt: liveAt, priority: 'low', text: 'Probe off', active: true },
      // Same event code, two alarms: told apart by their identity (issue 9).
      { kind: 'alarm', code: 'MDC_EVT_ALARM', unit: '', t: liveAt, rt: liveAt, priority: 'high', text: 'SpO2 low', active: true, alarmId: 'spo2-low' },
      { kind: 'alarm', code: 'MDC_EVT_ALARM', unit: '', t: liveAt, rt: liveAt, priority: 'medium', text: 'PR high', active: true, alarmId: 'pr-high' },
    ]);
    await waitUntil(async () => (await deviceOf(page, 'oximeter-2'))?.tiles.spo2?.value === '95', 5000, 'live SpO2');
    oximeter = (await deviceOf(page, 'oximeter-2'))!;
    expect(oximeter.tiles.spo2!.stale).to.equal(false);
    expect(oximeter.alarms.map((a) => a.priority)).to.deep.equal(['high', 'medium', 'low']);
    backfill.send([{ kind: 'alarm', code: 'MDC_EVT_ALARM', unit: '', t: liveAt, rt: liveAt, priority: 'medium', text: 'PR high', active: false, alarmId: 'pr-high' }]);

    await waitUntil(async () => (await deviceOf(page, 'oximeter-2'))?.tiles.spo2?.stale === true, 8000, 'stale after 5 s');
    await waitUntil(async () => (await deviceOf(page, 'oximeter-2'))?.silent === true, 3000, 'device silent');
    oximeter = (await deviceOf(page, 'oximeter-2'))!;
    expect(Date.now() - liveAt).to.be.greaterThanOrEqual(5000);
    expect(oximeter.silent).to.equal(true);
    expect(oximeter.alarms.map((a) => a.text)).to.deep.equal(['SpO2 low', 'Probe off']);
    expect(await page.locator('[data-device-id="oximeter-2"] [data-slot="spo2"] .numeric-stale').isVisible()).to.equal(true);
    // The live monitor meanwhile stays fresh.
    expect((await deviceOf(page, 'monitor-1'))!.tiles.hr!.stale).to.equal(false);
    await screenshot(page, 'web-specialist-alarms');
  });

  it('recovers by itself: socket drop with recovery, hub-side transport close, session lost', async function () {
    this.timeout(60_000);
    const page = specialist.page;
    const peerId = await peerIdOf(page);
    const socketOf = (id: string) => [...hub.io.of('/').sockets.values()].find((s) => s.data.peerId === id)!;

    // 1. The link blips: socket.io recovers the session, ICE restarts on both transports.
    socketOf(peerId).conn.close();
    await waitUntil(async () => (await stateOf(page)) !== 'live', 5000, 'a visible non-live state');
    await waitUntil(async () => (await stateOf(page)) === 'live', 15_000, 'live again');
    expect(await peerIdOf(page)).to.equal(peerId);

    // 2. The hub closes the recv transport (as after a DTLS failure): rebuilt and re-consumed.
    const peer = hub.conferences.get(CONF)!.getPeer(peerId)!;
    const recv = [...peer.transports.values()].find((t) => t.appData.direction === 'recv')!;
    const framesBefore = (await statsOf(page)).find((s) => s.peerId === sitePeerId && s.kind === 'video')!.framesDecoded;
    recv.close();
    await waitUntil(
      async () => [...peer.transports.values()].some((t) => t.appData.direction === 'recv' && t.id !== recv.id),
      10_000,
      'a new recv transport',
    );
    await waitUntil(
      async () => (await statsOf(page)).some((s) => s.peerId === sitePeerId && s.kind === 'video' && s.framesDecoded > 0 && s.framesDecoded !== framesBefore),
      15_000,
      'video after the transport was rebuilt',
    );

    // 3. The hub ends the session: the page joins again from scratch.
    socketOf(peerId).disconnect(true);
    await waitUntil(async () => (await peerIdOf(page)) !== peerId && (await peerIdOf(page)) !== '', 15_000, 'rejoined with a new peer');
    await waitUntil(async () => (await stateOf(page)) === 'live', 15_000, 'live after rejoin');
    await decodesVideoFrom(page, sitePeerId);
    await waitUntil(async () => (await deviceOf(page, 'monitor-1'))?.tiles.hr?.stale === false, 5000, 'vitals after rejoin');
  });

  it('low-bandwidth switch: audio + device data only, then the lowest layer', async function () {
    this.timeout(40_000);
    const page = specialist.page;
    await page.selectOption('#receive-mode', 'audio');
    await waitUntil(async () => !(await statsOf(page)).some((s) => s.kind === 'video'), 10_000, 'no video consumers');
    const peerId = await peerIdOf(page);
    const peer = hub.conferences.get(CONF)!.getPeer(peerId)!;
    await waitUntil(async () => [...peer.consumers.values()].every((c) => c.kind === 'audio'), 10_000, 'hub holds audio consumers only');
    expect((await deviceOf(page, 'monitor-1'))!.tiles.hr!.value).to.equal('72');

    await page.selectOption('#receive-mode', 'low');
    await decodesVideoFrom(page, sitePeerId);
    const video = [...peer.consumers.values()].find((c) => c.kind === 'video')!;
    await waitUntil(async () => video.preferredLayers?.spatialLayer === 0, 5000, 'preferred spatial layer 0');
    await page.selectOption('#receive-mode', 'full');
  });

  it('screen share: the specialist shares, the site sees it large on its stage, and it goes when stopped', async function () {
    this.timeout(40_000);
    const specialistId = await peerIdOf(specialist.page);
    const peer = () => hub.conferences.get(CONF)!.getPeer(specialistId)!;
    const screenProducers = () => [...peer().producers.values()].filter((p) => p.appData.source === 'screen');
    await specialist.page.click('#toggle-screen');
    await waitUntil(() => screenProducers().length === 1, 10_000, 'a screen producer on the hub');
    expect(screenProducers()[0]!.kind).to.equal('video');

    const screenAtSite = async () =>
      (await site.page.evaluate(() => (globalThis as any).hoichan.stats() as Promise<{ peerId: string; source: string; framesDecoded: number }[]>)).find(
        (s) => s.peerId === specialistId && s.source === 'screen',
      );
    await waitUntil(async () => ((await screenAtSite())?.framesDecoded ?? 0) > 0, 15_000, 'the site decoding the shared screen');
    const stage = site.page.locator('.stage-video[data-source="screen"] video');
    await stage.waitFor({ state: 'visible' });
    expect(await stage.evaluate((v: any) => v.getBoundingClientRect().width)).to.be.greaterThan(500, 'shown large');
    await screenshot(site.page, 'web-site-sees-screen-share');

    await specialist.page.click('#toggle-screen');
    await waitUntil(() => screenProducers().length === 0, 10_000, 'the screen producer closed');
    await site.page.locator('.stage-video[data-source="screen"]').waitFor({ state: 'detached', timeout: 10_000 });
    expect(await screenAtSite()).to.equal(undefined);
    // The camera goes on.
    await decodesVideoFrom(site.page, specialistId);
  });

  it('the engineer\'s /ops page lists the conference, its peers and the workers', async function () {
    this.timeout(30_000);
    const ops = await openPage(browser, `${hub.url}/ops#token=${token('engineer', '*', 'Ky su Hai')}`);
    extraPages.push(ops);
    await waitUntil(async () => (await ops.page.locator('#ops-conferences tbody tr').count()) === 1, 10_000, 'conference row');
    expect(await ops.page.locator('#ops-conferences tbody tr td').first().textContent()).to.equal(CONF);
    expect(await ops.page.locator('#ops-peers tbody tr').count()).to.equal(2);
    expect(await ops.page.locator('#ops-workers tbody tr').count()).to.equal(1);
    // A reload keeps working: the token is in sessionStorage.
    await ops.page.reload();
    await waitUntil(async () => (await ops.page.locator('#ops-peers tbody tr').count()) === 2, 10_000, 'peers after reload');
    await screenshot(ops.page, 'web-ops');
  });

  it('phone width, Vietnamese labels and old /?conference= links', async function () {
    this.timeout(60_000);
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const phone = await context.newPage();
    const phoneErrors: string[] = [];
    phone.on('console', (msg) => msg.type() === 'error' && phoneErrors.push(msg.text()));
    phone.on('pageerror', (err) => phoneErrors.push(err.message));
    // An old-style link: routed to the specialist view, then reloaded from sessionStorage.
    await phone.goto(`${hub.url}/?conference=${CONF}&lang=vi#token=${token('specialist', CONF, 'BS Minh (Hue)')}`);
    await waitUntil(async () => (await stateOf(phone)) === 'live', 20_000, 'phone live');
    expect(new URL(phone.url()).pathname).to.equal(`/conference/${CONF}`);
    await phone.reload();
    await waitUntil(async () => (await stateOf(phone)) === 'live', 20_000, 'phone live after reload');
    await waitUntil(async () => (await deviceOf(phone, 'monitor-1'))?.tiles.hr?.value === '72', 10_000, 'HR on the phone');
    expect(await phone.locator('[data-device-id="monitor-1"] [data-slot="hr"] .numeric-label').textContent()).to.equal('Nhịp tim');
    expect(await phone.locator('[data-slot="nibp"] .numeric-label').textContent()).to.equal('Huyết áp không xâm lấn');
    expect(await phone.locator('#leave').textContent()).to.equal('Rời phòng');
    // The test feed re-announces its DeviceInfo every 2 s; the panel is titled from it.
    const title = phone.locator('[data-device-id="monitor-1"] .device-title');
    await waitUntil(async () => ((await title.textContent()) ?? '').includes('Monitor theo dõi'), 5000, 'the device type in Vietnamese');
    expect(await phone.locator('#toggle-mic').textContent()).to.equal('Tắt tiếng');
    // Nothing wider than the phone except what scrolls on purpose (the toolbar).
    const overflow = await phone.evaluate(() => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).innerWidth);
    expect(overflow).to.be.at.most(0);
    await decodesVideoFrom(phone, sitePeerId);
    await screenshot(phone, 'web-specialist-phone-vi');
    expect(phoneErrors).to.deep.equal([]);
    await context.close();

    const vi = await openPage(browser, `${hub.url}/site/${CONF}?lang=vi#token=${token('site', CONF, 'Tram Y te Con Dao 2')}`);
    extraPages.push(vi);
    await waitUntil(async () => (await stateOf(vi.page)) === 'live', 20_000, 'vi site live');
    await waitUntil(async () => (await deviceOf(vi.page, 'monitor-1'))?.tiles.hr?.value === '72', 10_000, 'HR on the vi page');
    expect(await vi.page.locator('.side-heading').textContent()).to.equal('Hình ảnh bác sĩ chuyên khoa nhìn thấy');
    await screenshot(vi.page, 'web-site-vi');
    await vi.page.context().close();
  });

  it('left no console errors on any page', () => {
    for (const { consoleErrors } of [site, specialist, ...extraPages]) expect(consoleErrors).to.deep.equal([]);
  });
});
