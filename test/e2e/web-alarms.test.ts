import { expect } from 'chai';
import type { Browser, Page } from 'playwright-core';
import type { AlarmBody, ReadingBody } from '../../src/devices/reading.js';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage, screenshot } from '../support/browser.js';
import { startTestHub, token, waitUntil } from '../support/hub.js';
import { UplinkSite } from '../support/uplinkSite.js';

// The alarm lifecycle in the web client (issue 9), in headless Chromium, fed
// through the hub's real uplink: an alarm with an identity appears with the
// monitor's text and priority, a `continue` updates its source value, an `end`
// clears it into the device's history, a late joiner (a phone, in Vietnamese)
// sees what is active and what ended, and a device that goes offline shows
// its still-active alarm as "unknown since ...", never as active.

const CONF = 'icu-3';
const DEVICE = 'bed-12-monitor';
const SPO2_LOW = 'MDC_EVT_LO_VAL_LT_LIM|MDC_PULS_OXIM_SAT_O2|1.3.1.150456';
const HR_HIGH = 'MDC_EVT_HI_VAL_GT_LIM|MDC_ECG_HEART_RATE|1.2.1.147842';
const SPO2_TEXT = 'SpO2 thấp | giới hạn 90';
const HR_TEXT = 'Nhịp tim cao > 120';

interface AlarmSnapshot {
  key: string;
  priority: string;
  text: string;
  state: 'active' | 'unknown';
  source: string;
  since: number;
  unknownSince?: number;
}
interface DeviceSnapshot {
  deviceId: string;
  status: string;
  alarms: AlarmSnapshot[];
  alarmHistory: { key: string; priority: string; text: string; since: number | null; endedAt: number }[];
}

const deviceOf = async (page: Page) =>
  (await page.evaluate(() => (globalThis as any).hoichan.devices() as DeviceSnapshot[])).find((d) => d.deviceId === DEVICE);
const stateOf = (page: Page) => page.locator('#state').getAttribute('data-state');
const alarmRow = (page: Page, key: string) => page.locator(`[data-device-id="${DEVICE}"] .alarms li[data-key="${key}"]`);

function alarm(alarmId: string, fields: Partial<AlarmBody> & Pick<AlarmBody, 'active' | 'phase'>, value: number): ReadingBody {
  const now = Date.now();
  const spo2 = alarmId === SPO2_LOW;
  return {
    kind: 'alarm',
    code: spo2 ? 'MDC_EVT_LO_VAL_LT_LIM' : 'MDC_EVT_HI_VAL_GT_LIM',
    unit: '',
    t: now,
    rt: now,
    priority: spo2 ? 'medium' : 'high',
    text: spo2 ? SPO2_TEXT : HR_TEXT,
    alarmId,
    state: fields.active ? 'active' : 'inactive',
    source: spo2 ? { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', value } : { code: 'MDC_ECG_HEART_RATE', unit: '/min', value },
    ...fields,
  };
}

describe('web client: alarms appear, update, clear and go unknown', function () {
  this.timeout(120_000);
  let hub: Hub;
  let browser: Browser;
  let site: UplinkSite;
  const pages: { page: Page; consoleErrors: string[] }[] = [];
  let specialist: Page;

  before(async () => {
    hub = await startTestHub();
    browser = await launchChromium();
    site = new UplinkSite(hub.url, 'site-icu', CONF, [
      {
        deviceId: DEVICE,
        type: 'vitals',
        model: 'Bedside monitor (uplink test)',
        channels: [
          { code: 'MDC_PULS_OXIM_SAT_O2', unit: '%', kind: 'numeric' },
          { code: 'MDC_ECG_HEART_RATE', unit: '/min', kind: 'numeric' },
        ],
      },
    ]);
    await site.connect();
  });
  after(async () => {
    site?.disconnect();
    await browser?.close();
    await hub?.close();
  });

  it('an alarm appears with the monitor\'s text and priority, a continue updates it, an end clears it into the history', async () => {
    const opened = await openPage(browser, `${hub.url}/conference/${CONF}#token=${token('specialist', CONF, 'BS Lan')}`);
    pages.push(opened);
    specialist = opened.page;
    await waitUntil(async () => (await stateOf(specialist)) === 'live', 20_000, 'specialist live');
    await waitUntil(async () => (await deviceOf(specialist)) !== undefined, 10_000, 'the monitor panel');

    // Two alarms that share nothing but their device: SpO2 low (medium) and HR high (high).
    await site.send(DEVICE, [alarm(SPO2_LOW, { active: true, phase: 'start' }, 89), alarm(HR_HIGH, { active: true, phase: 'start' }, 128)]);
    await waitUntil(async () => (await deviceOf(specialist))?.alarms.length === 2, 10_000, 'two alarms on the page');
    let device = (await deviceOf(specialist))!;
    expect(device.alarms.map((a) => [a.key, a.priority, a.text, a.state, a.source])).to.deep.equal([
      [HR_HIGH, 'high', HR_TEXT, 'active', 'HR 128 bpm'],
      [SPO2_LOW, 'medium', SPO2_TEXT, 'active', 'SpO2 89 %'],
    ]);
    const since = device.alarms[1]!.since;
    // What the clinician reads: the monitor's own words, the priority, the value, since when.
    const row = alarmRow(specialist, SPO2_LOW);
    expect(await row.locator('.alarm-text').textContent()).to.equal(SPO2_TEXT);
    expect(await row.locator('.alarm-priority').textContent()).to.equal('Medium');
    expect(await row.locator('.alarm-source').textContent()).to.equal('SpO2 89 %');
    expect(await row.getAttribute('data-state')).to.equal('active');
    await waitUntil(async () => /^since \d\d:\d\d:\d\d · \d+ s ago$/.test((await row.locator('.alarm-age').textContent()) ?? ''), 3000, 'since HH:MM:SS');

    // continue: the same alarm, a new value; not a second alarm.
    await site.send(DEVICE, [alarm(SPO2_LOW, { active: true, phase: 'continue' }, 86)]);
    await waitUntil(async () => (await row.locator('.alarm-source').textContent()) === 'SpO2 86 %', 10_000, 'the continue value');
    device = (await deviceOf(specialist))!;
    expect(device.alarms.map((a) => a.key)).to.deep.equal([HR_HIGH, SPO2_LOW]);
    expect(device.alarms[1]!.since).to.equal(since, 'a continue keeps the start time');

    // end: cleared from the active list, into the device's alarm history.
    await site.send(DEVICE, [alarm(SPO2_LOW, { active: false, phase: 'end' }, 93)]);
    await waitUntil(async () => (await deviceOf(specialist))?.alarms.length === 1, 10_000, 'the SpO2 alarm cleared');
    device = (await deviceOf(specialist))!;
    expect(device.alarms.map((a) => a.key)).to.deep.equal([HR_HIGH]);
    expect(await row.count()).to.equal(0);
    expect(device.alarmHistory.map((a) => [a.key, a.priority, a.text, a.since])).to.deep.equal([[SPO2_LOW, 'medium', SPO2_TEXT, since]]);
    expect(device.alarmHistory[0]!.endedAt).to.be.at.least(since);
    const history = specialist.locator(`[data-device-id="${DEVICE}"] details.alarm-history`);
    expect(await history.locator('summary').textContent()).to.equal('Alarm history (1)');
    await history.locator('summary').click();
    const ended = history.locator(`li[data-key="${SPO2_LOW}"]`);
    expect(await ended.locator('.alarm-text').textContent()).to.equal(`${SPO2_TEXT} · SpO2 93 %`);
    expect(await ended.locator('.alarm-when').textContent()).to.match(/^\d\d:\d\d:\d\d–\d\d:\d\d:\d\d$/);
    await screenshot(specialist, 'web-alarms');
  });

  it('a late joiner (a phone, in Vietnamese) sees the active alarm and the ended one only in the history', async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true });
    const phone = await context.newPage();
    const consoleErrors: string[] = [];
    phone.on('console', (msg) => msg.type() === 'error' && consoleErrors.push(msg.text()));
    phone.on('pageerror', (err) => consoleErrors.push(err.message));
    pages.push({ page: phone, consoleErrors });
    await phone.goto(`${hub.url}/conference/${CONF}?lang=vi#token=${token('specialist', CONF, 'BS Minh')}`);
    await waitUntil(async () => (await stateOf(phone)) === 'live', 20_000, 'phone live');
    await waitUntil(async () => ((await deviceOf(phone))?.alarmHistory.length ?? 0) === 1, 10_000, 'the replayed history on the phone');
    const device = (await deviceOf(phone))!;
    expect(device.alarms.map((a) => [a.key, a.state, a.text])).to.deep.equal([[HR_HIGH, 'active', HR_TEXT]]);
    expect(device.alarmHistory.map((a) => [a.key, a.since])).to.deep.equal([[SPO2_LOW, null]], 'ended before this viewer joined: no start known');
    expect(await alarmRow(phone, HR_HIGH).locator('.alarm-priority').textContent()).to.equal('Cao');
    expect(await alarmRow(phone, HR_HIGH).locator('.alarm-age').textContent()).to.match(/^từ \d\d:\d\d:\d\d · \d+ giây trước$/);
    expect(await phone.locator(`[data-device-id="${DEVICE}"] details.alarm-history summary`).textContent()).to.equal('Lịch sử báo động (1)');
    // Readable on the phone: nothing wider than the screen.
    const overflow = await phone.evaluate(() => (globalThis as any).document.documentElement.scrollWidth - (globalThis as any).innerWidth);
    expect(overflow).to.be.at.most(0);
  });

  it('a device going offline shows its active alarm as unknown since ..., until a reading about it arrives', async () => {
    const phone = pages[1]!.page;
    const offlineAt = Date.now();
    site.disconnect();
    await waitUntil(async () => (await deviceOf(specialist))?.alarms[0]?.state === 'unknown', 10_000, 'the alarm unknown');
    let device = (await deviceOf(specialist))!;
    expect(device.status).to.equal('offline');
    expect(device.alarms.map((a) => [a.key, a.state])).to.deep.equal([[HR_HIGH, 'unknown']]);
    expect(device.alarms[0]!.unknownSince).to.be.at.least(offlineAt);
    const row = alarmRow(specialist, HR_HIGH);
    expect(await row.getAttribute('data-state')).to.equal('unknown');
    expect(await row.locator('.alarm-age').textContent()).to.match(/^Unknown since \d\d:\d\d:\d\d \(device offline\)$/);
    // Not styled as a live alarm: no blinking.
    expect(await row.evaluate((el: any) => (globalThis as any).getComputedStyle(el).animationName)).to.equal('none');
    await waitUntil(async () => (await deviceOf(phone))?.alarms[0]?.state === 'unknown', 10_000, 'unknown on the phone');
    expect(await alarmRow(phone, HR_HIGH).locator('.alarm-age').textContent()).to.match(/^Không rõ trạng thái từ \d\d:\d\d:\d\d/);
    await screenshot(specialist, 'web-alarms-unknown');
    await screenshot(phone, 'web-alarms-phone-vi');

    // Back online: still unknown (an end may have been lost), until the monitor speaks about it.
    await site.connect();
    await waitUntil(async () => (await deviceOf(specialist))?.status === 'online', 10_000, 'device online again');
    device = (await deviceOf(specialist))!;
    expect(device.alarms.map((a) => [a.key, a.state])).to.deep.equal([[HR_HIGH, 'unknown']]);
    await site.send(DEVICE, [alarm(HR_HIGH, { active: true, phase: 'continue' }, 131)]);
    await waitUntil(async () => (await deviceOf(specialist))?.alarms[0]?.state === 'active', 10_000, 'active again');
    expect((await deviceOf(specialist))!.alarms[0]!.source).to.equal('HR 131 bpm');
    await site.send(DEVICE, [alarm(HR_HIGH, { active: false, phase: 'end' }, 110)]);
    await waitUntil(async () => (await deviceOf(specialist))?.alarms.length === 0, 10_000, 'HR alarm cleared');
    device = (await deviceOf(specialist))!;
    expect(device.alarmHistory.map((a) => a.key)).to.deep.equal([HR_HIGH, SPO2_LOW]);
    await waitUntil(async () => (await deviceOf(phone))?.alarms.length === 0, 10_000, 'cleared on the phone');
  });

  it('left no console errors', () => {
    for (const { consoleErrors } of pages) expect(consoleErrors).to.deep.equal([]);
  });
});
