import { expect } from 'chai';
import type { Browser } from 'playwright-core';
import type { Hub } from '../../src/hub/Hub.js';
import { launchChromium, openPage } from '../support/browser.js';
import { TestClient, startTestHub, testAuth, token, waitUntil } from '../support/hub.js';

describe('records page (/records): the monthly programme report in Chromium', function () {
  let hub: Hub;
  let browser: Browser;

  before(async () => {
    hub = await startTestHub();
    for (const [conf, sites] of [
      ['page-1', ['bv-cho-ray', 'tyt-xa-1']],
      ['page-2', ['bv-cho-ray', 'tyt-xa-2']],
    ] as const) {
      const clients: TestClient[] = [];
      for (const [i, site] of sites.entries()) {
        const role = i === 0 ? 'specialist' : 'site';
        const client = await TestClient.connect(hub.url, testAuth.sign({ kind: 'person', sub: `${role}-${site}`, name: `${role} ${site}`, role, conf, site, ttlSeconds: 600 }));
        await client.ok('join', { conferenceId: conf });
        clients.push(client);
      }
      for (const client of clients) {
        await client.ok('leave');
        client.close();
      }
    }
    await hub.records!.queue.flush();
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await hub?.close();
  });

  it('shows this month per site with totals, in Vietnamese with ?lang=vi, and an empty month as zeros', async () => {
    // The month the sessions started in (not "now": the test may straddle a month's end).
    const month = new Date((await hub.records!.store.listSessions({ limit: 1 }))[0]!.startedAt).toISOString().slice(0, 7);
    const { page, consoleErrors } = await openPage(browser, `${hub.url}/records?lang=vi&month=${month}#token=${token('engineer', '*')}`);
    await page.locator('#records-report tfoot tr').waitFor();
    const headers = await page.locator('#records-report thead th').allTextContents();
    expect(headers).to.deep.equal(['Cơ sở', 'Ca hội chẩn', 'Số phút', 'Cơ sở khác tham gia', 'Thiết bị đã dùng', 'Báo động']);
    const rows = await page.locator('#records-report tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(rows.map((r) => r.slice(0, 2))).to.deep.equal([
      ['bv-cho-ray', '2'],
      ['tyt-xa-1', '1'],
      ['tyt-xa-2', '1'],
    ]);
    expect(rows[0]![3]).to.equal('2'); // the hospital met two other sites
    const totals = await page.locator('#records-report tfoot td').allTextContents();
    expect([totals[0], totals[1], totals[3]]).to.deep.equal(['Tất cả cơ sở', '2', '3']);
    // The token left the address bar.
    expect(page.url()).to.not.include('#token=');
    await page.locator('#records-month').fill('2020-01');
    await page.locator('#records-month').dispatchEvent('change');
    // Polled from the test, not page.waitForFunction: a string predicate is eval, which the page's CSP refuses.
    await waitUntil(async () => (await page.locator('#records-report tbody tr').count()) === 0, 20_000, 'the empty month');
    expect((await page.locator('#records-report tfoot td').allTextContents()).slice(1)).to.deep.equal(['0', '0', '0', '0', '0']);
    expect(consoleErrors).to.deep.equal([]);
  });

  it('says so when the token may not read the records', async () => {
    const { page } = await openPage(browser, `${hub.url}/records#token=${token('site', 'page-1')}`);
    await page.locator('#message:not([hidden])').waitFor();
    expect(await page.locator('#message').textContent()).to.include('refused');
  });
});
